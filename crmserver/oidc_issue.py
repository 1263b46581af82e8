"""The token response every user grant ends in: an access token, an ID token when ``openid``
was asked for, ``client_info`` for MSAL, and a refresh token in a family that a replay
revokes as a whole.

As Entra, one access token is for one resource: a request naming two (the CRM and Graph) gets
a token for the first one named, while the family keeps the consent to both, so that its
refresh token later gets the other's token without the user (what MSAL's
``extra_scopes_to_consent`` relies on)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from .authorities import ADFS, Authority
from .oauth_clients import CRM_RESOURCE, Scope, audience_of, consent_required
from .oidc_context import SignInContext
from .tokens import Principal, client_info, new_secret, secret_hash


def issue(
    ctx: SignInContext,
    authority: Authority,
    client_id: str,
    principal: Principal,
    scope: Scope,
    *,
    consent: Scope | None = None,
    nonce: str | None = None,
    auth_time: float | None = None,
    family_id: str | None = None,
    refresh: bool = False,
    with_client_info: bool = False,
) -> tuple[dict[str, Any], str | None]:
    """A token response for a user, for the first resource ``scope`` names; ``consent``
    (default ``scope``): what the user agreed to, which must cover ``scope`` and is what a
    new family keeps. ``refresh``: add a refresh token (in ``family_id``, or a new family).
    Returns the body and the family id."""
    consent = scope if consent is None else consent
    if not consent.covers(scope):
        raise consent_required(client_id, scope)
    resource = scope.resources[0] if scope.resources else CRM_RESOURCE
    now = time.time()
    auth_time = now if auth_time is None else auth_time
    audience = authority.audience(client_id)
    lifetime = ctx.settings.access_token_lifetime
    access = ctx.tokens.access_token(
        audience,
        principal,
        app_only=False,
        now=now,
        resource=audience_of(resource),
        scp=consent.scp(resource),
    )
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": scope.only(resource).text or f"{authority.root}/user_impersonation",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access,
    }
    if refresh:
        if family_id is None:
            family_id = _new_family(ctx, authority, client_id, principal, consent, auth_time, now)
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
