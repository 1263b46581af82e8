"""Secrets (CRM and mail passwords) in the system keyring, and nowhere else.

Rules (issue 6, "Credentials"):

- ``TRACKBOX_CRM_PASSWORD`` / ``TRACKBOX_MAIL_PASSWORD`` / ``TRACKBOX_DAV_PASSWORD`` take
  precedence for scripts and CI;
  when set, the secret comes from there and nothing is stored.
- Otherwise the keyring. keyring's own ``PYTHON_KEYRING_BACKEND`` is honoured.
- No usable backend (``keyring.backends.fail.Keyring``, the default on a headless Linux box)
  raises :class:`CredentialsUnavailable` with what to do. We never fall back to a file, and we
  refuse a plaintext backend that keyring picked *on its own* (installing ``keyrings.alt`` makes
  one the silent default); a user who names one in ``PYTHON_KEYRING_BACKEND`` gets it.

Entries: service ``trackbox:<profile>:<kind>``, user name = the account's user name.

The MSAL token cache of a profile (refresh tokens: as secret as a password) is a secret too:
:class:`TokenCacheStore` keeps it under ``trackbox:<profile>:token-cache`` in chunks, because
Windows Credential Manager caps one entry's secret at 2,560 bytes (``CRED_MAX_CREDENTIAL_BLOB_
SIZE``; keyring stores UTF-16, so about 1,280 characters) while a cache with a few tokens is
several kilobytes. No environment variable stands in for it.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
from typing import Any

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

ENV_VARS = {
    "crm": "TRACKBOX_CRM_PASSWORD",
    "mail": "TRACKBOX_MAIL_PASSWORD",
    "dav": "TRACKBOX_DAV_PASSWORD",
}

FIX_HINT = (
    "Install and unlock a Secret Service provider (for example gnome-keyring or KeePassXC; "
    "on a headless machine: dbus-run-session plus gnome-keyring-daemon --unlock), or select a "
    "keyring backend with the PYTHON_KEYRING_BACKEND environment variable, or set "
    "TRACKBOX_CRM_PASSWORD / TRACKBOX_MAIL_PASSWORD / TRACKBOX_DAV_PASSWORD for this process."
)


class SecretKind(enum.StrEnum):
    CRM = "crm"
    MAIL = "mail"
    DAV = "dav"  # the CalDAV/CardDAV server's password (IMAP profiles' contacts and calendar)
    TOKEN_CACHE = "token-cache"  # MSAL's serialised cache, in chunks (TokenCacheStore)


log = logging.getLogger("trackbox.credentials")


class CredentialsError(Exception):
    """Root of the credential errors."""


class CredentialsUnavailable(CredentialsError):
    """No keyring backend can hold secrets here. ``backend`` names the one keyring chose,
    ``detail`` what went wrong, ``hint`` how to fix it."""

    def __init__(self, backend: str, detail: str, hint: str = FIX_HINT) -> None:
        super().__init__(backend, detail, hint)
        self.backend = backend
        self.detail = detail
        self.hint = hint

    def __str__(self) -> str:
        return f"No usable keyring ({self.backend}): {self.detail}. {self.hint}"


class SecretMissing(CredentialsError):
    """No secret of ``kind`` is stored for ``user`` in ``profile`` (and its environment
    variable, ``variable``, is not set)."""

    def __init__(self, profile: str, kind: str, user: str) -> None:
        super().__init__(profile, kind, user)
        self.profile = profile
        self.kind = kind
        self.user = user
        self.variable = ENV_VARS.get(kind, "")

    def __str__(self) -> str:
        also = f" or set {self.variable}" if self.variable else ""
        return (
            f"No {self.kind} password stored for {self.user!r} in profile {self.profile!r}: "
            f"run 'trackbox account add' again{also}."
        )


def _name(backend: Any) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_fail(backend: Any) -> bool:
    return _name(backend).startswith("keyring.backends.fail.")


def _is_plaintext(backend: Any) -> bool:
    # keyrings.alt's file backends (PlaintextKeyring, and the "encrypted" ones that keep the
    # key next to the file) are no better than a plaintext file.
    return _name(backend).startswith("keyrings.alt.")


def _explicitly_selected() -> bool:
    return bool(os.environ.get("PYTHON_KEYRING_BACKEND"))


def keyring_backend() -> KeyringBackend:
    """The keyring backend to use, or CredentialsUnavailable saying why there is none."""
    backend = keyring.get_keyring()
    members = list(getattr(backend, "backends", None) or [backend])
    usable = [b for b in members if not _is_fail(b)]
    if not _explicitly_selected():
        usable = [b for b in usable if not _is_plaintext(b)]
    if not usable:
        detail = "no secret store is available (no D-Bus session or Secret Service?)"
        if any(_is_plaintext(b) for b in members):
            detail = "only a plaintext file backend (keyrings.alt) is installed"
        raise CredentialsUnavailable(_name(backend), detail)
    return usable[0] if len(usable) != len(members) else backend


def describe_backend() -> str:
    """One line for diagnostics: which backend, or why none (never a secret)."""
    try:
        return _name(keyring_backend())
    except CredentialsUnavailable as exc:
        return f"unavailable: {exc.detail}"


def _service(profile: str, kind: SecretKind | str) -> str:
    return f"trackbox:{profile}:{SecretKind(kind).value}"


def from_environment(kind: SecretKind | str) -> str | None:
    variable = ENV_VARS.get(SecretKind(kind).value)
    value = os.environ.get(variable) if variable else None
    return value if value else None


def get_secret(profile: str, kind: SecretKind | str, user: str) -> str | None:
    """The secret from the environment, else from the keyring (None when not stored)."""
    env = from_environment(kind)
    if env is not None:
        return env
    backend = keyring_backend()
    try:
        return backend.get_password(_service(profile, kind), user)
    except keyring.errors.KeyringError as exc:
        raise CredentialsUnavailable(_name(backend), f"{type(exc).__name__}: {exc}") from None


def set_secret(profile: str, kind: SecretKind | str, user: str, secret: str) -> bool:
    """Store a secret in the keyring. Returns False (storing nothing) when the environment
    variable for ``kind`` is set: scripts that use it never leave secrets behind."""
    if from_environment(kind) is not None:
        return False
    backend = keyring_backend()
    try:
        backend.set_password(_service(profile, kind), user, secret)
    except keyring.errors.KeyringError as exc:
        raise CredentialsUnavailable(_name(backend), f"{type(exc).__name__}: {exc}") from None
    return True


def delete_secret(profile: str, kind: SecretKind | str, user: str) -> None:
    """Forget a stored secret (missing is fine)."""
    backend = keyring_backend()
    try:
        backend.delete_password(_service(profile, kind), user)
    except keyring.errors.PasswordDeleteError:
        pass
    except keyring.errors.KeyringError as exc:
        raise CredentialsUnavailable(_name(backend), f"{type(exc).__name__}: {exc}") from None


#: Characters of one keyring entry of a token cache (see the module's docstring).
CHUNK_CHARS = 1000
_HEADER_USER = "chunks"
_FORMAT = "v1"


class TokenCacheStore:
    """A profile's MSAL token cache in the keyring (``core.crm.token_cache.CacheStore``).

    Layout, all under service ``trackbox:<profile>:token-cache``: user ``chunks`` holds
    ``v1 <count> <sha256 of the text>``, users ``0`` … ``count-1`` the text's pieces of at most
    :data:`CHUNK_CHARS` characters. Saving writes the pieces first and the header last, then
    removes pieces the new text no longer has; a header whose pieces are missing or do not
    hash to it (an interrupted save, an edit by hand) reads as nothing, with a warning.
    Raises CredentialsUnavailable when no keyring can hold it."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.service = _service(profile, SecretKind.TOKEN_CACHE)

    def _backend(self) -> KeyringBackend:
        return keyring_backend()

    def _get(self, backend: KeyringBackend, user: str) -> str | None:
        try:
            return backend.get_password(self.service, user)
        except keyring.errors.KeyringError as exc:
            raise CredentialsUnavailable(_name(backend), f"{type(exc).__name__}: {exc}") from None

    def _header(self, backend: KeyringBackend) -> tuple[int, str] | None:
        header = self._get(backend, _HEADER_USER)
        if header is None:
            return None
        parts = header.split(" ")
        if len(parts) != 3 or parts[0] != _FORMAT or not parts[1].isdigit():
            log.warning("token cache profile=%s header unreadable: ignored", self.profile)
            return (0, "")
        return int(parts[1]), parts[2]

    def load(self) -> str | None:
        backend = self._backend()
        header = self._header(backend)
        if header is None or header[0] == 0:
            return None
        count, digest = header
        pieces = []
        for index in range(count):
            piece = self._get(backend, str(index))
            if piece is None:
                log.warning("token cache profile=%s piece %d missing: ignored", self.profile, index)
                return None
            pieces.append(piece)
        text = "".join(pieces)
        if hashlib.sha256(text.encode()).hexdigest() != digest:
            log.warning("token cache profile=%s does not match its digest: ignored", self.profile)
            return None
        return text

    def save(self, text: str) -> None:
        backend = self._backend()
        old = self._header(backend)
        pieces = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
        digest = hashlib.sha256(text.encode()).hexdigest()
        try:
            for index, piece in enumerate(pieces):
                backend.set_password(self.service, str(index), piece)
            backend.set_password(self.service, _HEADER_USER, f"{_FORMAT} {len(pieces)} {digest}")
        except keyring.errors.KeyringError as exc:
            raise CredentialsUnavailable(_name(backend), f"{type(exc).__name__}: {exc}") from None
        for index in range(len(pieces), old[0] if old else 0):
            self._delete(backend, str(index))

    def clear(self) -> None:
        backend = self._backend()
        old = self._header(backend)
        self._delete(backend, _HEADER_USER)
        count = old[0] if old else 0
        index = 0
        # Past the header's count too: an unreadable header may have left pieces behind.
        while index < count or self._get(backend, str(index)) is not None:
            self._delete(backend, str(index))
            index += 1

    def _delete(self, backend: KeyringBackend, user: str) -> None:
        try:
            backend.delete_password(self.service, user)
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as exc:
            raise CredentialsUnavailable(_name(backend), f"{type(exc).__name__}: {exc}") from None


__all__ = [
    "CHUNK_CHARS",
    "ENV_VARS",
    "CredentialsError",
    "CredentialsUnavailable",
    "SecretKind",
    "SecretMissing",
    "TokenCacheStore",
    "delete_secret",
    "describe_backend",
    "from_environment",
    "get_secret",
    "keyring_backend",
    "set_secret",
]
