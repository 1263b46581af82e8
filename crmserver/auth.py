"""Authentication of Web API requests: HTTP Basic with a user's e-mail and password, and
bearer tokens (RS256 JWTs minted by the sign-in endpoints in :mod:`crmserver.oidc`).

Passwords are stored as salted scrypt hashes. Because Basic auth sends the password with
every request and scrypt is deliberately slow, a verified credential is remembered in memory
as a keyed digest (never the password) together with the stored hash it was checked against;
changing the password invalidates it. A verified bearer token is remembered the same way (as a
digest) until it expires. An unauthenticated request is answered 401 with both challenges:
Basic, and Dataverse's ``Bearer authorization_uri=…, resource_id=…`` naming the sign-in
authority and the resource.

Basic sign-in goes through the same :class:`~crmserver.signin_throttle.SigninThrottle` as the
sign-in endpoints (per account and per client address; a locked key is refused with 429 and
``Retry-After`` before any scrypt runs), and :meth:`Authenticator.authenticate_async` checks
the password on a worker thread so guessing does not stall the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from .authorities import accepted_issuers, root_of
from .entities import ENTITIES
from .errors import UNAUTHORIZED, ODataError
from .records import Caller
from .signin_throttle import SigninThrottle
from .storage import Storage
from .tokens import InvalidToken, Principal, TokenIssuer

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
BASIC_CHALLENGE = 'Basic realm="trackbox-crm", charset="UTF-8"'
MAX_REMEMBERED = 10_000


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), dklen=32, n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


_DUMMY_HASH: list[str] = []


def _spend_like_a_check(password: str) -> None:
    """Take as long as a real password check, so that timing does not tell which accounts
    exist."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(secrets.token_hex(8)))
    verify_password(password, _DUMMY_HASH[0])


def challenge(root: str, tenant_id: str) -> str:
    """The ``WWW-Authenticate`` value of a 401: Basic, and Dataverse's bearer challenge."""
    return (
        f'{BASIC_CHALLENGE}, Bearer authorization_uri="{root}/{tenant_id}/oauth2/authorize", '
        f'resource_id="{root}/"'
    )


class Authenticator:
    """Turns request credentials into a :class:`Caller`."""

    def __init__(self, storage: Storage, tokens: TokenIssuer) -> None:
        self.storage = storage
        self.tokens = tokens
        self.tenant_id = storage.tenant_id()
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, tuple[str, str]] = {}
        self._bearers: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def unauthorized(
        self, request: Request, message: str = "The user is not authenticated."
    ) -> ODataError:
        header = challenge(root_of(request), self.tenant_id)
        return ODataError(401, UNAUTHORIZED, message, {"WWW-Authenticate": header})

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        rows = self.storage.query(
            "SELECT systemuserid, businessunitid, isdisabled, tbx_isadministrator FROM systemuser"
            " WHERE internalemailaddress = ? COLLATE NOCASE",
            (email.strip(),),
        )
        # Two users with one address (a database from before addresses were unique): which
        # one signs in cannot be told, so neither does.
        return rows[0] if len(rows) == 1 else None

    def caller(self, user_id: str, request: Request) -> Caller:
        row = self.storage.get(ENTITIES["systemuser"], user_id)
        if row is None or row.get("isdisabled"):
            raise self.unauthorized(request, "The user is disabled or does not exist.")
        return Caller(
            user_id,
            row.get("businessunitid") or "",
            bool(row.get("tbx_isadministrator")),
            is_application=bool(row.get("applicationid")),
        )

    def principal(self, user_id: str) -> Principal | None:
        """Who a token is about; None when the user is missing or disabled."""
        row = self.storage.get(ENTITIES["systemuser"], user_id)
        if row is None or row.get("isdisabled"):
            return None
        email = str(row.get("internalemailaddress") or "")
        return Principal(user_id, email, str(row.get("fullname") or email))

    def verify_credentials(self, email: str, password: str) -> tuple[str, bool] | None:
        """``(user id, disabled)`` when the password is the user's, else None."""
        check = self._begin_check(email, password)
        if isinstance(check, _PasswordCheck):
            return self._finish_check(check, check.run())
        return check

    async def verify_credentials_async(self, email: str, password: str) -> tuple[str, bool] | None:
        """:meth:`verify_credentials` with only scrypt on a worker thread: the lookups stay
        on the caller's thread, which may hold the database lock (a $batch change set)."""
        check = self._begin_check(email, password)
        if isinstance(check, _PasswordCheck):
            return self._finish_check(check, await run_in_threadpool(check.run))
        return check

    def _begin_check(self, email: str, password: str) -> tuple[str, bool] | None | _PasswordCheck:
        """A remembered answer, or the scrypt check still to run."""
        user = self.user_by_email(email)
        stored = self.storage.password_hash(user["systemuserid"]) if user else None
        if user is None or not stored:
            return _PasswordCheck(password, None, False, b"", "")
        disabled = bool(user.get("isdisabled"))
        key = hmac.new(self._key, f"{email.lower()}\0{password}".encode(), "sha256").digest()
        hit = self._verified.get(key)
        if hit is not None and hit == (user["systemuserid"], stored):
            return str(user["systemuserid"]), disabled
        return _PasswordCheck(password, str(user["systemuserid"]), disabled, key, stored)

    def _finish_check(self, check: _PasswordCheck, ok: bool) -> tuple[str, bool] | None:
        if not ok or check.user_id is None:
            return None
        with self._lock:
            if len(self._verified) > MAX_REMEMBERED:
                self._verified.clear()
            self._verified[check.key] = (check.user_id, check.stored)
        return check.user_id, check.disabled

    def check_password(self, email: str, password: str) -> str | None:
        """The user id when ``email``/``password`` are valid and the user is enabled."""
        result = self.verify_credentials(email, password)
        return result[0] if result is not None and not result[1] else None

    def check_client(self, client_id: str, secret: str) -> str | None:
        """A registered application's user, or (when none has this id) a user's e-mail and
        password. Basic client credentials may come form-urlencoded (RFC 6749 2.3.1, as MSAL
        sends them): the decoded form is tried too."""
        tried = [(client_id, secret)]
        decoded = (unquote_plus(client_id), unquote_plus(secret))
        if decoded != tried[0]:
            tried.append(decoded)
        for cid, sec in tried:
            app = self.storage.application(cid)
            if app is not None:
                if verify_password(sec, app["secret_hash"]):
                    return str(app["systemuserid"])
                continue
            user = self.check_password(cid, sec)
            if user is not None:
                return user
        return None

    def authenticate(self, request: Request, *, bearer_only: bool = False) -> Caller:
        """The caller of a request, checking a Basic password on this thread (use
        :meth:`authenticate_async` from the event loop)."""
        basic = None if bearer_only else self._basic_of(request)
        if basic is not None:
            return self._basic_result(request, self.verify_credentials(*basic))
        return self._bearer_caller(request)

    async def authenticate_async(
        self, request: Request, throttle: SigninThrottle | None = None
    ) -> Caller:
        """The caller of a request; a Basic password is refused while ``throttle`` locks its
        account or address, and is checked on a worker thread."""
        basic = self._basic_of(request)
        if basic is None:
            return self._bearer_caller(request)
        address = request.client.host if request.client else ""
        if throttle is not None:
            wait = throttle.retry_after(basic[0], address)
            if wait:
                raise self.locked(request, wait)
        result = await self.verify_credentials_async(*basic)
        if throttle is not None:
            if result is None:
                throttle.failed(basic[0], address)
            else:
                throttle.succeeded(basic[0])
        return self._basic_result(request, result)

    def locked(self, request: Request, wait: int) -> ODataError:
        """429 for a locked account or address, as the token endpoint answers."""
        return ODataError(
            429,
            UNAUTHORIZED,
            f"Too many failed sign-ins for this account or address. Try again in {wait} seconds.",
            {"Retry-After": str(wait)},
        )

    def _basic_of(self, request: Request) -> tuple[str, str] | None:
        try:
            return basic_credentials(request.headers.get("authorization", ""))
        except MalformedBasic as exc:
            raise self.unauthorized(request, "Malformed Basic credentials.") from exc

    def _basic_result(self, request: Request, result: tuple[str, bool] | None) -> Caller:
        if result is None or result[1]:
            raise self.unauthorized(request, "Invalid user name or password.")
        return self.caller(result[0], request)

    def _bearer_caller(self, request: Request) -> Caller:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            try:
                user_id = self.bearer_user(value.strip(), root_of(request))
            except InvalidToken as exc:
                raise self.unauthorized(request, exc.reason) from exc
            return self.caller(user_id, request)
        raise self.unauthorized(request)

    def bearer_user(self, token: str, root: str) -> str:
        """The user of a valid access token for the resource ``root``; raises
        :class:`InvalidToken`."""
        key = hmac.new(self._key, f"{root}\0{token}".encode(), "sha256").digest()
        now = time.time()
        hit = self._bearers.get(key)
        if hit is not None and now < hit[1]:
            return hit[0]
        claims = self.tokens.verify_access_token(
            token, root=root, issuers=accepted_issuers(root, self.tenant_id)
        )
        user_id = str(claims["oid"])
        with self._lock:
            if len(self._bearers) > MAX_REMEMBERED:
                self._bearers = {k: v for k, v in self._bearers.items() if now < v[1]}
                if len(self._bearers) > MAX_REMEMBERED:
                    self._bearers.clear()
            self._bearers[key] = (user_id, float(claims["exp"]) + self.tokens.clock_skew)
        return user_id


@dataclass(frozen=True)
class _PasswordCheck:
    """A password still to be checked against ``stored`` (``user_id`` None: no such user,
    and the check only spends the same time)."""

    password: str
    user_id: str | None
    disabled: bool
    key: bytes
    stored: str

    def run(self) -> bool:
        if self.user_id is None:
            _spend_like_a_check(self.password)
            return False
        return verify_password(self.password, self.stored)


class MalformedBasic(ValueError):
    """A Basic ``Authorization`` value that is not base64 of ``user:password``."""


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise MalformedBasic("Malformed Basic credentials.") from exc
    email, sep, password = decoded.partition(":")
    if not sep:
        raise MalformedBasic("Malformed Basic credentials.")
    return email, password


def basic_credentials(header: str) -> tuple[str, str] | None:
    """``(user, password)`` of a ``Basic`` Authorization header; None for another scheme;
    raises :class:`MalformedBasic`."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    return _basic(value)
