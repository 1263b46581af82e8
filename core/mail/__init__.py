"""Mailbox backends behind one interface (:class:`MailBackend`): Maildir, IMAP/SMTP, EWS.

:func:`open_backend` turns a mailbox URL into a backend:

==============================================  ============================================
``maildir:/path``                               local Maildir++ (the demo mailbox)
``imaps://host[:993]``                          IMAP over TLS (certificate verified)
``imap://host[:143]``                           IMAP with STARTTLS, required
``imap+insecure://host:port``                   plain IMAP: tests on loopback only
``ews://host[:443]/EWS/Exchange.asmx``          Exchange Web Services over HTTPS
``ews+http://host:port/EWS/Exchange.asmx``      EWS over plain HTTP: tests only
``ews+autodiscover:user@domain``                EWS, endpoint found by autodiscover
==============================================  ============================================

IMAP takes ``smtp_url=`` for sending: ``smtps://host[:465]``, ``smtp://host[:587]`` (STARTTLS
required) or ``smtp+insecure://host:port`` (tests). Other keyword options go to the backend's
constructor (e.g. ``ssl_context=``, ``auth_type=``, ``oauth_token=``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

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
    "TRACKED_CATEGORY", "TRACKED_KEYWORD", "Attachment", "FlagChange", "MailAuthError",
    "MailBackend", "MailError", "MailNotFound", "MailProtocolError", "MailUnavailable",
    "ParsedMessage", "SyncBatch", "open_backend", "parse_headers", "parse_message",
]


def open_backend(url: str, *, user: str | None = None, password: str | None = None,
                 **options: Any) -> MailBackend:
    """Open the mailbox at ``url`` (see the module docstring). Raises :class:`MailError`
    subclasses: :class:`MailProtocolError` for a URL we do not understand."""
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise MailProtocolError("not a mailbox URL", server_says=url)
    if scheme == "maildir":
        from pathlib import Path

        from core.mail.maildir import MaildirBackend

        path = unquote(urlsplit(url).path if rest.startswith("//") else rest)
        return MaildirBackend(Path(path).expanduser(), **options)
    if scheme in ("imaps", "imap", "imap+insecure"):
        from core.mail.imap import ImapBackend

        parts = urlsplit(url)
        security = {"imaps": "tls", "imap": "starttls", "imap+insecure": "none"}[scheme]
        port = parts.port or (993 if scheme == "imaps" else 143)
        return ImapBackend(parts.hostname or "localhost", port, security=security,
                           user=user or unquote(parts.username or ""),
                           password=password or unquote(parts.password or ""), **options)
    if scheme in ("ews", "ews+http"):
        from core.mail.ews import EwsBackend

        parts = urlsplit(url)
        endpoint = ("https" if scheme == "ews" else "http") + "://" + parts.netloc.rpartition(
            "@")[2] + (parts.path or "/EWS/Exchange.asmx")
        return EwsBackend(endpoint=endpoint, user=user or "", password=password or "",
                          **options)
    if scheme == "ews+autodiscover":
        from core.mail.ews import EwsBackend

        return EwsBackend(endpoint=None, email=unquote(rest), user=user or unquote(rest),
                          password=password or "", **options)
    raise MailProtocolError("unknown mailbox URL scheme", server_says=scheme)
