"""Editing a saved profile's connection or sign-in (Options › Accounts): the new values are
validated as a whole, and passwords follow a renamed user in the keyring."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.config.profile_checks import check_connection, validate
from core.config.profile_config import (
    CONNECTION_KEYS,
    DAV_KEYS,
    SIGN_IN_KEYS,
    Profile,
    ProfileConfig,
    account_name,
    needs_mail_password,
)
from core.config.profile_errors import ProfileConfigError
from core.config.profile_store import Profiles


def with_connection(
    config: ProfileConfig, changes: Mapping[str, str], path: Path | str = "<form>"
) -> ProfileConfig:
    """``config`` with new connection values, the CalDAV/CardDAV keys among them
    (validated; ProfileConfigError otherwise)."""
    keys = (*CONNECTION_KEYS, *DAV_KEYS)
    unknown = set(changes) - set(keys)
    if unknown:
        raise ProfileConfigError(
            path, sorted(unknown)[0], "…", f"Not a connection key: {', '.join(keys)}."
        )
    new = validate({**config.to_dict(), **{k: v.strip() for k, v in changes.items()}}, path)
    check_connection(path, new.to_dict(), editing=True)
    return new


def with_sign_in(
    config: ProfileConfig, changes: Mapping[str, str], path: Path | str = "<form>"
) -> ProfileConfig:
    """``config`` with new sign-in values (:data:`SIGN_IN_KEYS`; validated)."""
    unknown = set(changes) - set(SIGN_IN_KEYS)
    if unknown:
        raise ProfileConfigError(
            path, sorted(unknown)[0], "…", f"Not a sign-in key: {', '.join(SIGN_IN_KEYS)}."
        )
    return validate({**config.to_dict(), **{k: v.strip() for k, v in changes.items()}}, path)


def save_connection(
    profiles: Profiles,
    name: str,
    changes: Mapping[str, str],
    *,
    crm_password: str = "",
    mail_password: str = "",
    dav_password: str = "",
) -> Profile:
    """Write profile ``name`` with a new connection; passwords go to the keyring only.

    An empty password keeps the stored one; when the user name changed it is moved to the
    new name (secrets are stored per user name). Secrets are written before the file, so a
    keyring failure leaves the profile as it was. Raises ProfileError, CredentialsError."""
    from core.config.credentials import SecretKind

    old = profiles.load(name)
    config = with_connection(old.config, changes, old.config_path)
    _keep_secret(
        name,
        SecretKind.CRM,
        account_name(old.config, "crm"),
        account_name(config, "crm"),
        crm_password,
    )
    if needs_mail_password(config.mail_url):
        _keep_secret(
            name,
            SecretKind.MAIL,
            account_name(old.config, "mail"),
            account_name(config, "mail"),
            mail_password,
        )
    if config.has_dav:
        _keep_secret(
            name,
            SecretKind.DAV,
            account_name(old.config, "dav"),
            account_name(config, "dav"),
            dav_password,
        )
    return profiles.save(name, config)


def _keep_secret(profile: str, kind: Any, old_user: str, new_user: str, typed: str) -> None:
    from core.config.credentials import delete_secret, get_secret, set_secret

    if typed:
        set_secret(profile, kind, new_user, typed)
        return
    if new_user == old_user:
        return
    stored = get_secret(profile, kind, old_user)
    if stored and set_secret(profile, kind, new_user, stored):
        delete_secret(profile, kind, old_user)


__all__ = ["save_connection", "with_connection", "with_sign_in"]
