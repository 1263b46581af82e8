"""The setup wizard's test of a mail server before it is accepted: the IMAP log-in and the
SMTP EHLO / STARTTLS / AUTH a send would do, EWS's log-in, a Maildir opened. Runs on a
worker. (Microsoft 365 is tried by the wizard after its sign-in: ``desktop.wizard_m365``.)

Each result carries the server's own words (the IMAP ``NO``/``BAD`` text, the SMTP reply code
and text, the resolver's or TLS library's message) beside a plain explanation of what they
mean and what to check, so that a user can tell a typo in the host name from a wrong password.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from core.mail import MailAuthError, MailError, open_backend
from core.mail.smtp import SmtpSender

#: How long one server may take to answer each step of the test.
TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class MailSettings:
    """What the wizard's mail page says (copied for the worker)."""

    mail_url: str
    user: str = ""
    password: str = ""
    smtp_url: str = ""


@dataclass(frozen=True, slots=True)
class ServerTest:
    """One server's answer: ``server`` names it ("Incoming mail (IMAP)"), ``server_says`` is
    verbatim, ``explanation`` is ours."""

    server: str
    ok: bool
    explanation: str
    server_says: str = ""

    def text(self) -> str:
        said = f"\nThe server said: {self.server_says}" if self.server_says else ""
        return f"{self.server}: {self.explanation}{said}"


def try_mail_servers(settings: MailSettings) -> list[ServerTest]:
    """Every server the settings name, tried in turn (the outgoing one even when the incoming
    one failed: both problems are shown at once)."""
    scheme = settings.mail_url.partition(":")[0].lower()
    results = [_incoming(settings, scheme)]
    if settings.smtp_url:
        results.append(_outgoing(settings))
    return results


def _incoming(settings: MailSettings, scheme: str) -> ServerTest:
    if scheme == "maildir":
        return _maildir(settings.mail_url)
    name = "Incoming mail (IMAP)" if scheme.startswith("imap") else "Exchange (EWS)"

    def log_in() -> str:
        options = {"timeout": TIMEOUT} if scheme.startswith("imap") else {}
        backend = open_backend(
            settings.mail_url, user=settings.user, password=settings.password, **options
        )
        try:
            count = len(backend.folders())
        finally:
            backend.close()
        return f"Signed in; {count} folders found."

    return _tried(name, log_in)


def _maildir(mail_url: str) -> ServerTest:
    """A Maildir is only looked at: opening it would create the folders of a mistyped path."""
    from pathlib import Path

    rest = mail_url.partition(":")[2]
    path = Path(unquote(urlsplit(mail_url).path if rest.startswith("//") else rest)).expanduser()
    name = "Mail folder (Maildir)"
    if path.is_dir():
        return ServerTest(name, True, f"Found {path}.")
    return ServerTest(
        name,
        False,
        f"There is no folder at {path}: check the path (Trackbox would create an empty "
        "Maildir there).",
    )


def _outgoing(settings: MailSettings) -> ServerTest:
    def log_in() -> str:
        sender = SmtpSender(
            settings.smtp_url, user=settings.user, password=settings.password, timeout=TIMEOUT
        )
        if sender.check():
            return "Signed in; the server accepts mail from this account."
        return "Connected; the server sends without a sign-in (it did not offer AUTH)."

    return _tried("Outgoing mail (SMTP)", log_in)


def _tried(name: str, step: Callable[[], str]) -> ServerTest:
    try:
        return ServerTest(name, True, step())
    except MailError as exc:
        return ServerTest(name, False, explain(exc), exc.server_says or str(exc))
    except (OSError, ValueError) as exc:  # a bad path or URL before any server was asked
        return ServerTest(name, False, explain(exc), str(exc))


_WORDS = (  # (what the server's or the system's message contains, what it means)
    (
        ("name or service not known", "nodename nor servname", "getaddrinfo", "no address"),
        "The server's name could not be found (DNS). Check the spelling of the host name, "
        "and that this computer is online.",
    ),
    (
        ("connection refused",),
        "The computer at that address refused the connection: nothing listens on that port. "
        "Check the port number, and whether the server wants TLS (imaps, smtps) or STARTTLS.",
    ),
    (
        ("timed out", "deadline", "too slow"),
        "The server did not answer in time. Check the host name and port, or a firewall "
        "between this computer and the server.",
    ),
    (
        ("certificate", "ssl", "tls", "wrong version number"),
        "A secure connection could not be made: the server's certificate is not trusted, does "
        "not match its name, or the server does not speak TLS on this port.",
    ),
    (
        ("starttls",),
        "The server does not offer STARTTLS on this port: use the TLS port (imaps://, "
        "smtps://) or ask the provider for the right settings.",
    ),
)


def explain(exc: BaseException) -> str:
    """A plain explanation of a failed test (the server's words are shown beside it)."""
    if isinstance(exc, MailAuthError):
        return (
            "The server refused the sign-in: the user name or password is wrong, or the "
            "account needs an app password or must allow this kind of sign-in."
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _WORDS[3][1]
    text = f"{exc} {getattr(exc, 'server_says', '')}".lower()
    if isinstance(exc, socket.gaierror):
        return _WORDS[0][1]
    for needles, words in _WORDS:
        if any(n in text for n in needles):
            return words
    if isinstance(exc, MailError):
        return f"The server did not accept the connection ({exc})."
    return f"The mail settings could not be used: {exc}"


__all__ = ["MailSettings", "ServerTest", "explain", "try_mail_servers"]
