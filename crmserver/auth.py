"""Authentication: HTTP Basic with a user's e-mail and password, and bearer tokens from the
OAuth2 token endpoint (``client_credentials`` and ``password`` grants, RFC 6749).

Passwords are stored as salted scrypt hashes. Because Basic auth sends the password with
every request and scrypt is deliberately slow, a verified credential is remembered in memory
as a keyed digest (never the password) together with the stored hash it was checked against;
changing the password invalidates it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .entities import ENTITIES
from .errors import UNAUTHORIZED, ODataError
from .records import Caller
from .storage import Storage

TOKEN_LIFETIME = 3600
MAX_FORM_BYTES = 16 * 1024
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
REALM = 'Basic realm="trackbox-crm", charset="UTF-8", Bearer realm="trackbox-crm"'


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


def unauthorized(message: str = "The user is not authenticated.") -> ODataError:
    return ODataError(401, UNAUTHORIZED, message, {"WWW-Authenticate": REALM})


class Authenticator:
    """Turns request credentials into a :class:`Caller`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, tuple[str, str]] = {}

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        rows = self.storage.query(
            "SELECT systemuserid, businessunitid, isdisabled, tbx_isadministrator FROM systemuser"
            " WHERE internalemailaddress = ? COLLATE NOCASE",
            (email.strip(),),
        )
        return rows[0] if rows else None

    def caller(self, user_id: str) -> Caller:
        row = self.storage.get(ENTITIES["systemuser"], user_id)
        if row is None or row.get("isdisabled"):
            raise unauthorized("The user is disabled or does not exist.")
        return Caller(
            user_id, row.get("businessunitid") or "", bool(row.get("tbx_isadministrator"))
        )

    def check_password(self, email: str, password: str) -> str | None:
        """The user id when ``email``/``password`` are valid, else None."""
        user = self.user_by_email(email)
        if user is None or user.get("isdisabled"):
            return None
        stored = self.storage.password_hash(user["systemuserid"])
        if not stored:
            return None
        key = hmac.new(self._key, f"{email.lower()}\0{password}".encode(), "sha256").digest()
        hit = self._verified.get(key)
        if hit is not None and hit == (user["systemuserid"], stored):
            return str(user["systemuserid"])
        if not verify_password(password, stored):
            return None
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[key] = (user["systemuserid"], stored)
        return str(user["systemuserid"])

    def authenticate(self, request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            email, password = _basic(value)
            user_id = self.check_password(email, password)
            if user_id is None:
                raise unauthorized("Invalid user name or password.")
            return self.caller(user_id)
        if scheme.lower() == "bearer" and value.strip():
            digest = hashlib.sha256(value.strip().encode()).hexdigest()
            user_id = self.storage.token_user(digest, time.time())
            if user_id is None:
                raise unauthorized("The access token is invalid or has expired.")
            return self.caller(user_id)
        raise unauthorized()

    def issue_token(self, user_id: str) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        now = time.time()
        self.storage.store_token(
            hashlib.sha256(token.encode()).hexdigest(), user_id, now + TOKEN_LIFETIME, now
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
        }

    def check_client(self, client_id: str, secret: str) -> str | None:
        """A registered application, or (when none has this id) a user's e-mail/password."""
        app = self.storage.application(client_id)
        if app is not None:
            if verify_password(secret, app["secret_hash"]):
                return str(app["systemuserid"])
            return None
        return self.check_password(client_id, secret)

    async def token_endpoint(self, request: Request) -> Response:
        """``POST /oauth2/v2.0/token`` (form-encoded)."""
        declared = request.headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
            return _oauth_error(
                413 if declared.isdigit() else 411,
                "invalid_request",
                "The token request must be a small form with a length.",
            )
        form = await request.form(max_files=0, max_fields=20)
        fields = {k: str(v) for k, v in form.items()}
        client_id, secret = fields.get("client_id", ""), fields.get("client_secret", "")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                client_id, secret = _basic(header[6:])
            except ODataError:
                return _oauth_error(401, "invalid_client", "Malformed client credentials.")
        grant = fields.get("grant_type", "")
        if grant == "client_credentials":
            user_id = self.check_client(client_id, secret) if client_id else None
            if user_id is None:
                return _oauth_error(401, "invalid_client", "Client authentication failed.")
        elif grant == "password":
            if (
                client_id
                and secret
                and self.storage.application(client_id) is not None
                and self.check_client(client_id, secret) is None
            ):
                return _oauth_error(401, "invalid_client", "Client authentication failed.")
            user_id = self.check_password(fields.get("username", ""), fields.get("password", ""))
            if user_id is None:
                return _oauth_error(400, "invalid_grant", "Invalid user name or password.")
        else:
            return _oauth_error(
                400, "unsupported_grant_type", f"Grant type '{grant}' is not supported."
            )
        try:
            self.caller(user_id)
        except ODataError:
            return _oauth_error(400, "invalid_grant", "The user is disabled.")
        return JSONResponse(
            self.issue_token(user_id), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
        )


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise unauthorized("Malformed Basic credentials.") from exc
    email, sep, password = decoded.partition(":")
    if not sep:
        raise unauthorized("Malformed Basic credentials.")
    return email, password


def _oauth_error(status: int, error: str, description: str) -> Response:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="trackbox-crm"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )
