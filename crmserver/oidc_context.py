"""What every sign-in endpoint shares: the organisation's stores and settings, the password
throttle, the checks of users and clients, and the small form reader, so each fact about
them has one home whichever endpoint asks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from . import oauth_errors as codes
from .auth import MalformedBasic, basic_credentials, verify_password
from .authorities import Authority, resolve
from .oauth_clients import OAuthClient, find_client
from .oauth_errors import OAuthError
from .signin_throttle import SigninThrottle
from .tokens import Principal

if TYPE_CHECKING:
    from .app import Service

MAX_FORM_BYTES = 16 * 1024
PURGE_EVERY = 600.0
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
        """The same refusal as a token endpoint error (the page shows ``message`` instead)."""
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
class ClientAuth:
    """The client id and secret of a token request, and whether they came as Basic."""

    client_id: str
    secret: str
    basic: bool


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """One ``/token`` request as every grant reads it; ``legacy``: the tenant-less legacy
    endpoint, whose leniency the client credentials and password grants keep."""

    ctx: SignInContext
    request: Request
    authority: Authority
    fields: dict[str, str]
    auth: ClientAuth
    legacy: bool

    def unpacked(
        self,
    ) -> tuple[SignInContext, Request, Authority, dict[str, str], ClientAuth, bool]:
        return self.ctx, self.request, self.authority, self.fields, self.auth, self.legacy


def missing(name: str) -> OAuthError:
    """The error for a required form field that is absent or empty."""
    return OAuthError(
        "invalid_request",
        codes.MISSING_PARAMETER,
        f"The request body must contain the following parameter: '{name}'.",
    )


def client_address(request: Request) -> str:
    """The peer address the throttle counts failures against."""
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


def client_auth(request: Request, fields: dict[str, str]) -> ClientAuth:
    """The client credentials of a request: HTTP Basic when sent, else the form's fields."""
    client_id, secret = fields.get("client_id", ""), fields.get("client_secret", "")
    try:
        given = basic_credentials(request.headers.get("authorization", ""))
    except MalformedBasic as exc:
        raise OAuthError(
            "invalid_client", codes.BAD_SECRET, "Malformed client credentials.", status=401
        ) from exc
    if given is not None:
        client_id, secret = given
    return ClientAuth(client_id, secret, given is not None)


class SignInContext:
    """The sign-in state of one organisation, and the checks its endpoints share."""

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
        """The user a stored grant names, who may have been disabled or deleted since."""
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
            return missing("client_id")
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

    def purge(self, now: float) -> None:
        """Drop expired codes and tokens, at most every ``PURGE_EVERY`` seconds."""
        if now - self._last_purge > PURGE_EVERY:
            self._last_purge = now
            self.storage.purge_signin_state(now)
