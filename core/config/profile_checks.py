"""The checks of a profile's values: :func:`validate` turns a parsed config file (or a form's
values) into a ProfileConfig, or raises ProfileConfigError naming the file, the key and the bad
value. A password-like key is refused rather than silently used: secrets live in the keyring
(core/config/credentials.py), never in a config file."""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.config.mail_urls import (
    EWS_SCHEMES,
    GRAPH_SCHEME,
    MailUrlError,
    ews_options,
    graph_options,
    is_address,
    split_autodiscover,
)
from core.config.profile_config import (
    ADDRESS_BOOK_ENTITIES,
    AUTH_KINDS,
    DAV_KEYS,
    DEFAULT_AUTHORITY,
    DEFAULT_CLIENT_ID,
    DEFAULT_DISCOVERY_URL,
    ProfileConfig,
    mail_scheme,
)
from core.config.profile_errors import ProfileConfigError

MAIL_SCHEMES = (
    "imaps",
    "imap",
    "imap+insecure",
    "ews",
    "ews+http",
    "ews+autodiscover",
    "graph",
    "maildir",
)
#: The sign-in a Graph mailbox needs: Microsoft Entra ID gives Graph tokens; AD FS, Windows
#: sign-in and passwords do not.
GRAPH_SIGN_IN = "microsoft"
SMTP_SCHEMES = ("smtps", "smtp", "smtp+insecure")
CRM_SCHEMES = ("https", "http")
_SECRET_KEY = re.compile(r"pass|secret|token|credential|api_?key", re.IGNORECASE)
_BLANK_INSIDE = re.compile(r"\s")
_IMAP_SCHEMES = ("imaps", "imap", "imap+insecure")


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
    if scheme == GRAPH_SCHEME:
        return  # graph: has no host of its own (_check_graph reads the rest)
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
    if scheme == GRAPH_SCHEME:
        _check_graph(path, values)
        return
    if scheme not in EWS_SCHEMES:
        return
    try:
        options = ews_options(mail_url)
    except MailUrlError as exc:
        raise ProfileConfigError(path, "mail_url", mail_url, f"{exc}.") from None
    if options.get("auth_type") == "oauth":
        _expect(
            path,
            "mail_url",
            mail_url,
            values.get("crm_auth", "password") == GRAPH_SIGN_IN,
            "Exchange with ?auth=oauth signs in with the CRM's Microsoft sign-in: set "
            'crm_auth = "microsoft", or use ?auth=ntlm or ?auth=basic with a password.',
        )
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


def _check_graph(path: Path | str, values: Mapping[str, Any]) -> None:
    """A ``graph:`` URL that reads, on a profile that signs in to the CRM with Microsoft
    (the one sign-in that gives the Graph tokens too)."""
    mail_url = values["mail_url"]
    try:
        graph_options(mail_url)
    except MailUrlError as exc:
        raise ProfileConfigError(path, "mail_url", mail_url, f"{exc}.") from None
    _expect(
        path,
        "mail_url",
        mail_url,
        values.get("crm_auth", "password") == GRAPH_SIGN_IN,
        "A Microsoft 365 mailbox (graph:) signs in with the CRM's Microsoft sign-in: set "
        'crm_auth = "microsoft" (Dynamics 365 online), or use an IMAP or EWS mailbox.',
    )


def _check_extra_mailboxes(path: Path | str, values: Mapping[str, Any]) -> None:
    """Shared or delegated mailboxes besides the profile's own: Graph profiles only (they
    reach ``/users/{address}`` with the same sign-in), e-mail addresses, each once, none the
    mailbox the profile already reads."""
    extras = values.get("extra_mailboxes", ())
    if not extras:
        return
    mail_url = values["mail_url"]
    _expect(
        path,
        "extra_mailboxes",
        list(extras),
        mail_scheme(mail_url) == GRAPH_SCHEME,
        "Shared mailboxes are for a Microsoft 365 mailbox (graph:): remove them, or use a "
        "graph: mailbox.",
    )
    own = graph_options(mail_url).get("mailbox") or values.get("crm_user", "")
    seen: set[str] = set()
    for address in extras:
        _expect(path, "extra_mailboxes", address, is_address(address), "Not an e-mail address.")
        key = address.casefold()
        _expect(path, "extra_mailboxes", address, key not in seen, "Listed twice.")
        _expect(
            path,
            "extra_mailboxes",
            address,
            key != own.casefold(),
            "This is the profile's own mailbox (mail_url): list only other mailboxes.",
        )
        seen.add(key)


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


def check_connection(path: Path | str, values: Mapping[str, Any], *, editing: bool = False) -> None:
    for check in _CONNECTION_CHECKS.values():
        check(path, values, editing)


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
    for key in DAV_KEYS:
        try:
            _check_dav_key(path, values, key)
        except ProfileConfigError as exc:
            problems[key] = exc.expected
    return problems


def validate(data: Mapping[str, Any], path: Path | str) -> ProfileConfig:
    """Turn a parsed config mapping into a ProfileConfig, or raise ProfileConfigError."""
    _check_keys(data, path)
    values = {
        f.name: _typed(path, f.name, data[f.name])
        for f in dataclasses.fields(ProfileConfig)
        if f.name in data
    }
    check_connection(path, values)
    check_dav(path, values)
    _check_sign_in(path, values)
    _check_extra_mailboxes(path, values)
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


def _check_keys(data: Mapping[str, Any], path: Path | str) -> None:
    """No secret, no unknown key, every required one."""
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


def _typed(path: Path | str, key: str, value: Any) -> Any:
    """``value`` checked for the type of ``key`` (lists as tuples, strings stripped)."""
    if key in ("folders", "address_book_entities", "extra_mailboxes"):
        _expect(
            path,
            key,
            value,
            isinstance(value, list) and all(isinstance(v, str) and v for v in value),
            "Expected a list of non-empty strings.",
        )
        return tuple(value)
    if key == "options":
        _expect(path, key, value, isinstance(value, dict), "Expected a table.")
    elif key == "include_subfolders":
        _expect(path, key, value, isinstance(value, bool), "Not a valid bool.")
    elif key in ("sync_interval_minutes", "body_cache_mb"):
        _expect(
            path,
            key,
            value,
            isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            "Expected a whole number of at least 1.",
        )
    else:
        _expect(path, key, value, isinstance(value, str), "Expected a string.")
        return value.strip()
    return value


#: Hosts a DAV URL may reach over plain http (a server on this machine, e.g. Radicale).
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_DAV_LABELS = {
    "carddav_url": "CardDAV address book",
    "caldav_url": "CalDAV calendar",
    "caldav_tasks_url": "CalDAV task list",
}


def check_dav(path: Path | str, values: Mapping[str, Any]) -> None:
    """The CalDAV/CardDAV collections: IMAP profiles only (the other backends keep contacts
    and calendars themselves), https (http only on this machine), no user or password in
    the URL (the password is a keyring secret), a DAV user name without spaces."""
    for key in DAV_KEYS:
        _check_dav_key(path, values, key)


def _check_dav_key(path: Path | str, values: Mapping[str, Any], key: str) -> None:
    value = values.get(key, "")
    if key == "dav_user":
        _expect(
            path, key, value, not _BLANK_INSIDE.search(value), "A user name cannot contain spaces."
        )
        return
    if not value:
        return
    label = _DAV_LABELS[key]
    _expect(
        path,
        key,
        value,
        mail_scheme(values["mail_url"]) in _IMAP_SCHEMES,
        f"A {label} is used only with an IMAP mailbox: leave it empty.",
    )
    _check_dav_url(path, key, value, label)


def _check_dav_url(path: Path | str, key: str, value: str, label: str) -> None:
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    shown = _without_userinfo(value)  # a password typed into the URL never reaches a message
    _expect(
        path,
        key,
        shown,
        "@" not in parts.netloc,
        "Leave the user name and password out of the URL: set dav_user; the password is "
        "kept in the system keyring.",
    )
    _expect(
        path,
        key,
        shown,
        scheme in ("https", "http") and bool(host) and port != -1,
        f"Not a valid {label} URL: expected https://host[:port]/path/to/collection/.",
    )
    _expect(
        path,
        key,
        shown,
        scheme == "https" or host in _LOOPBACK,
        f"The {label} must use https:// (plain http:// sends the password in the clear; "
        "it is allowed only for a server on this machine: localhost, 127.0.0.1, ::1).",
    )
    _expect(
        path,
        key,
        shown,
        not parts.query and not parts.fragment and bool(parts.path.strip("/")),
        f"Expected the {label}'s own collection URL (a path, no query), "
        "e.g. https://dav.example.com/user/calendar/.",
    )


def _without_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{tail}"


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


__all__ = [
    "CRM_SCHEMES",
    "GRAPH_SIGN_IN",
    "MAIL_SCHEMES",
    "SMTP_SCHEMES",
    "check_connection",
    "check_dav",
    "connection_problems",
    "validate",
]
