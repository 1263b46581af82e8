"""``/authorize``: the sign-in page (GET) and its credentials (POST), which end in an
authorization code sent to the client's redirect URI. PKCE (S256) is required of public
clients; an unknown client or redirect URI gets an error page, never a redirect, so the
endpoint cannot be used to send users elsewhere. The scope may name this CRM and Microsoft
Graph at once: the code carries the consent to both (redeemed for one resource at a time)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from . import oauth_errors as codes
from .authorities import ADFS, Authority
from .oauth_clients import OAuthClient, Scope, find_client, parse_scope, redirect_allowed
from .oauth_errors import OAuthError
from .oidc_context import NO_STORE, SignInContext, SigninFailure, client_address, read_form
from .signin_page import error_page, form_post_page, redirect_origin, signin_page
from .tokens import client_info, new_secret, secret_hash

AUTH_CODE_LIFETIME = 600
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class AuthRequest:
    """A checked authorization request."""

    client: OAuthClient
    redirect_uri: str
    response_mode: str
    state: str | None
    scope: Scope
    nonce: str | None
    code_challenge: str | None
    client_info: bool


async def authorize(ctx: SignInContext, request: Request, segment: str) -> Response:
    """GET: the sign-in page; POST: check the password and redirect with a code."""
    params = request.query_params
    try:
        authority = ctx.authority(request, segment)
        client, redirect_uri = _client_and_redirect(ctx, params)
    except OAuthError as err:
        return error_page(err)
    mode = params.get("response_mode") or "query"
    if mode not in ("query", "fragment", "form_post"):
        mode = "query"
    state = params.get("state")
    try:
        checked = _check_authorize(params, client, authority, redirect_uri, mode)
    except OAuthError as err:
        failure = {"error": err.error, "error_description": err.text}
        if state is not None:
            failure["state"] = state
        return _respond(redirect_uri, mode, failure)
    if request.method == "GET":
        return _signin_page(ctx, request, checked, login=params.get("login_hint", ""))
    try:
        form = await read_form(request)
    except OAuthError as err:
        return error_page(err, status=err.status)
    login = form.get("login", "")
    try:
        user_id = await ctx.verify_user(login, form.get("passwd", ""), client_address(request))
    except SigninFailure as failure:
        return _signin_page(
            ctx,
            request,
            checked,
            login=login,
            error=failure.message,
            status=429 if failure.kind == "locked" else 200,
            headers=failure.headers(),
        )
    answer = _new_code(ctx, authority, checked, user_id)
    if state is not None:
        answer["state"] = state
    answer["session_state"] = str(uuid.uuid4())
    return _respond(checked.redirect_uri, mode, answer)


def _client_and_redirect(ctx: SignInContext, params: Any) -> tuple[OAuthClient, str]:
    """The registered client and one of its redirect URIs (the only one when not given);
    until both are known, errors can only be shown, not redirected."""
    client_id = params.get("client_id", "")
    client = find_client(ctx.storage, client_id)
    if client is None:
        raise ctx.client_not_found(client_id)
    redirect_uri = params.get("redirect_uri") or (
        client.redirect_uris[0] if len(client.redirect_uris) == 1 else ""
    )
    if not redirect_allowed(client, redirect_uri):
        raise OAuthError(
            "invalid_request",
            codes.REDIRECT_MISMATCH,
            f"The redirect URI '{redirect_uri}' specified in the request does not match "
            f"the redirect URIs configured for the application '{client.client_id}'.",
        )
    return client, redirect_uri


def _check_authorize(
    params: Any,
    client: OAuthClient,
    authority: Authority,
    redirect_uri: str,
    mode: str,
) -> AuthRequest:
    """The rest of the request, whose errors go back to the client's redirect URI."""
    response_type = params.get("response_type", "")
    if response_type != "code":
        raise OAuthError(
            "unsupported_response_type",
            codes.UNSUPPORTED_RESPONSE_TYPE,
            f"response_type '{response_type}' is not supported: use 'code'.",
        )
    scope = parse_scope(params.get("scope", ""), authority.root, graph=not authority.adfs)
    if params.get("prompt") == "none":
        raise OAuthError(
            "login_required",
            codes.LOGIN_REQUIRED,
            "The user must sign in: there is no single-sign-on session.",
        )
    challenge = _code_challenge(params, client)
    nonce = params.get("nonce") or None
    if nonce is not None and len(nonce) > 512:
        raise OAuthError("invalid_request", codes.MALFORMED, "The nonce is too long.")
    return AuthRequest(
        client,
        redirect_uri,
        mode,
        params.get("state"),
        scope,
        nonce,
        challenge,
        params.get("client_info") == "1",
    )


def _code_challenge(params: Any, client: OAuthClient) -> str | None:
    """The PKCE challenge: required of public clients, and only ever S256."""
    challenge: str | None = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or ("plain" if challenge else "")
    if challenge is None and client.public:
        raise OAuthError(
            "invalid_request",
            codes.PKCE_REQUIRED,
            "Proof Key for Code Exchange is required for public clients: send "
            "code_challenge with code_challenge_method 'S256'.",
        )
    if challenge is not None and (method != "S256" or not _CHALLENGE.fullmatch(challenge)):
        raise OAuthError(
            "invalid_request",
            codes.PKCE_REQUIRED,
            "The code_challenge must be a base64url SHA-256 (code_challenge_method 'S256').",
        )
    return challenge


def _new_code(
    ctx: SignInContext, authority: Authority, checked: AuthRequest, user_id: str
) -> dict[str, str]:
    """Store a new single-use code (only its hash) and start the redirect's parameters."""
    now = time.time()
    code = new_secret()
    ctx.storage.add_auth_code(
        {
            "code_hash": secret_hash(code),
            "client_id": checked.client.client_id,
            "user_id": user_id,
            "redirect_uri": checked.redirect_uri,
            "scope": checked.scope.stored,
            "nonce": checked.nonce,
            "code_challenge": checked.code_challenge,
            "authority": ADFS if authority.adfs else "tenant",
            "auth_time": now,
            "expires": now + AUTH_CODE_LIFETIME,
        }
    )
    ctx.purge(now)
    answer = {"code": code}
    if checked.client_info and not authority.adfs:
        answer["client_info"] = client_info(user_id, ctx.tenant_id)
    return answer


def _signin_page(
    ctx: SignInContext,
    request: Request,
    checked: AuthRequest,
    *,
    login: str = "",
    error: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return signin_page(
        action=str(request.url),
        client_name=checked.client.name,
        organisation=ctx.organisation(),
        login=login,
        error=error,
        redirect_origin=redirect_origin(checked.redirect_uri),
        status=status,
        headers=headers,
    )


def _respond(redirect_uri: str, mode: str, params: dict[str, str]) -> Response:
    """The authorization response (or error) to the client's redirect URI."""
    if mode == "form_post":
        return form_post_page(redirect_uri, params)
    if mode == "fragment":
        target = f"{redirect_uri}#{urlencode(params)}"
    else:
        target = f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(params)}"
    return RedirectResponse(
        target, status_code=302, headers={**NO_STORE, "Referrer-Policy": "no-referrer"}
    )
