"""RFC 5321 line limit on what Trackbox sends: a received message with a 5,000-character line
forwarded (inline, with its attachment) and forwarded as an attachment through the real SMTP
relay (aiosmtpd answers "500 Line too long" to a line over 1000 octets) into Dovecot; what
arrives has no line over 998 octets and reads back as the same text."""

from __future__ import annotations

from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest

from core.domain.model import Address
from core.mail import parse_message
from core.mail.line_limits import MAX_LINE, longest_line
from core.workspace.compose import Draft
from core.workspace.drafts import DraftBox
from crmserver import RunningServer
from tests.plugins.mailservers import DovecotServer, SmtpServer
from tests.sync.env import ME, Env

JANE = Address("jane.doe@fabrikam.example", "Jane Doe")
MARK = Address("mark.chen@fabrikam.example", "Mark Chen")
LONG = " ".join(f"w{i:04d}" for i in range(834))[:5000]  # one 5,000-character line
CSV = ("a," * 1500 + "end").encode()  # an attachment that is itself one long line


def _original() -> bytes:
    """A message as some other client sends it: 7bit text with one 5,000-character line and
    a text attachment of one long line, both unencoded (legal in LMTP, not in SMTP)."""
    return (
        f"From: {JANE.display()}\r\nTo: {ME.display()}\r\nSubject: Long lines\r\n"
        "Message-ID: <long-lines@fabrikam.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        f"Content-Transfer-Encoding: 7bit\r\n\r\n{LONG}\r\n"
        "--b1\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=x.csv\r\n"
        f"Content-Transfer-Encoding: 7bit\r\n\r\n{CSV.decode()}\r\n--b1--\r\n"
    ).encode()


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Env:
    return Env(fresh_crm, dovecot, smtp_server, tmp_path)


def _send(env: Env, ws: object, draft: Draft) -> bytes:
    before = len(env.smtp.received)
    changes = ws.send(draft)  # type: ignore[attr-defined]
    assert changes.errors == ()
    assert len(env.smtp.received) == before + 1, "the SMTP server did not take the message"
    raw = env.smtp.received[-1][2]
    assert longest_line(raw) <= MAX_LINE
    return raw


def test_forward_and_forward_as_attachment_of_long_lines(env: Env) -> None:
    ws, user = env.workspace("long")
    env.dovecot.deliver(user, _original())
    assert ws.sync_mail().errors == ()
    [row] = [r for r in ws.store().message_rows("Inbox", 0, 50) if r.header.subject == "Long lines"]
    box = DraftBox.of(ws)
    store = ws.store()

    forward = Draft(
        to=(MARK,),
        subject="FW: Long lines",
        body_text=f"See below.\n\n{LONG}\n",
        body_html=f"<p>See below.</p><p>{LONG}</p>",
        attachments=box.attachments_of(store, row.id),
    )
    sent = parse_message(_send(env, ws, forward))
    assert LONG in sent.text and LONG in (sent.html or "")
    [csv] = sent.attachments
    assert csv.filename == "x.csv" and csv.payload() == CSV

    whole = Draft(
        to=(MARK,), subject="FW: Long lines", attachments=(box.as_attachment(store, row.id),)
    )
    raw = _send(env, ws, whole)
    outer = BytesParser(policy=policy.default).parsebytes(raw)
    [part] = [p for p in outer.walk() if p.get_content_type() == "message/rfc822"]
    inner = part.get_payload()[0]
    assert isinstance(inner, Message) and inner["Message-ID"] == "<long-lines@fabrikam.example>"
    opened = parse_message(inner.as_bytes())
    assert opened.text.strip() == LONG
    [inner_csv] = opened.attachments
    assert inner_csv.payload() == CSV
    ws.close()


def test_pending_send_and_reply_of_one_long_line(smtp_server: SmtpServer) -> None:
    """A CRM e-mail (Pending Send) is often one long line of HTML; a reply quotes one."""
    from core.mail.drafts import build_mime
    from core.mail.smtp import SmtpSender
    from core.sync.pending_send import PendingMail, mime_for

    html = "<div>" + "<span>Quote line</span> " * 400 + "</div>"  # ~9,600 characters
    crm_mail = PendingMail("a1", "From the CRM", (MARK,), (), (), html)
    reply = Draft(to=(JANE,), subject="RE: Long lines", body_text=f"Yes.\n\n> {LONG}\n")
    sender = SmtpSender(smtp_server.url())
    crm_raw = mime_for(crm_mail, ME, "<crm.a1@test.example>")
    for raw, read_back in (
        (crm_raw, lambda p: p.html),
        (build_mime(reply, ME), lambda p: p.text),
    ):
        before = len(smtp_server.received)
        sender.send(raw)
        received = smtp_server.received[before][2]
        assert longest_line(received) <= MAX_LINE
        sent = read_back(parse_message(received)) or ""
        assert (html if raw is crm_raw else f"> {LONG}") in sent


def test_a_long_line_is_refused_before_the_server_sees_it(smtp_server: SmtpServer) -> None:
    from core.mail import MailProtocolError
    from core.mail.smtp import SmtpSender

    raw = f"From: {ME.email}\r\nTo: {MARK.email}\r\nSubject: raw\r\n\r\n{LONG}\r\n".encode()
    before = len(smtp_server.received)
    with pytest.raises(MailProtocolError, match="line of 5000 octets"):
        SmtpSender(smtp_server.url()).send(raw)
    assert len(smtp_server.received) == before
