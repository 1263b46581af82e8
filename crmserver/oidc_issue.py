"""The token response every user grant ends in: an access token, an ID token when ``openid``
was asked for, ``client_info`` for MSAL, and a refresh token in a family that a replay
revokes as a whole."""

from __future__ import annotations

import time
import uuid
from typing import Any

from .authorities import ADFS, Authority
from .oauth_clients import Scope
from .oidc_context import SignInContext
from .tokens import Principal, client_info, new_secret, secret_hash


def issue(
    ctx: SignInContext,
    authority: Authority,
    client_id: str,
    principal: Principal,
    scope: Scope,
    *,
    nonce: str | None = None,
    auth_time: float | None = None,
    family_id: str | None = None,
    refresh: bool = False,
    with_client_info: bool = False,
) -> tuple[dict[str, Any], str | None]:
    """A token response for a user; ``refresh``: add a refresh token (in ``family_id``,
    or a new family). Returns the body and the family id."""
    now = time.time()
    auth_time = now if auth_time is None else auth_time
    audience = authority.audience(client_id)
    lifetime = ctx.settings.access_token_lifetime
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": scope.text or f"{authority.root}/user_impersonation",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": ctx.tokens.access_token(audience, principal, app_only=False, now=now),
    }
    if refresh:
        if family_id is None:
            family_id = _new_family(ctx, authority, client_id, principal, scope, auth_time, now)
        token = new_secret()
        ctx.storage.add_refresh_token(
            secret_hash(token), family_id, now + ctx.settings.refresh_token_lifetime
        )
        body["refresh_token"] = token
    if "openid" in scope.oidc and client_id:
        body["id_token"] = ctx.tokens.id_token(
            audience, principal, nonce=nonce, auth_time=auth_time, now=now
        )
    if with_client_info and not authority.adfs:
        body["client_info"] = client_info(principal.user_id, ctx.tenant_id)
    return body, family_id


def _new_family(
    ctx: SignInContext,
    authority: Authority,
    client_id: str,
    principal: Principal,
    scope: Scope,
    auth_time: float,
    now: float,
) -> str:
    """A new refresh token family: one sign-in, so that a replay can revoke all it gave."""
    family_id = str(uuid.uuid4())
    ctx.storage.add_token_family(
        {
            "family_id": family_id,
            "client_id": client_id,
            "user_id": principal.user_id,
            "authority": ADFS if authority.adfs else "tenant",
            "scope": scope.stored,
            "auth_time": auth_time,
            "expires": now,
        }
    )
    return family_id
