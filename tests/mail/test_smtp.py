"""SMTP submission: STARTTLS required and verified, AUTH, Bcc handling, refusals."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from core.mail import MailAuthError, MailProtocolError
from core.mail.smtp import SmtpSender, recipients_and_body
from tests.plugins.mailservers import free_port

from .helpers import make_message


class _Record:
    def __init__(self) -> None:
        self.got: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.got.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def tls_smtp(tls_material) -> Iterator[tuple[int, _Record]]:
    """aiosmtpd that requires STARTTLS, then AUTH (user ``u``, password ``pw``)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_material.cert_file, tls_material.key_file)

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = getattr(data, "login", b"") == b"u" and getattr(data, "password", b"") == b"pw"
        return AuthResult(success=ok, handled=False)  # aiosmtpd then sends the 535

    record, port = _Record(), free_port()
    controller = Controller(
        record,
        hostname="127.0.0.1",
        port=port,
        tls_context=ctx,
        require_starttls=True,
        authenticator=auth,
        auth_required=True,
    )
    controller.start()
    yield port, record
    controller.stop()


def test_starttls_auth_and_send(tls_smtp, tls_material) -> None:
    port, record = tls_smtp
    sender = SmtpSender(
        f"smtp://127.0.0.1:{port}",
        user="u",
        password="pw",
        ssl_context=tls_material.client_context(),
    )
    sender.send(make_message(1, to="b@y.example"))
    assert record.got[0][1] == ["b@y.example"]


def test_untrusted_certificate_and_wrong_password(tls_smtp, tls_material) -> None:
    port, _ = tls_smtp
    with pytest.raises(MailProtocolError) as err:
        SmtpSender(f"smtp://127.0.0.1:{port}", user="u", password="pw").send(make_message(1))
    assert "certificate" in str(err.value).lower()
    with pytest.raises(MailAuthError):
        SmtpSender(
            f"smtp://127.0.0.1:{port}",
            user="u",
            password="bad",
            ssl_context=tls_material.client_context(),
        ).send(make_message(1))


def test_starttls_is_required(smtp_server) -> None:
    # The relay fixture offers no STARTTLS: smtp:// must refuse to send in the clear.
    with pytest.raises(MailProtocolError):
        SmtpSender(f"smtp://127.0.0.1:{smtp_server.port}").send(make_message(1))


def test_bcc_is_a_recipient_but_not_a_header() -> None:
    mime = (
        b"From: a@x.example\r\nTo: b@y.example\r\nCc: C <c@y.example>\r\n"
        b"Bcc: d@z.example,\r\n e@z.example\r\nSubject: s\r\n\r\nBcc: in the body stays\r\n"
    )
    sender, rcpts, body = recipients_and_body(mime)
    assert sender == "a@x.example"
    assert rcpts == ["b@y.example", "c@y.example", "d@z.example", "e@z.example"]
    assert b"d@z.example" not in body and b"e@z.example" not in body
    assert body.endswith(b"Bcc: in the body stays\r\n")
    with pytest.raises(MailProtocolError):
        recipients_and_body(b"From: a@x.example\r\nSubject: nobody\r\n\r\n")
