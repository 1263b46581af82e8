"""The device code flow (RFC 8628) for devices without a browser: ``/devicecode`` hands
out a device code and a short user code; the user types the user code and signs in (or
declines) on the verification page ``R/devicelogin``; meanwhile the device polls ``/token``
and gets ``authorization_pending``, ``slow_down``, ``expired_token``, ``access_denied`` or
its tokens (for the first resource asked, with the consent to all kept for the refresh
token, as after ``/authorize``). Only hashes of both codes are stored."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import oauth_errors as codes
from .authorities import ADFS, Authority
from .oauth_clients import OAuthClient, Scope, find_client, parse_scope, stored_scope
from .oauth_errors import OAuthError, oauth_error_response
from .oidc_context import (
    NO_STORE,
    GrantRequest,
    SignInContext,
    SigninFailure,
    client_address,
    missing,
    read_form,
)
from .oidc_issue import issue
from .signin_page import device_page, error_page
from .tokens import new_secret, secret_hash

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 9
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_BAD_USER_CODE = "That code didn't work. Check the code and try again."


def normalise_user_code(text: str) -> str:
    """A user code as typed, compared without case, spaces or dashes."""
    return "".join(c for c in text.upper() if c.isalnum())


# -- /devicecode ---------------------------------------------------------------------------


async def devicecode(ctx: SignInContext, request: Request, segment: str) -> Response:
    """A new device code and user code for a public client."""
    try:
        authority = ctx.authority(request, segment)
        fields = await read_form(request)
        client = _public_client(ctx, fields.get("client_id", ""))
        scope = parse_scope(fields.get("scope", ""), authority.root, graph=not authority.adfs)
    except OAuthError as err:
        return oauth_error_response(err, request)
    now = time.time()
    lifetime = ctx.settings.device_code_lifetime
    interval = ctx.settings.device_poll_interval
    device_code = new_secret()
    user_code = _store_codes(ctx, authority, client, scope, device_code, now)
    ctx.purge(now)
    verification = authority.verification_uri
    return JSONResponse(
        {
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": verification,
            "expires_in": lifetime,
            "interval": interval,
            "message": f"To sign in, use a web browser to open the page {verification} and "
            f"enter the code {user_code} to authenticate.",
        },
        headers=NO_STORE,
    )


def _public_client(ctx: SignInContext, client_id: str) -> OAuthClient:
    """The registered client, which must be public: a device cannot keep a secret."""
    client = find_client(ctx.storage, client_id)
    if client is None:
        raise ctx.client_not_found(client_id)
    if not client.public:
        raise OAuthError(
            "invalid_client",
            codes.NOT_PUBLIC_CLIENT,
            "The request body must contain the following parameter: 'client_assertion' "
            "or 'client_secret': the application is not a public client.",
            status=401,
        )
    return client


def _store_codes(
    ctx: SignInContext,
    authority: Authority,
    client: OAuthClient,
    scope: Scope,
    device_code: str,
    now: float,
) -> str:
    """Store the device code with a fresh user code (drawn again while taken); the user code."""
    for _ in range(10):
        user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
        stored = ctx.storage.add_device_code(
            {
                "device_hash": secret_hash(device_code),
                "user_code_hash": secret_hash(user_code),
                "client_id": client.client_id,
                "scope": scope.stored,
                "authority": ADFS if authority.adfs else "tenant",
                "expires": now + ctx.settings.device_code_lifetime,
                "interval": ctx.settings.device_poll_interval,
                "status": "pending",
            }
        )
        if stored:
            return user_code
    raise RuntimeError("no free device user code")


# -- the device code grant of /token -------------------------------------------------------


async def device_grant(grant: GrantRequest) -> dict[str, Any]:
    """The device's poll: an error until the user approved, then its tokens, once."""
    ctx, request, authority, fields, auth, legacy = grant.unpacked()
    client = ctx.registered_client(auth)
    device_code = fields.get("device_code") or fields.get("code", "")
    if not device_code:
        raise missing("device_code")
    device_hash = secret_hash(device_code)
    row = ctx.storage.device_code(device_hash=device_hash)
    if row is None or row["client_id"] != client.client_id:
        raise OAuthError("invalid_grant", codes.INVALID_GRANT, "The device code is invalid.")
    if (row["authority"] == ADFS) != authority.adfs:
        raise OAuthError(
            "invalid_grant", codes.OTHER_TENANT, "The device code is for another authority."
        )
    _check_approved(ctx, device_hash, row, time.time())
    if not ctx.storage.update_device_code(device_hash, {"status": "consumed"}, status="approved"):
        raise OAuthError(
            "invalid_grant", codes.CODE_REDEEMED, "The device code was already redeemed."
        )
    scope = stored_scope(row["scope"])
    body, _ = issue(
        ctx,
        authority,
        client.client_id,
        ctx.principal(row["user_id"]),
        scope,
        auth_time=row["auth_time"],
        refresh="offline_access" in scope.oidc,
        with_client_info=fields.get("client_info") == "1",
    )
    return body


def _check_approved(ctx: SignInContext, device_hash: str, row: dict[str, Any], now: float) -> None:
    """Raise the poll's answer unless the user approved the code (noting when a pending
    code was polled, to tell a device that polls too fast to slow down)."""
    if row["expires"] < now:
        raise OAuthError("expired_token", codes.DEVICE_CODE_EXPIRED, "The device code has expired.")
    status = row["status"]
    if status == "denied":
        raise OAuthError(
            "access_denied", codes.DECLINED, "The user declined to sign in on the device."
        )
    if status == "consumed":
        raise OAuthError(
            "invalid_grant", codes.CODE_REDEEMED, "The device code was already redeemed."
        )
    if status == "pending":
        last = row["last_poll"]
        ctx.storage.update_device_code(device_hash, {"last_poll": now})
        if last is not None and now - last < row["interval"] * 0.9:
            raise OAuthError(
                "slow_down",
                codes.PENDING,
                f"Polling too fast: wait {int(row['interval'])} seconds between requests.",
            )
        raise OAuthError(
            "authorization_pending",
            codes.PENDING,
            "The user has not yet completed the sign-in at the verification page.",
        )


# -- the verification page -----------------------------------------------------------------


@dataclass(frozen=True)
class _VerificationPage:
    """The verification page as the user last filled it in, to show again or close."""

    action: str
    organisation: str
    user_code: str = ""
    login: str = ""

    def again(
        self, error: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> Response:
        return device_page(
            action=self.action,
            organisation=self.organisation,
            user_code=self.user_code,
            login=self.login,
            error=error,
            status=status,
            headers=headers,
        )

    def done(self, text: str) -> Response:
        return device_page(action=self.action, organisation=self.organisation, done=text)


async def devicelogin(ctx: SignInContext, request: Request) -> Response:
    """GET: the page asking for the user code; POST: approve (with a password) or decline."""
    page = _VerificationPage(str(request.url.replace(query="")), ctx.organisation())
    if request.method == "GET":
        return device_page(
            action=page.action,
            organisation=page.organisation,
            user_code=request.query_params.get("otc", ""),
        )
    try:
        form = await read_form(request)
    except OAuthError as err:
        return error_page(err, status=err.status)
    page = replace(page, user_code=form.get("otc", ""), login=form.get("login", ""))
    address = client_address(request)
    wait = ctx.throttle.retry_after(page.login, address)
    if wait:
        return page.again(
            f"Too many failed attempts. Try again in {wait} seconds.",
            429,
            {"Retry-After": str(wait)},
        )
    row = ctx.storage.device_code(user_code_hash=secret_hash(normalise_user_code(page.user_code)))
    if row is None or row["status"] != "pending" or row["expires"] < time.time():
        ctx.throttle.failed("", address)
        return page.again(_BAD_USER_CODE)
    client = find_client(ctx.storage, row["client_id"])
    app = client.name if client else row["client_id"]
    if form.get("action") == "deny":
        ctx.storage.update_device_code(row["device_hash"], {"status": "denied"}, status="pending")
        return page.done(
            f"You have declined to sign in to {app} on the other device. You may now "
            "close this window."
        )
    return await _approve(ctx, page, row, form.get("passwd", ""), address, app)


async def _approve(
    ctx: SignInContext,
    page: _VerificationPage,
    row: dict[str, Any],
    password: str,
    address: str,
    app: str,
) -> Response:
    """Check the password and approve the pending code for the device's next poll."""
    try:
        user_id = await ctx.verify_user(page.login, password, address)
    except SigninFailure as failure:
        status = 429 if failure.kind == "locked" else 400
        return page.again(failure.message, status, failure.headers())
    approved = ctx.storage.update_device_code(
        row["device_hash"],
        {"status": "approved", "user_id": user_id, "auth_time": time.time()},
        status="pending",
    )
    if not approved:
        return page.again(_BAD_USER_CODE)
    return page.done(
        f"You have signed in to the {app} application on your device. You may now "
        "close this window."
    )
