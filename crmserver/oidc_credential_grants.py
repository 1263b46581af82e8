"""The grants that present credentials straight to ``/token``, with no sign-in page:
``client_credentials`` (an application user's secret; an app-only token) and ``password``.
On the tenant-less legacy endpoint they keep its old leniency (any client id, the scope
ignored). Failures count against the same throttle as the sign-in pages."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool

from . import oauth_errors as codes
from .oauth_clients import GRAPH, GRAPH_RESOURCE, Scope, find_client, parse_scope
from .oauth_errors import OAuthError
from .oidc_context import GrantRequest, SigninFailure, client_address
from .oidc_issue import issue


async def client_credentials_grant(grant: GrantRequest) -> dict[str, Any]:
    """``client_credentials``: an app-only access token for an application user's secret."""
    ctx, request, authority, fields, auth, legacy = grant.unpacked()
    graph, asked = False, None
    if not legacy and fields.get("scope"):
        asked = parse_scope(fields["scope"], authority.root, graph=not authority.adfs)
        graph = asked.resources == (GRAPH_RESOURCE,)
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
    roles = _graph_roles(ctx.storage, auth.client_id, asked) if graph else ()
    now = time.time()
    lifetime = ctx.settings.access_token_lifetime
    token = ctx.tokens.access_token(
        authority.audience(auth.client_id),
        principal,
        app_only=True,
        now=now,
        # Graph with the application permissions the tenant's admin consented to this
        # application (issue 19: the router reads every mailbox).
        resource=GRAPH if graph else None,
        roles=roles,
    )
    return {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    }


def _graph_roles(storage: Any, client_id: str, asked: Scope | None) -> tuple[str, ...]:
    """The application permissions to Graph consented to ``client_id``; an app-only token asks
    for ``https://graph.microsoft.com/.default`` and exists only with some consented."""
    if asked is None or asked.named(GRAPH_RESOURCE) != frozenset({".default"}):
        raise OAuthError(
            "invalid_scope",
            codes.INVALID_SCOPE,
            "The scope of a client credentials request must be the resource's /.default.",
        )
    roles: tuple[str, ...] = storage.app_roles(client_id, GRAPH)
    if not roles:
        raise OAuthError(
            "invalid_resource",
            codes.RESOURCE_NOT_FOUND,
            f"The resource principal named {GRAPH} was not found in the tenant: no application "
            "permissions to it were consented for this application.",
        )
    return roles


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
