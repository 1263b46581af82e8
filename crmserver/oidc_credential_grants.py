"""The grants that present credentials straight to ``/token``, with no sign-in page:
``client_credentials`` (an application user's secret; an app-only token) and ``password``.
On the tenant-less legacy endpoint they keep its old leniency (any client id, the scope
ignored). Failures count against the same throttle as the sign-in pages."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool

from . import oauth_errors as codes
from .oauth_clients import Scope, find_client, parse_scope
from .oauth_errors import OAuthError
from .oidc_context import GrantRequest, SigninFailure, client_address
from .oidc_issue import issue


async def client_credentials_grant(grant: GrantRequest) -> dict[str, Any]:
    """``client_credentials``: an app-only access token for an application user's secret."""
    ctx, request, authority, fields, auth, legacy = grant.unpacked()
    if not legacy and fields.get("scope"):
        parse_scope(fields["scope"], authority.root)
    address = client_address(request)
    wait = ctx.throttle.retry_after(auth.client_id, address)
    if wait:
        raise SigninFailure("locked", "Too many failed attempts.", wait).oauth()
    user_id = (
        await run_in_threadpool(ctx.auth.check_client, auth.client_id, auth.secret)
        if auth.client_id
        else None
    )
    if user_id is None:
        ctx.throttle.failed(auth.client_id, address)
        raise OAuthError(
            "invalid_client", codes.BAD_SECRET, "Client authentication failed.", status=401
        )
    principal = ctx.auth.principal(user_id)
    if principal is None:
        raise OAuthError("invalid_grant", codes.USER_DISABLED, "The user is disabled.")
    now = time.time()
    lifetime = ctx.settings.access_token_lifetime
    token = ctx.tokens.access_token(
        authority.audience(auth.client_id), principal, app_only=True, now=now
    )
    return {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    }


async def password_grant(grant: GrantRequest) -> dict[str, Any]:
    """``password``: a user's tokens for their password; a refresh token only for a
    registered client that asked for ``offline_access``."""
    ctx, request, authority, fields, auth, legacy = grant.unpacked()
    if (
        auth.client_id
        and auth.secret
        and ctx.storage.application(auth.client_id) is not None
        and await run_in_threadpool(ctx.auth.check_client, auth.client_id, auth.secret) is None
    ):
        raise OAuthError(
            "invalid_client", codes.BAD_SECRET, "Client authentication failed.", status=401
        )
    try:
        scope = parse_scope(fields.get("scope", ""), authority.root, required=False)
    except OAuthError:
        if not legacy:
            raise
        scope = Scope(frozenset(), ())
    username = fields.get("username", "")
    try:
        user_id = await ctx.verify_user(
            username, fields.get("password", ""), client_address(request)
        )
    except SigninFailure as failure:
        raise failure.oauth() from None
    registered = find_client(ctx.storage, auth.client_id) is not None
    body, _ = issue(
        ctx,
        authority,
        auth.client_id,
        ctx.principal(user_id),
        scope,
        refresh=registered and "offline_access" in scope.oidc,
        with_client_info=fields.get("client_info") == "1",
    )
    return body
