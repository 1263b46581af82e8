"""Profiles: one config file (TOML) + one data directory per mail/CRM account pair.

Where they live: under ``$TRACKBOX_HOME`` when set (tests, scripts, portable installs)::

    $TRACKBOX_HOME/profiles/<name>/profile.toml
    $TRACKBOX_HOME/profiles/<name>/data/{store.sqlite, logs/}
    $TRACKBOX_HOME/default-profile

otherwise the config goes to platformdirs' user *config* dir and the data to its user *data*
dir (``~/.config/trackbox/profiles/<name>.toml``, ``~/.local/share/trackbox/profiles/<name>/``
on Linux).

Config files are validated on load: a malformed file raises :class:`ProfileConfigError` naming
the file, the key and the bad value. Secrets are never written here (see
core/config/credentials.py); a config file that contains a password-like key is refused rather
than silently used.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from core.config.mail_urls import (
    EWS_SCHEMES,
    MailUrlError,
    ews_options,
    is_address,
    split_autodiscover,
)
from core.domain.entities import EMAIL_ENABLED

APP = "trackbox"
CONFIG_NAME = "profile.toml"
DEFAULT_PROFILE = "default"
#: The address books a profile can keep: every e-mail-enabled table (one home: the entity table).
ADDRESS_BOOK_ENTITIES = EMAIL_ENABLED

MAIL_SCHEMES = ("imaps", "imap", "imap+insecure", "ews", "ews+http", "ews+autodiscover", "maildir")
SMTP_SCHEMES = ("smtps", "smtp", "smtp+insecure")
CRM_SCHEMES = ("https", "http")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SECRET_KEY = re.compile(r"pass|secret|token|credential|api_?key", re.IGNORECASE)
_BLANK_INSIDE = re.compile(r"\s")
_IMAP_SCHEMES = ("imaps", "imap", "imap+insecure")
#: Schemes that send passwords and mail unencrypted: for a local test server only.
INSECURE_SCHEMES = ("imap+insecure", "smtp+insecure", "ews+http", "http")
#: The keys of a profile that say where the mailbox and the CRM are and who signs in.
CONNECTION_KEYS = ("mail_url", "smtp_url", "mail_user", "crm_url", "crm_user")
#: How a profile signs in to the CRM (``crm_auth``): HTTP Basic with a password kept in the
#: keyring; Microsoft Entra ID (Dynamics 365 online) or AD FS (on-premises, claims-based)
#: through MSAL; Windows sign-in (NTLM/Negotiate, on-premises) with a password in the keyring.
AUTH_KINDS = ("password", "microsoft", "adfs", "windows")
#: The kinds that sign in through MSAL (a browser or a device code; no password stored).
OAUTH_KINDS = ("microsoft", "adfs")
#: The keys that say how the CRM sign-in works (the same defaults as ``core.crm.signin``).
SIGN_IN_KEYS = ("crm_auth", "crm_client_id", "crm_authority", "crm_ca_file", "crm_discovery_url")
#: Microsoft's documented sample public client for Dataverse ("for development and
#: prototyping"); an organisation sets its own app registration's id.
DEFAULT_CLIENT_ID = "51f81489-12ee-4a9e-aaae-a2591f45987d"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com/organizations"
DEFAULT_DISCOVERY_URL = "https://globaldisco.crm.dynamics.com"


class ProfileError(Exception):
    """Root of the profile errors."""


class ProfileNotFound(ProfileError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name, known)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        known = ", ".join(self.known) or "none"
        return f"No profile named {self.name!r} (known profiles: {known})"


class ProfileExists(ProfileError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"A profile named {self.name!r} already exists"


class ProfileConfigError(ProfileError):
    """A config file (or a value given for one) is malformed. ``key``/``value`` are None for
    a file that is not valid TOML at all."""

    def __init__(self, path: Path | str, key: str | None, value: object, expected: str) -> None:
        super().__init__(str(path), key, value, expected)
        self.path = str(path)
        self.key = key
        self.value = value
        self.expected = expected

    def __str__(self) -> str:
        if self.key is None:
            return f"{self.path}: {self.expected}"
        return f"{self.path}: key {self.key!r} has value {self.value!r}. {self.expected}"


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """What a profile's config file holds. URLs follow the CLI's schemes (``imaps://host:993``,
    ``ews://host/EWS/Exchange.asmx``, ``maildir:/path`` …); ``folders`` empty = all folders."""

    mail_url: str
    crm_url: str
    crm_user: str
    mail_user: str = ""
    smtp_url: str = ""
    folders: tuple[str, ...] = ()
    include_subfolders: bool = True
    sync_interval_minutes: int = 15
    contacts_scope: str = "owned"  # "owned" (contacts I own) or "all" (all I can see)
    address_book_entities: tuple[str, ...] = ADDRESS_BOOK_ENTITIES
    body_cache_mb: int = 256
    crm_auth: str = "password"  # one of AUTH_KINDS
    crm_client_id: str = DEFAULT_CLIENT_ID
    crm_authority: str = DEFAULT_AUTHORITY
    crm_ca_file: str = ""  # a PEM file of CAs to trust for the CRM and the authority
    crm_discovery_url: str = DEFAULT_DISCOVERY_URL
    options: Mapping[str, Any] = field(default_factory=dict)  # [options] table, free-form

    @property
    def uses_oauth(self) -> bool:
        """Signs in through MSAL (no CRM password in the keyring)."""
        return self.crm_auth in OAUTH_KINDS

    @property
    def crm_verify(self) -> str | bool:
        """What to verify the CRM's and the authority's TLS certificates with: the CA file,
        else the system's CAs."""
        return os.path.expanduser(self.crm_ca_file) if self.crm_ca_file else True

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["folders"] = list(self.folders)
        data["address_book_entities"] = list(self.address_book_entities)
        data["options"] = dict(self.options)
        return data


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    config_path: Path
    data_dir: Path
    config: ProfileConfig

    @property
    def store_path(self) -> Path:
        return self.data_dir / "store.sqlite"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "trackbox.log"


def _expect(path: Path | str, key: str, value: object, ok: bool, expected: str) -> None:
    if not ok:
        raise ProfileConfigError(path, key, value, expected)


def _check_url(path: Path | str, key: str, value: str, schemes: tuple[str, ...]) -> None:
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    _expect(
        path,
        key,
        value,
        scheme in schemes,
        f"Not a valid URL: expected one of the schemes {', '.join(schemes)}.",
    )
    if scheme in ("maildir", "ews+autodiscover"):
        _expect(
            path,
            key,
            value,
            len(value.split(":", 1)[1].partition("?")[0]) > 0,
            "Expected a path or address after the scheme.",
        )
        return
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    _expect(
        path,
        key,
        value,
        bool(parts.hostname) and port != -1,
        "Not a valid URL: expected scheme://host[:port][/path].",
    )


# Connection checks, one per key, in the order a form shows them (each sees all the values:
# the SMTP check depends on the mail URL). ``editing``: the stricter checks for a value a
# person is typing now; a file that loaded before them must keep loading.


def _check_mail_url(path: Path | str, values: Mapping[str, Any], editing: bool) -> None:
    mail_url = values["mail_url"]
    _check_url(path, "mail_url", mail_url, MAIL_SCHEMES)
    scheme = mail_scheme(mail_url)
    if scheme not in EWS_SCHEMES:
        return
    try:
        options = ews_options(mail_url)
    except MailUrlError as exc:
        raise ProfileConfigError(path, "mail_url", mail_url, f"{exc}.") from None
    if not editing:
        return
    if scheme == "ews+autodiscover":
        _expect(
            path,
            "mail_url",
            mail_url,
            is_address(split_autodiscover(mail_url)[0]),
            "Autodiscover needs an e-mail address: ews+autodiscover:user@domain.",
        )
    else:
        user = values.get("mail_user") or values.get("crm_user", "")
        _expect(
            path,
            "mail_url",
            mail_url,
            "email" in options or is_address(user),
            f"The sign-in name {user!r} is not the mailbox's e-mail address: add "
            "?mailbox=you@example.com to the URL.",
        )


def _check_smtp_url(path: Path | str, values: Mapping[str, Any], editing: bool) -> None:
    smtp_url = values.get("smtp_url", "")
    if not smtp_url:
        return
    _check_url(path, "smtp_url", smtp_url, SMTP_SCHEMES)
    # Only IMAP sends through SMTP: EWS sends through Exchange, a Maildir does not send.
    if editing:
        _expect(
            path,
            "smtp_url",
            smtp_url,
            mail_scheme(values["mail_url"]) in _IMAP_SCHEMES,
            "An SMTP server is used only with an IMAP mailbox: leave it empty.",
        )


def _check_user(key: str, required: bool) -> Any:
    def check(path: Path | str, values: Mapping[str, Any], editing: bool) -> None:
        user = values.get(key, "")
        if required:
            _expect(path, key, user, bool(user), "Expected a user name.")
        if editing:
            _expect(
                path,
                key,
                user,
                not _BLANK_INSIDE.search(user),
                "A user name cannot contain spaces.",
            )

    return check


def _check_crm_url(path: Path | str, values: Mapping[str, Any], editing: bool) -> None:
    _check_url(path, "crm_url", values["crm_url"], CRM_SCHEMES)


_CONNECTION_CHECKS = {
    "mail_url": _check_mail_url,
    "smtp_url": _check_smtp_url,
    "mail_user": _check_user("mail_user", required=False),
    "crm_url": _check_crm_url,
    "crm_user": _check_user("crm_user", required=True),
}


def _check_connection(
    path: Path | str, values: Mapping[str, Any], *, editing: bool = False
) -> None:
    for check in _CONNECTION_CHECKS.values():
        check(path, values, editing)


def validate(data: Mapping[str, Any], path: Path | str) -> ProfileConfig:
    """Turn a parsed config mapping into a ProfileConfig, or raise ProfileConfigError."""
    known = {f.name for f in dataclasses.fields(ProfileConfig)}
    for key, value in data.items():
        if _SECRET_KEY.search(key):
            raise ProfileConfigError(
                path,
                key,
                "…",
                "Secrets are never kept in config files: remove this key; "
                "Trackbox keeps passwords in the system keyring.",
            )
        _expect(
            path, key, value, key in known, f"Unknown key. Known keys: {', '.join(sorted(known))}."
        )
    for key in ("mail_url", "crm_url", "crm_user"):
        _expect(path, key, data.get(key), key in data, "This key is required.")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(ProfileConfig):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in ("folders", "address_book_entities"):
            _expect(
                path,
                f.name,
                value,
                isinstance(value, list) and all(isinstance(v, str) and v for v in value),
                "Expected a list of non-empty strings.",
            )
            value = tuple(value)
        elif f.name == "options":
            _expect(path, f.name, value, isinstance(value, dict), "Expected a table.")
        elif f.name == "include_subfolders":
            _expect(path, f.name, value, isinstance(value, bool), "Not a valid bool.")
        elif f.name in ("sync_interval_minutes", "body_cache_mb"):
            _expect(
                path,
                f.name,
                value,
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                "Expected a whole number of at least 1.",
            )
        else:
            _expect(path, f.name, value, isinstance(value, str), "Expected a string.")
            value = value.strip()
        values[f.name] = value
    _check_connection(path, values)
    _check_sign_in(path, values)
    scope = values.get("contacts_scope", "owned")
    _expect(path, "contacts_scope", scope, scope in ("owned", "all"), "Expected 'owned' or 'all'.")
    for entity in values.get("address_book_entities", ()):
        _expect(
            path,
            "address_book_entities",
            entity,
            entity in ADDRESS_BOOK_ENTITIES,
            f"Expected entities among {', '.join(ADDRESS_BOOK_ENTITIES)}.",
        )
    return ProfileConfig(**values)


def _check_https(path: Path | str, key: str, value: str, *, needs_path: bool) -> None:
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    segments = [p for p in parts.path.split("/") if p]
    ok = (
        parts.scheme.lower() == "https"
        and bool(parts.hostname)
        and port != -1
        and "@" not in parts.netloc
        and not parts.query
        and not parts.fragment
    )
    _expect(path, key, value, ok, "Expected an https:// URL without a query.")
    if needs_path:
        _expect(
            path,
            key,
            value,
            bool(segments),
            "Expected the authority with its tenant: https://login.microsoftonline.com/"
            "<tenant or organizations>, or https://<AD FS host>/adfs.",
        )


def _check_sign_in(path: Path | str, values: Mapping[str, Any]) -> None:
    """The sign-in keys: a known kind, a client id, https authority and discovery URLs, an
    AD FS authority for ``adfs``, an absolute CA file path."""
    kind = values.get("crm_auth", "password")
    _expect(path, "crm_auth", kind, kind in AUTH_KINDS, f"Expected one of {', '.join(AUTH_KINDS)}.")
    client_id = values.get("crm_client_id", DEFAULT_CLIENT_ID)
    _expect(
        path,
        "crm_client_id",
        client_id,
        bool(client_id) and not _BLANK_INSIDE.search(client_id) and len(client_id) <= 256,
        "Expected the application (client) id of an app registration.",
    )
    if kind == "microsoft":
        _expect(
            path,
            "crm_client_id",
            client_id,
            _is_guid(client_id),
            "A Microsoft Entra application (client) id is a GUID.",
        )
    authority = values.get("crm_authority", DEFAULT_AUTHORITY)
    _check_https(path, "crm_authority", authority, needs_path=True)
    if kind == "adfs":
        tenant = urlsplit(authority).path.strip("/").split("/")[0]
        _expect(
            path,
            "crm_authority",
            authority,
            tenant.lower() == "adfs",
            "AD FS signs in at its own authority: set crm_authority to https://<AD FS host>/adfs.",
        )
    _check_https(
        path,
        "crm_discovery_url",
        values.get("crm_discovery_url", DEFAULT_DISCOVERY_URL),
        needs_path=False,
    )
    ca_file = values.get("crm_ca_file", "")
    _expect(
        path,
        "crm_ca_file",
        ca_file,
        not ca_file or os.path.isabs(os.path.expanduser(ca_file)),
        "Expected the absolute path of a PEM file of certificate authorities (or nothing).",
    )


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON strings are TOML basic strings
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a profile file")


def dumps(config: ProfileConfig) -> str:
    """The config file's text. Sign-in keys at their defaults are left out, so a profile that
    signs in with a password reads as it did before they existed."""
    data = config.to_dict()
    options = data.pop("options")
    defaults = {f.name: f.default for f in dataclasses.fields(ProfileConfig)}
    for key in SIGN_IN_KEYS:
        if data[key] == defaults[key]:
            del data[key]
    lines = ["# Trackbox profile. Passwords are kept in the system keyring, never here."]
    lines += [f"{k} = {_toml_value(v)}" for k, v in data.items()]
    if options:
        lines += ["", "[options]"]
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in options.items()]
    return "\n".join(lines) + "\n"


def load_config(path: Path) -> ProfileConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileConfigError(path, None, None, f"Not UTF-8 text: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileConfigError(path, None, None, f"Not valid TOML: {exc}") from None
    return validate(data, path)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Profiles:
    """The profiles of this user (or of ``home``; default ``$TRACKBOX_HOME``)."""

    def __init__(self, home: Path | str | None = None) -> None:
        if home is None and os.environ.get("TRACKBOX_HOME"):
            home = os.environ["TRACKBOX_HOME"]
        self.home = Path(home) if home is not None else None

    # Layout -------------------------------------------------------------------------------

    @property
    def config_root(self) -> Path:
        if self.home is not None:
            return self.home / "profiles"
        return Path(platformdirs.user_config_dir(APP)) / "profiles"

    @property
    def data_root(self) -> Path:
        if self.home is not None:
            return self.home / "profiles"
        return Path(platformdirs.user_data_dir(APP)) / "profiles"

    def config_path(self, name: str) -> Path:
        if self.home is not None:
            return self.config_root / name / CONFIG_NAME
        return self.config_root / f"{name}.toml"

    def data_dir(self, name: str) -> Path:
        if self.home is not None:
            return self.data_root / name / "data"
        return self.data_root / name

    @property
    def _default_file(self) -> Path:
        return self.config_root.parent / "default-profile"

    # Operations ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        root = self.config_root
        if not root.is_dir():
            return []
        if self.home is not None:
            found = [p.name for p in root.iterdir() if (p / CONFIG_NAME).is_file()]
        else:
            found = [p.stem for p in root.glob("*.toml")]
        return sorted(n for n in found if _NAME.match(n))

    def default_name(self) -> str:
        """The profile used without ``--profile``: the one set as default, else
        ``default``, else the only profile there is."""
        try:
            chosen = self._default_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            chosen = ""
        names = self.names()
        if chosen and chosen in names:
            return chosen
        if DEFAULT_PROFILE not in names and len(names) == 1:
            return names[0]
        return DEFAULT_PROFILE

    def set_default(self, name: str) -> None:
        self._require(name)
        _write_atomically(self._default_file, name + "\n")

    def load(self, name: str | None = None) -> Profile:
        name = name or self.default_name()
        self._check_name(name)
        path = self.config_path(name)
        if not path.is_file():
            raise ProfileNotFound(name, self.names())
        return Profile(name, path, self.data_dir(name), load_config(path))

    def create(self, name: str, config: ProfileConfig | Mapping[str, Any]) -> Profile:
        self._check_name(name)
        if self.config_path(name).exists():
            raise ProfileExists(name)
        return self.save(name, config)

    def save(self, name: str, config: ProfileConfig | Mapping[str, Any]) -> Profile:
        """Write (validated) config for ``name``, creating its data directory."""
        self._check_name(name)
        path = self.config_path(name)
        if not isinstance(config, ProfileConfig):
            config = validate(config, path)
        else:
            config = validate(config.to_dict(), path)
        _write_atomically(path, dumps(config))
        data_dir = self.data_dir(name)
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        return Profile(name, path, data_dir, config)

    def delete(self, name: str, *, keep_data: bool = False) -> None:
        self._require(name)
        path = self.config_path(name)
        path.unlink()
        if self.home is not None and not keep_data:
            shutil.rmtree(path.parent, ignore_errors=True)
        elif not keep_data:
            shutil.rmtree(self.data_dir(name), ignore_errors=True)

    def _require(self, name: str) -> None:
        self._check_name(name)
        if not self.config_path(name).is_file():
            raise ProfileNotFound(name, self.names())

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.match(name):
            raise ProfileConfigError(
                "<profile name>",
                "name",
                name,
                "Profile names are 1-64 letters, digits, '.', '_' or '-', not starting "
                "with a dot or dash.",
            )


# Editing a profile's connection (Options › Accounts) ---------------------------------------


def mail_scheme(url: str) -> str:
    return url.split(":", 1)[0].strip().lower() if ":" in url else ""


def needs_mail_password(mail_url: str) -> bool:
    """A local Maildir has no account; every server does."""
    return mail_scheme(mail_url) != "maildir"


def insecure_urls(*urls: str) -> list[str]:
    """The URLs whose scheme sends passwords in the clear (test servers only)."""
    return [u for u in urls if u and mail_scheme(u) in INSECURE_SCHEMES]


def account_name(config: ProfileConfig, kind: str) -> str:
    """The user name a secret of ``kind`` ("crm"/"mail") is stored under: the mail user,
    else the CRM user (as the CLI signs in)."""
    return config.crm_user if kind == "crm" else (config.mail_user or config.crm_user)


def connection_problems(
    config: ProfileConfig, changes: Mapping[str, str], path: Path | str = "<form>"
) -> dict[str, str]:
    """Every problem of ``config`` with the connection ``changes``, by key (empty: none), so
    that a form can show each next to its field."""
    values = {**config.to_dict(), **{k: v.strip() for k, v in changes.items()}}
    problems: dict[str, str] = {}
    for key, check in _CONNECTION_CHECKS.items():
        try:
            check(path, values, True)
        except ProfileConfigError as exc:
            problems[key] = exc.expected
    return problems


def with_connection(
    config: ProfileConfig, changes: Mapping[str, str], path: Path | str = "<form>"
) -> ProfileConfig:
    """``config`` with new connection values (validated; ProfileConfigError otherwise)."""
    unknown = set(changes) - set(CONNECTION_KEYS)
    if unknown:
        raise ProfileConfigError(
            path, sorted(unknown)[0], "…", f"Not a connection key: {', '.join(CONNECTION_KEYS)}."
        )
    new = validate({**config.to_dict(), **{k: v.strip() for k, v in changes.items()}}, path)
    _check_connection(path, new.to_dict(), editing=True)
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


__all__ = [
    "ADDRESS_BOOK_ENTITIES",
    "AUTH_KINDS",
    "CONNECTION_KEYS",
    "DEFAULT_AUTHORITY",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_DISCOVERY_URL",
    "INSECURE_SCHEMES",
    "OAUTH_KINDS",
    "Profile",
    "ProfileConfig",
    "ProfileConfigError",
    "ProfileError",
    "ProfileExists",
    "ProfileNotFound",
    "Profiles",
    "SIGN_IN_KEYS",
    "account_name",
    "connection_problems",
    "dumps",
    "insecure_urls",
    "load_config",
    "mail_scheme",
    "needs_mail_password",
    "save_connection",
    "validate",
    "with_connection",
    "with_sign_in",
]
