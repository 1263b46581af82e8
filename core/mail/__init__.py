"""Mailbox backends behind one interface (:class:`MailBackend`): Maildir, IMAP/SMTP, EWS, Graph.

:func:`open_backend` turns a mailbox URL into a backend:

==============================================  ============================================
``maildir:/path``                               local Maildir++ (the demo mailbox)
``imaps://host[:993]``                          IMAP over TLS (certificate verified)
``imap://host[:143]``                           IMAP with STARTTLS, required
``imap+insecure://host:port``                   plain IMAP: tests on loopback only
``ews://host[:443]/EWS/Exchange.asmx``          Exchange Web Services over HTTPS
``ews+http://host:port/EWS/Exchange.asmx``      EWS over plain HTTP: tests only
``ews+autodiscover:user@domain``                EWS, endpoint found by autodiscover
``graph:``                                      Microsoft 365 through Microsoft Graph
``graph://host[:port]/v1.0``                    Graph at another endpoint (national clouds,
                                                tests), always HTTPS
==============================================  ============================================

Graph URLs take ``?mailbox=shared@example.com`` for a shared or delegated mailbox
(``/users/{address}``; without it, the signed-in user's own, ``/me``). Graph needs
``token=``, a callable returning a current Graph access token (MSAL's silent acquisition from
the profile's sign-in), asked before every request; ``verify=`` as httpx takes it.

EWS URLs take ``?auth=ntlm|basic`` (NTLM by default) and, when the sign-in name is not the
mailbox's address (``CORP\\alex``), ``&mailbox=alex@example.com`` (:mod:`core.config.mail_urls`).

IMAP takes ``smtp_url=`` for sending: ``smtps://host[:465]``, ``smtp://host[:587]`` (STARTTLS
required) or ``smtp+insecure://host:port`` (tests). Other keyword options go to the backend's
constructor (e.g. ``ssl_context=``, ``auth_type=``, ``oauth_token=``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from core.config.mail_urls import (
    EWS_SCHEMES,
    MailUrlError,
    ews_options,
    is_address,
    split_autodiscover,
)
from core.mail.base import (
    TRACKED_CATEGORY,
    TRACKED_KEYWORD,
    FlagChange,
    MailAuthError,
    MailBackend,
    MailError,
    MailNotFound,
    MailProtocolError,
    MailUnavailable,
    SyncBatch,
)
from core.mail.parse import Attachment, ParsedMessage, parse_headers, parse_message

__all__ = [
    "TRACKED_CATEGORY",
    "TRACKED_KEYWORD",
    "Attachment",
    "FlagChange",
    "MailAuthError",
    "MailBackend",
    "MailError",
    "MailNotFound",
    "MailProtocolError",
    "MailUnavailable",
    "ParsedMessage",
    "SyncBatch",
    "open_backend",
    "parse_headers",
    "parse_message",
]


def open_backend(
    url: str, *, user: str | None = None, password: str | None = None, **options: Any
) -> MailBackend:
    """Open the mailbox at ``url`` (see the module docstring). Raises :class:`MailError`
    subclasses: :class:`MailProtocolError` for a URL we do not understand."""
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise MailProtocolError("not a mailbox URL", server_says=url)
    if scheme == "maildir":
        return _open_maildir(url, rest, options)
    if scheme in ("imaps", "imap", "imap+insecure"):
        return _open_imap(url, scheme, user, password, options)
    if scheme in EWS_SCHEMES:
        return _open_ews(url, scheme, user, password, options)
    if scheme == "graph":
        return _open_graph(url, rest, options)
    raise MailProtocolError("unknown mailbox URL scheme", server_says=scheme)


def _open_maildir(url: str, rest: str, options: dict[str, Any]) -> MailBackend:
    """``maildir:/path`` and ``maildir:///path``; the path may be %-encoded."""
    from pathlib import Path

    from core.mail.maildir import MaildirBackend

    path = unquote(urlsplit(url).path if rest.startswith("//") else rest)
    return MaildirBackend(Path(path).expanduser(), **options)


def _open_imap(
    url: str, scheme: str, user: str | None, password: str | None, options: dict[str, Any]
) -> MailBackend:
    """IMAP; the scheme picks the transport security and the default port. Credentials
    given as arguments win over those in the URL."""
    from core.mail.imap import ImapBackend

    parts = urlsplit(url)
    security = {"imaps": "tls", "imap": "starttls", "imap+insecure": "none"}[scheme]
    port = parts.port or (993 if scheme == "imaps" else 143)
    return ImapBackend(
        parts.hostname or "localhost",
        port,
        security=security,
        user=user or unquote(parts.username or ""),
        password=password or unquote(parts.password or ""),
        **options,
    )


def _open_ews(
    url: str, scheme: str, user: str | None, password: str | None, options: dict[str, Any]
) -> MailBackend:
    """EWS at a fixed endpoint or by autodiscover; the URL's query options come first,
    the caller's keyword options override them."""
    from core.mail.ews import EwsBackend

    try:
        options = {**ews_options(url), **options}
    except MailUrlError as exc:
        raise MailProtocolError("bad Exchange mailbox URL", server_says=str(exc)) from None
    if scheme == "ews+autodiscover":
        address = unquote(split_autodiscover(url)[0])
        return EwsBackend(
            endpoint=None,
            email=address,
            user=user or address,
            password=password or "",
            **options,
        )
    endpoint = _ews_endpoint(url, scheme)
    if not options.get("email") and not is_address(user or ""):
        # EWS addresses the mailbox by e-mail address; an NTLM name like CORP\alex is not one.
        raise MailProtocolError(
            "the Exchange mailbox needs its e-mail address",
            server_says=f"the sign-in name {user!r} is not one: add "
            "?mailbox=you@example.com to the mailbox URL",
        )
    return EwsBackend(endpoint=endpoint, user=user or "", password=password or "", **options)


def _ews_endpoint(url: str, scheme: str) -> str:
    """The HTTP(S) endpoint of an ``ews:``/``ews+http:`` URL, without any credentials."""
    parts = urlsplit(url)
    return (
        ("https" if scheme == "ews" else "http")
        + "://"
        + parts.netloc.rpartition("@")[2]
        + (parts.path or "/EWS/Exchange.asmx")
    )


def _open_graph(url: str, rest: str, options: dict[str, Any]) -> MailBackend:
    """``graph:[?mailbox=…]`` or ``graph://host[:port]/path[?mailbox=…]``; keyword options
    (``token``, ``verify``, ``base_url``, ``mailbox``) override the URL's. ``oauth_token=``
    (a fixed token, as EWS takes it) stands in for ``token`` where no sign-in can renew one."""
    from urllib.parse import parse_qsl

    from core.mail.graph import GraphBackend
    from core.mail.graph_http import DEFAULT_BASE_URL

    where, _, query = rest.partition("?")
    base = DEFAULT_BASE_URL
    if where.startswith("//"):
        parts = urlsplit("https:" + where)
        if not parts.hostname or parts.username or parts.password:
            raise MailProtocolError("bad Graph mailbox URL", server_says=url)
        base = f"https://{parts.netloc}{parts.path.rstrip('/') or '/v1.0'}"
    elif where not in ("", "me"):
        raise MailProtocolError("bad Graph mailbox URL", server_says=url)
    found: dict[str, Any] = {"base_url": base}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "mailbox" or not is_address(value):
            raise MailProtocolError(
                "bad Graph mailbox URL", server_says=f"{key}={value!r}: expected mailbox=address"
            )
        found["mailbox"] = value
    options = {**found, **options}
    fixed = options.pop("oauth_token", None)
    if "token" not in options and fixed:
        options["token"] = lambda: fixed
    if not callable(options.get("token")):
        raise MailAuthError("the Graph mailbox needs a token source: sign in first")
    return GraphBackend(**options)
