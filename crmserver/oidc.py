"""The OAuth 2.0 / OpenID Connect endpoints that make the emulator a sign-in authority MSAL
for Python signs in against unchanged (see :mod:`crmserver.authorities` for the URLs).

- ``/authorize`` (GET: the sign-in page; POST: the credentials): authorization code with PKCE
  (S256, required for public clients), ``response_mode`` query, fragment or form_post; an
  unknown client or redirect URI gets an error page, never a redirect.
- ``/token``: ``authorization_code`` (single use, 10 minutes, same redirect URI, PKCE checked;
  a replayed code revokes what it gave), ``refresh_token`` (rotated: each is good once, and a
  replayed one revokes its whole family), the device code grant (``authorization_pending``,
  ``slow_down``, ``expired_token``, ``access_denied``), ``client_credentials`` and
  ``password``. The tenant-less legacy ``/oauth2/v2.0/token`` keeps its old leniency for the
  last two (any client id, the scope ignored).
- ``/devicecode`` and the verification page ``R/devicelogin``; ``/revoke`` (RFC 7009).

Failed passwords are slowed by :class:`~crmserver.signin_throttle.SigninThrottle`. Codes,
refresh tokens and user codes are stored as hashes; nothing here logs a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from . import oauth_errors as codes
from .auth import BASIC_CHALLENGE, MalformedBasic, basic_credentials, verify_password
from .authorities import ADFS, Authority, resolve
from .oauth_clients import (
    OAuthClient,
    Scope,
    find_client,
    parse_scope,
    redirect_allowed,
    stored_scope,
)
from .oauth_errors import OAuthError, oauth_error_response
from .signin_page import device_page, error_page, form_post_page, redirect_origin, signin_page
from .signin_throttle import SigninThrottle
from .tokens import Principal, b64url, client_info, new_secret, secret_hash

if TYPE_CHECKING:
    from .app import Service

AUTH_CODE_LIFETIME = 600
MAX_FORM_BYTES = 16 * 1024
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 9
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PURGE_EVERY = 600.0
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class SigninFailure(Exception):
    """A refused password: ``kind`` is ``locked``, ``bad`` or ``disabled``; ``message`` is
    for the user; ``retry_after`` seconds when locked."""

    def __init__(self, kind: str, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after

    def oauth(self) -> OAuthError:
        if self.kind == "locked":
            return OAuthError(
                "temporarily_unavailable",
                codes.LOCKED_OUT,
                self.message,
                status=429,
                headers={"Retry-After": str(self.retry_after)},
            )
        if self.kind == "disabled":
            return OAuthError("invalid_grant", codes.USER_DISABLED, self.message)
        return OAuthError(
            "invalid_grant",
            codes.BAD_PASSWORD,
            "Error validating credentials due to invalid username or password.",
        )

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


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


@dataclass(frozen=True)
class ClientAuth:
    """The client id and secret of a token request, and whether they came as Basic."""

    client_id: str
    secret: str
    basic: bool


Grant = Callable[[Request, Authority, dict[str, str], ClientAuth, bool], Awaitable[dict[str, Any]]]


def _missing(name: str) -> OAuthError:
    return OAuthError(
        "invalid_request",
        codes.MISSING_PARAMETER,
        f"The request body must contain the following parameter: '{name}'.",
    )


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


async def read_form(request: Request, max_fields: int = 20) -> dict[str, str]:
    """A small form body (its length must be declared); raises ``OAuthError``."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise OAuthError(
            "invalid_request",
            codes.MALFORMED,
            "The request must be a form with a length.",
            status=411,
        )
    if int(declared) > MAX_FORM_BYTES:
        raise OAuthError(
            "invalid_request", codes.TOO_LARGE, "The request is too large.", status=413
        )
    form = await request.form(max_files=0, max_fields=max_fields)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def normalise_user_code(text: str) -> str:
    return "".join(c for c in text.upper() if c.isalnum())


class SignIn:
    """The sign-in endpoints of one organisation."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.storage = service.storage
        self.auth = service.auth
        self.tokens = service.tokens
        settings = service.settings
        self.settings = settings
        self.throttle = SigninThrottle(
            account_limit=settings.signin_failure_limit,
            address_limit=settings.signin_address_failure_limit,
            lockout=settings.signin_lockout_seconds,
        )
        self.tenant_id = self.storage.tenant_id()
        self._last_purge = 0.0

    # -- shared --------------------------------------------------------------------------

    def organisation(self) -> str:
        row = self.storage.organization()
        return str(row["name"]) if row else "trackbox-crm"

    def authority(self, request: Request, segment: str | None) -> Authority:
        return resolve(request, segment, self.tenant_id)

    async def verify_user(self, login: str, password: str, address: str) -> str:
        """The user id for a correct password; raises :class:`SigninFailure`."""
        wait = self.throttle.retry_after(login, address)
        if wait:
            raise SigninFailure(
                "locked",
                "You've tried to sign in too many times with an incorrect account or password. "
                f"Try again in {wait} seconds.",
                wait,
            )
        result = await run_in_threadpool(self.auth.verify_credentials, login, password)
        if result is None:
            self.throttle.failed(login, address)
            raise SigninFailure("bad", "Your account or password is incorrect.")
        user_id, disabled = result
        if disabled:
            raise SigninFailure(
                "disabled", "Your account has been disabled. Contact your administrator."
            )
        self.throttle.succeeded(login)
        return user_id

    def principal(self, user_id: str) -> Principal:
        found = self.auth.principal(user_id)
        if found is None:
            raise OAuthError(
                "invalid_grant",
                codes.USER_DISABLED,
                "The user account is disabled or has been deleted.",
            )
        return found

    def client_not_found(self, client_id: str) -> OAuthError:
        if not client_id:
            return _missing("client_id")
        return OAuthError(
            "unauthorized_client",
            codes.CLIENT_NOT_FOUND,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{self.organisation()}'. This can happen if the application has not been "
            "installed by the administrator of the tenant.",
        )

    def registered_client(self, auth: ClientAuth) -> OAuthClient:
        """The client of a code, refresh or device grant, authenticated when confidential."""
        client = find_client(self.storage, auth.client_id)
        if client is None:
            raise self.client_not_found(auth.client_id)
        if client.public and auth.secret:
            raise OAuthError(
                "invalid_client",
                codes.PUBLIC_CLIENT_SECRET,
                "The client is public so neither 'client_assertion' nor 'client_secret' "
                "should be presented.",
                status=401,
            )
        if not client.public:
            app = self.storage.application(client.client_id)
            if (
                not auth.secret
                or app is None
                or not verify_password(auth.secret, app["secret_hash"])
            ):
                raise OAuthError(
                    "invalid_client",
                    codes.BAD_SECRET,
                    "Invalid client secret provided.",
                    status=401,
                )
        return client

    def _purge(self, now: float) -> None:
        if now - self._last_purge > PURGE_EVERY:
            self._last_purge = now
            self.storage.purge_signin_state(now)

    def issue(
        self,
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
        lifetime = self.settings.access_token_lifetime
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": scope.text or f"{authority.root}/user_impersonation",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.tokens.access_token(audience, principal, app_only=False, now=now),
        }
        if refresh:
            if family_id is None:
                family_id = str(uuid.uuid4())
                self.storage.add_token_family(
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
            token = new_secret()
            self.storage.add_refresh_token(
                secret_hash(token), family_id, now + self.settings.refresh_token_lifetime
            )
            body["refresh_token"] = token
        if "openid" in scope.oidc and client_id:
            body["id_token"] = self.tokens.id_token(
                audience, principal, nonce=nonce, auth_time=auth_time, now=now
            )
        if with_client_info and not authority.adfs:
            body["client_info"] = client_info(principal.user_id, self.tenant_id)
        return body, family_id

    # -- /authorize ----------------------------------------------------------------------

    async def authorize(self, request: Request, segment: str) -> Response:
        params = request.query_params
        try:
            authority = self.authority(request, segment)
            client_id = params.get("client_id", "")
            client = find_client(self.storage, client_id)
            if client is None:
                raise self.client_not_found(client_id)
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
        except OAuthError as err:
            return error_page(err)
        mode = params.get("response_mode") or "query"
        if mode not in ("query", "fragment", "form_post"):
            mode = "query"
        state = params.get("state")
        try:
            checked = self._check_authorize(params, client, authority, redirect_uri, mode)
        except OAuthError as err:
            failure = {"error": err.error, "error_description": err.text}
            if state is not None:
                failure["state"] = state
            return _respond(redirect_uri, mode, failure)
        if request.method == "GET":
            return self._signin_page(request, checked, login=params.get("login_hint", ""))
        try:
            form = await read_form(request)
        except OAuthError as err:
            return error_page(err, status=err.status)
        login = form.get("login", "")
        try:
            user_id = await self.verify_user(login, form.get("passwd", ""), _address(request))
        except SigninFailure as failure:
            return self._signin_page(
                request,
                checked,
                login=login,
                error=failure.message,
                status=429 if failure.kind == "locked" else 200,
                headers=failure.headers(),
            )
        now = time.time()
        code = new_secret()
        self.storage.add_auth_code(
            {
                "code_hash": secret_hash(code),
                "client_id": client.client_id,
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
        self._purge(now)
        answer = {"code": code}
        if checked.client_info and not authority.adfs:
            answer["client_info"] = client_info(user_id, self.tenant_id)
        if state is not None:
            answer["state"] = state
        answer["session_state"] = str(uuid.uuid4())
        return _respond(checked.redirect_uri, mode, answer)

    def _check_authorize(
        self,
        params: Any,
        client: OAuthClient,
        authority: Authority,
        redirect_uri: str,
        mode: str,
    ) -> AuthRequest:
        response_type = params.get("response_type", "")
        if response_type != "code":
            raise OAuthError(
                "unsupported_response_type",
                codes.UNSUPPORTED_RESPONSE_TYPE,
                f"response_type '{response_type}' is not supported: use 'code'.",
            )
        scope = parse_scope(params.get("scope", ""), authority.root)
        if params.get("prompt") == "none":
            raise OAuthError(
                "login_required",
                codes.LOGIN_REQUIRED,
                "The user must sign in: there is no single-sign-on session.",
            )
        challenge = params.get("code_challenge") or None
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

    def _signin_page(
        self,
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
            organisation=self.organisation(),
            login=login,
            error=error,
            redirect_origin=redirect_origin(checked.redirect_uri),
            status=status,
            headers=headers,
        )

    # -- /token --------------------------------------------------------------------------

    async def token(self, request: Request, segment: str | None) -> Response:
        basic = False
        try:
            authority = self.authority(request, segment)
            fields = await read_form(request)
            client_id, secret = fields.get("client_id", ""), fields.get("client_secret", "")
            try:
                given = basic_credentials(request.headers.get("authorization", ""))
            except MalformedBasic as exc:
                raise OAuthError(
                    "invalid_client", codes.BAD_SECRET, "Malformed client credentials.", status=401
                ) from exc
            if given is not None:
                basic = True
                client_id, secret = given
            grant = fields.get("grant_type", "")
            if not grant:
                raise _missing("grant_type")
            handlers: dict[str, Grant] = {
                "authorization_code": self._code_grant,
                "refresh_token": self._refresh_grant,
                DEVICE_CODE_GRANT: self._device_grant,
                "client_credentials": self._client_credentials_grant,
                "password": self._password_grant,
            }
            handler = handlers.get(grant)
            if handler is None:
                raise OAuthError(
                    "unsupported_grant_type",
                    codes.UNSUPPORTED_GRANT,
                    f"The grant type '{grant}' is not supported.",
                )
            body = await handler(
                request, authority, fields, ClientAuth(client_id, secret, basic), segment is None
            )
        except OAuthError as err:
            if err.status == 401 and basic:
                err.headers.setdefault("WWW-Authenticate", BASIC_CHALLENGE)
            return oauth_error_response(err, request)
        self._purge(time.time())
        return JSONResponse(body, headers=NO_STORE)

    async def _code_grant(
        self,
        request: Request,
        authority: Authority,
        fields: dict[str, str],
        auth: ClientAuth,
        legacy: bool,
    ) -> dict[str, Any]:
        client = self.registered_client(auth)
        code = fields.get("code", "")
        if not code:
            raise _missing("code")
        code_hash = secret_hash(code)
        row = self.storage.auth_code(code_hash)
        if row is None or row["client_id"] != client.client_id:
            raise OAuthError(
                "invalid_grant", codes.INVALID_GRANT, "The provided authorization code is invalid."
            )
        if (row["authority"] == ADFS) != authority.adfs:
            raise OAuthError(
                "invalid_grant",
                codes.OTHER_TENANT,
                "Provided Authorization Code is intended to use against other tenant, thus "
                "rejected.",
            )
        if row["used"]:
            self._code_replayed(row)
        if row["expires"] < time.time():
            raise OAuthError(
                "invalid_grant", codes.EXPIRED, "The provided authorization code has expired."
            )
        if fields.get("redirect_uri", "") != row["redirect_uri"]:
            raise OAuthError(
                "invalid_grant",
                codes.CODE_REDIRECT_MISMATCH,
                "The reply address does not match the reply address provided when requesting "
                "the authorization code.",
            )
        verifier = fields.get("code_verifier", "")
        if row["code_challenge"]:
            expected = b64url(_sha256(verifier)) if verifier else ""
            if not verifier or not hmac.compare_digest(expected, row["code_challenge"]):
                raise OAuthError(
                    "invalid_grant",
                    codes.PKCE_MISMATCH,
                    "The code_verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
        elif verifier:
            raise OAuthError(
                "invalid_grant",
                codes.PKCE_MISMATCH,
                "A code_verifier was sent, but the authorization request had no code_challenge.",
            )
        if not self.storage.redeem_auth_code(code_hash):
            self._code_replayed(row)
        scope = stored_scope(row["scope"])
        body, family = self.issue(
            authority,
            client.client_id,
            self.principal(row["user_id"]),
            scope,
            nonce=row["nonce"],
            auth_time=row["auth_time"],
            refresh="offline_access" in scope.oidc,
            with_client_info=fields.get("client_info") == "1",
        )
        if family is not None:
            self.storage.set_auth_code_family(code_hash, family)
        return body

    def _code_replayed(self, row: dict[str, Any]) -> None:
        """A code used twice: what it gave is revoked (RFC 6749 section 4.1.2)."""
        if row.get("family_id"):
            self.storage.revoke_token_family(row["family_id"])
        raise OAuthError(
            "invalid_grant",
            codes.CODE_REDEEMED,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code "
            "or use an existing refresh token.",
        )

    async def _refresh_grant(
        self,
        request: Request,
        authority: Authority,
        fields: dict[str, str],
        auth: ClientAuth,
        legacy: bool,
    ) -> dict[str, Any]:
        client = self.registered_client(auth)
        token = fields.get("refresh_token", "")
        if not token:
            raise _missing("refresh_token")
        token_hash = secret_hash(token)
        row = self.storage.refresh_token(token_hash)
        if row is None or row["client_id"] != client.client_id:
            raise OAuthError(
                "invalid_grant", codes.MALFORMED, "The provided refresh token is invalid."
            )
        if row["revoked"]:
            raise OAuthError("invalid_grant", codes.REVOKED, "The refresh token has been revoked.")
        if row["used"]:
            self._refresh_replayed(row["family_id"])
        if row["expires"] < time.time():
            raise OAuthError(
                "invalid_grant",
                codes.REFRESH_EXPIRED,
                "The refresh token has expired due to inactivity.",
            )
        if (row["authority"] == ADFS) != authority.adfs:
            raise OAuthError(
                "invalid_grant",
                codes.OTHER_TENANT,
                "The refresh token was issued by another authority.",
            )
        granted = stored_scope(row["scope"])
        asked = parse_scope(fields.get("scope", ""), authority.root, required=False)
        scope = Scope(asked.oidc | granted.oidc, asked.resource or granted.resource)
        principal = self.principal(row["user_id"])
        if not self.storage.rotate_refresh_token(token_hash):
            self._refresh_replayed(row["family_id"])
        body, _ = self.issue(
            authority,
            client.client_id,
            principal,
            scope,
            auth_time=row["auth_time"],
            family_id=row["family_id"],
            refresh=True,
            with_client_info=fields.get("client_info") == "1",
        )
        return body

    def _refresh_replayed(self, family_id: str) -> None:
        self.storage.revoke_token_family(family_id)
        raise OAuthError(
            "invalid_grant",
            codes.REVOKED,
            "The refresh token was already used; every token of this sign-in is revoked.",
        )

    async def _device_grant(
        self,
        request: Request,
        authority: Authority,
        fields: dict[str, str],
        auth: ClientAuth,
        legacy: bool,
    ) -> dict[str, Any]:
        client = self.registered_client(auth)
        device_code = fields.get("device_code") or fields.get("code", "")
        if not device_code:
            raise _missing("device_code")
        device_hash = secret_hash(device_code)
        row = self.storage.device_code(device_hash=device_hash)
        if row is None or row["client_id"] != client.client_id:
            raise OAuthError("invalid_grant", codes.INVALID_GRANT, "The device code is invalid.")
        if (row["authority"] == ADFS) != authority.adfs:
            raise OAuthError(
                "invalid_grant", codes.OTHER_TENANT, "The device code is for another authority."
            )
        now = time.time()
        if row["expires"] < now:
            raise OAuthError(
                "expired_token", codes.DEVICE_CODE_EXPIRED, "The device code has expired."
            )
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
            self.storage.update_device_code(device_hash, {"last_poll": now})
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
        if not self.storage.update_device_code(
            device_hash, {"status": "consumed"}, status="approved"
        ):
            raise OAuthError(
                "invalid_grant", codes.CODE_REDEEMED, "The device code was already redeemed."
            )
        scope = stored_scope(row["scope"])
        body, _ = self.issue(
            authority,
            client.client_id,
            self.principal(row["user_id"]),
            scope,
            auth_time=row["auth_time"],
            refresh="offline_access" in scope.oidc,
            with_client_info=fields.get("client_info") == "1",
        )
        return body

    async def _client_credentials_grant(
        self,
        request: Request,
        authority: Authority,
        fields: dict[str, str],
        auth: ClientAuth,
        legacy: bool,
    ) -> dict[str, Any]:
        if not legacy and fields.get("scope"):
            parse_scope(fields["scope"], authority.root)
        address = _address(request)
        wait = self.throttle.retry_after(auth.client_id, address)
        if wait:
            raise SigninFailure("locked", "Too many failed attempts.", wait).oauth()
        user_id = (
            await run_in_threadpool(self.auth.check_client, auth.client_id, auth.secret)
            if auth.client_id
            else None
        )
        if user_id is None:
            self.throttle.failed(auth.client_id, address)
            raise OAuthError(
                "invalid_client", codes.BAD_SECRET, "Client authentication failed.", status=401
            )
        principal = self.auth.principal(user_id)
        if principal is None:
            raise OAuthError("invalid_grant", codes.USER_DISABLED, "The user is disabled.")
        now = time.time()
        lifetime = self.settings.access_token_lifetime
        token = self.tokens.access_token(
            authority.audience(auth.client_id), principal, app_only=True, now=now
        )
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }

    async def _password_grant(
        self,
        request: Request,
        authority: Authority,
        fields: dict[str, str],
        auth: ClientAuth,
        legacy: bool,
    ) -> dict[str, Any]:
        if (
            auth.client_id
            and auth.secret
            and self.storage.application(auth.client_id) is not None
            and await run_in_threadpool(self.auth.check_client, auth.client_id, auth.secret) is None
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
            user_id = await self.verify_user(
                username, fields.get("password", ""), _address(request)
            )
        except SigninFailure as failure:
            raise failure.oauth() from None
        registered = find_client(self.storage, auth.client_id) is not None
        body, _ = self.issue(
            authority,
            auth.client_id,
            self.principal(user_id),
            scope,
            refresh=registered and "offline_access" in scope.oidc,
            with_client_info=fields.get("client_info") == "1",
        )
        return body

    # -- device code ---------------------------------------------------------------------

    async def devicecode(self, request: Request, segment: str) -> Response:
        try:
            authority = self.authority(request, segment)
            fields = await read_form(request)
            client_id = fields.get("client_id", "")
            client = find_client(self.storage, client_id)
            if client is None:
                raise self.client_not_found(client_id)
            if not client.public:
                raise OAuthError(
                    "invalid_client",
                    codes.NOT_PUBLIC_CLIENT,
                    "The request body must contain the following parameter: 'client_assertion' "
                    "or 'client_secret': the application is not a public client.",
                    status=401,
                )
            scope = parse_scope(fields.get("scope", ""), authority.root)
        except OAuthError as err:
            return oauth_error_response(err, request)
        now = time.time()
        lifetime = self.settings.device_code_lifetime
        interval = self.settings.device_poll_interval
        device_code = new_secret()
        for _ in range(10):
            user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
            stored = self.storage.add_device_code(
                {
                    "device_hash": secret_hash(device_code),
                    "user_code_hash": secret_hash(user_code),
                    "client_id": client.client_id,
                    "scope": scope.stored,
                    "authority": ADFS if authority.adfs else "tenant",
                    "expires": now + lifetime,
                    "interval": interval,
                    "status": "pending",
                }
            )
            if stored:
                break
        else:
            raise RuntimeError("no free device user code")
        self._purge(now)
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

    async def devicelogin(self, request: Request) -> Response:
        organisation = self.organisation()
        action = str(request.url.replace(query=""))
        if request.method == "GET":
            return device_page(
                action=action,
                organisation=organisation,
                user_code=request.query_params.get("otc", ""),
            )
        try:
            form = await read_form(request)
        except OAuthError as err:
            return error_page(err, status=err.status)
        typed, login = form.get("otc", ""), form.get("login", "")
        address = _address(request)

        def again(error: str, status: int = 400, headers: dict[str, str] | None = None) -> Response:
            return device_page(
                action=action,
                organisation=organisation,
                user_code=typed,
                login=login,
                error=error,
                status=status,
                headers=headers,
            )

        wait = self.throttle.retry_after(login, address)
        if wait:
            return again(
                f"Too many failed attempts. Try again in {wait} seconds.",
                429,
                {"Retry-After": str(wait)},
            )
        row = self.storage.device_code(user_code_hash=secret_hash(normalise_user_code(typed)))
        if row is None or row["status"] != "pending" or row["expires"] < time.time():
            self.throttle.failed("", address)
            return again("That code didn't work. Check the code and try again.")
        client = find_client(self.storage, row["client_id"])
        app = client.name if client else row["client_id"]
        if form.get("action") == "deny":
            self.storage.update_device_code(
                row["device_hash"], {"status": "denied"}, status="pending"
            )
            return device_page(
                action=action,
                organisation=organisation,
                done=f"You have declined to sign in to {app} on the other device. You may now "
                "close this window.",
            )
        try:
            user_id = await self.verify_user(login, form.get("passwd", ""), address)
        except SigninFailure as failure:
            status = 429 if failure.kind == "locked" else 400
            return again(failure.message, status, failure.headers())
        approved = self.storage.update_device_code(
            row["device_hash"],
            {"status": "approved", "user_id": user_id, "auth_time": time.time()},
            status="pending",
        )
        if not approved:
            return again("That code didn't work. Check the code and try again.")
        return device_page(
            action=action,
            organisation=organisation,
            done=f"You have signed in to the {app} application on your device. You may now "
            "close this window.",
        )

    # -- /revoke (RFC 7009) ----------------------------------------------------------------

    async def revoke(self, request: Request, segment: str) -> Response:
        try:
            self.authority(request, segment)
            fields = await read_form(request)
            token = fields.get("token", "")
            if not token:
                raise _missing("token")
            client_id, secret = fields.get("client_id", ""), fields.get("client_secret", "")
            try:
                given = basic_credentials(request.headers.get("authorization", ""))
            except MalformedBasic as exc:
                raise OAuthError(
                    "invalid_client", codes.BAD_SECRET, "Malformed client credentials.", status=401
                ) from exc
            if given is not None:
                client_id, secret = given
            client = self.registered_client(ClientAuth(client_id, secret, given is not None))
            row = self.storage.refresh_token(secret_hash(token))
            if row is not None:
                if row["client_id"] != client.client_id:
                    raise OAuthError(
                        "unauthorized_client",
                        codes.INVALID_GRANT,
                        "The token was issued to another client.",
                    )
                self.storage.revoke_token_family(row["family_id"])
        except OAuthError as err:
            return oauth_error_response(err, request)
        return Response(status_code=200, headers=NO_STORE)


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode("ascii", "replace")).digest()


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
