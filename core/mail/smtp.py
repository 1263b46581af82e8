"""Sending through SMTP (smtplib): submission with TLS verified by default.

Used by the IMAP backend, which has no way to send on its own. Recipients come from To/Cc/Bcc;
Bcc is removed from the copy that travels (RFC 5322 3.6.3).

A send (connect, TLS, login and the whole message) has a total deadline
(:mod:`core.mail.deadline_socket`): 120 s by default plus time for the message's size at
64 KB/s, so a server that answers a byte a second cannot hold the outbox.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Any
from urllib.parse import unquote, urlsplit

from core.mail.base import MailAuthError, MailProtocolError, MailUnavailable
from core.mail.deadline_socket import (
    DEFAULT_COMMAND_DEADLINE,
    CommandClock,
    DeadlineTlsContext,
    MailDeadlineExceeded,
    connect,
    deadline_behind,
    deadline_for,
    seconds_text,
)
from core.mail.line_limits import LineTooLong, check_lines
from core.mail.parse import split_header_block

_BCC_RE = re.compile(rb"(?im)^bcc:.*(?:\r?\n[ \t].*)*\r?\n")
_BARE_LF = re.compile(rb"(?<!\r)\n")


def crlf(mime: bytes) -> bytes:
    """``mime`` with CRLF line ends, as SMTP requires (RFC 5321 2.3.8): ``email`` writes
    bare LFs, which servers that guard against SMTP smuggling refuse (Postfix 3.9)."""
    return _BARE_LF.sub(b"\r\n", mime)


def _addresses(hdr: Message, *names: str) -> list[str]:
    return [a for _, a in getaddresses([str(v) for k in names for v in hdr.get_all(k, [])]) if a]


def recipients(mime: bytes) -> list[str]:
    """The envelope recipients of ``mime``: its To, Cc and Bcc addresses, each once."""
    return list(
        dict.fromkeys(
            _addresses(BytesHeaderParser(policy=compat32).parsebytes(mime), "to", "cc", "bcc")
        )
    )


def recipients_and_body(mime: bytes) -> tuple[str, list[str], bytes]:
    """(envelope sender, envelope recipients, message without Bcc) for ``mime``."""
    hdr = BytesHeaderParser(policy=compat32).parsebytes(mime)
    rcpts = _addresses(hdr, "to", "cc", "bcc")
    sender = next(iter(_addresses(hdr, "sender", "from")), "")
    if not rcpts:
        raise MailProtocolError("message has no recipients")
    if hdr.get("bcc") is not None:
        head = split_header_block(mime)
        mime = _BCC_RE.sub(b"", head) + mime[len(head) :]
    return sender, list(dict.fromkeys(rcpts)), mime


class _DeadlineSMTP(smtplib.SMTP):
    """smtplib's client over a deadline socket (TLS from the start when ``tls`` is given)."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        clock: CommandClock,
        tls: DeadlineTlsContext | None,
    ) -> None:
        self._clock, self._tls = clock, tls
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's documented way in is the constructor; _get_socket is the one place it
        # opens the socket (3.x), used by SMTP_SSL and LMTP the same way.
        sock: Any = connect(host, port, timeout, self._clock)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=host)
        return sock  # type: ignore[no-any-return]


class SmtpSender:
    """One SMTP submission endpoint. A connection per send: sends are rare, and a connection
    kept open would only time out between them."""

    def __init__(
        self,
        url: str,
        *,
        user: str = "",
        password: str = "",
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        deadline: float | None = None,
    ) -> None:
        """``timeout`` bounds one receive or send, ``deadline`` (by default
        :data:`~core.mail.deadline_socket.DEFAULT_COMMAND_DEADLINE`) a whole send."""
        parts = urlsplit(url)
        self.scheme = parts.scheme.lower()
        if self.scheme not in ("smtps", "smtp", "smtp+insecure"):
            raise MailProtocolError("unknown SMTP URL scheme", server_says=url)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or {"smtps": 465, "smtp": 587}.get(self.scheme, 25)
        self.user = user or unquote(parts.username or "")
        self.password = password or unquote(parts.password or "")
        self.context = ssl_context or ssl.create_default_context()
        self.timeout = timeout
        self.deadline = DEFAULT_COMMAND_DEADLINE if deadline is None else float(deadline)

    def send(self, mime: bytes) -> None:
        sender, rcpts, body = recipients_and_body(crlf(mime))
        try:
            check_lines(body)  # refused here, whole, rather than broken by a server
        except LineTooLong as exc:
            raise MailProtocolError("message not sent", server_says=str(exc)) from exc

        def submit(conn: smtplib.SMTP) -> None:
            refused = conn.sendmail(sender, rcpts, body)
            if refused:
                raise MailProtocolError("some recipients were refused", server_says=str(refused))

        self._session(submit, len(body), "SMTP server refused the message")

    def check(self) -> bool:
        """Connect, EHLO, STARTTLS when asked and log in, then QUIT: what a send would do
        before the message (the setup wizard's test). Returns whether the server asked for
        a login (offers AUTH); raises the same errors as :meth:`send`."""
        offered: list[bool] = []

        def quit_(conn: smtplib.SMTP) -> None:
            offered.append(conn.has_extn("auth"))

        self._session(quit_, 0, "SMTP server refused the session")
        return offered[0]

    def _session(self, then: Callable[[smtplib.SMTP], None], size: int, refused: str) -> None:
        """A connection with EHLO, STARTTLS and login done, given to ``then``; smtplib's
        errors become MailErrors carrying the server's reply code and text."""
        clock = CommandClock()
        tls = DeadlineTlsContext(self.context, clock)
        try:
            with clock.bounded(deadline_for(self.deadline, size)):
                conn = _DeadlineSMTP(
                    self.host,
                    self.port,
                    self.timeout,
                    clock,
                    tls if self.scheme == "smtps" else None,
                )
                with conn:
                    self._start(conn, tls)
                    then(conn)
        except MailDeadlineExceeded as exc:
            raise _too_slow(exc) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise MailAuthError("SMTP login refused", server_says=_words(exc)) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailProtocolError(
                "all recipients were refused", server_says=str(exc.recipients)
            ) from exc
        except smtplib.SMTPResponseException as exc:
            cls = MailUnavailable if 400 <= exc.smtp_code < 500 else MailProtocolError
            raise cls(refused, server_says=_words(exc)) from exc
        except ssl.SSLCertVerificationError as exc:
            raise MailProtocolError(
                "SMTP server certificate not trusted", server_says=str(exc)
            ) from exc
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            late = deadline_behind(exc)
            if late is not None:  # smtplib reports a failed read as "disconnected"
                raise _too_slow(late) from exc
            raise MailUnavailable("SMTP server unreachable", server_says=str(exc)) from exc

    def _start(self, conn: smtplib.SMTP, tls: DeadlineTlsContext) -> None:
        """EHLO, STARTTLS when asked, login."""
        conn.ehlo()
        if self.scheme == "smtp":
            if not conn.has_extn("starttls"):
                raise MailProtocolError(
                    "SMTP server does not offer STARTTLS", server_says=self.host
                )
            conn.starttls(context=tls)  # type: ignore[call-overload]  # a stand-in SSLContext
            conn.ehlo()
        if self.user and conn.has_extn("auth"):
            conn.login(self.user, self.password)


def _too_slow(exc: MailDeadlineExceeded) -> MailUnavailable:
    return MailUnavailable(
        f"SMTP send exceeded its deadline of {seconds_text(exc.seconds)} s (server too slow)",
        server_says=str(exc),
    )


def _words(exc: smtplib.SMTPResponseException) -> str:
    msg = exc.smtp_error
    text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    return f"{exc.smtp_code} {text}"
