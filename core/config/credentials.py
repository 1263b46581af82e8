"""Secrets (CRM and mail passwords) in the system keyring, and nowhere else.

Rules (issue 6, "Credentials"):

- ``TRACKBOX_CRM_PASSWORD`` / ``TRACKBOX_MAIL_PASSWORD`` take precedence for scripts and CI;
  when set, the secret comes from there and nothing is stored.
- Otherwise the keyring. keyring's own ``PYTHON_KEYRING_BACKEND`` is honoured.
- No usable backend (``keyring.backends.fail.Keyring``, the default on a headless Linux box)
  raises :class:`CredentialsUnavailable` with what to do. We never fall back to a file, and we
  refuse a plaintext backend that keyring picked *on its own* (installing ``keyrings.alt`` makes
  one the silent default); a user who names one in ``PYTHON_KEYRING_BACKEND`` gets it.

Entries: service ``trackbox:<profile>:<kind>``, user name = the account's user name.
"""

from __future__ import annotations

import enum
import os
from typing import Any

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

ENV_VARS = {"crm": "TRACKBOX_CRM_PASSWORD", "mail": "TRACKBOX_MAIL_PASSWORD"}

FIX_HINT = (
    "Install and unlock a Secret Service provider (for example gnome-keyring or KeePassXC; "
    "on a headless machine: dbus-run-session plus gnome-keyring-daemon --unlock), or select a "
    "keyring backend with the PYTHON_KEYRING_BACKEND environment variable, or set "
    "TRACKBOX_CRM_PASSWORD / TRACKBOX_MAIL_PASSWORD for this process."
)


class SecretKind(enum.StrEnum):
    CRM = "crm"
    MAIL = "mail"


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
    value = os.environ.get(ENV_VARS[SecretKind(kind).value])
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


__all__ = [
    "ENV_VARS",
    "CredentialsError",
    "CredentialsUnavailable",
    "SecretKind",
    "delete_secret",
    "describe_backend",
    "from_environment",
    "get_secret",
    "keyring_backend",
    "set_secret",
]
