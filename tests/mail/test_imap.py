"""IMAP-specific behaviour against the real Dovecot: TLS, auth, UIDVALIDITY, extensions, SMTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from core.mail import MailAuthError, MailProtocolError, MailUnavailable, open_backend
from core.mail.imap import ImapBackend

from .helpers import Replica, make_message


@pytest.fixture
def account(dovecot) -> Iterator[tuple[str, ImapBackend]]:
    user = dovecot.new_user()
    b = open_backend(dovecot.url("imaps"), user=user, password=dovecot.password,
                     ssl_context=dovecot.tls.client_context())
    assert isinstance(b, ImapBackend)
    yield user, b
    b.close()


def test_starttls_is_required_and_verified(dovecot) -> None:
    user = dovecot.new_user()
    with open_backend(dovecot.url("imap"), user=user, password=dovecot.password,
                      ssl_context=dovecot.tls.client_context()) as b:
        assert any(f.path == "Inbox" for f in b.folders())
    # Default context: the system CAs do not know our test CA.
    with open_backend(dovecot.url("imap"), user=user, password=dovecot.password) as b, \
            pytest.raises(MailProtocolError) as err:
        b.folders()
    assert "certificate" in str(err.value).lower()
    with open_backend(dovecot.url("imaps"), user=user, password=dovecot.password) as b, \
            pytest.raises(MailProtocolError):
        b.folders()


def test_wrong_password_is_an_auth_error_with_the_servers_words(dovecot) -> None:
    with open_backend(dovecot.url(), user=dovecot.new_user(), password="wrong") as b, \
            pytest.raises(MailAuthError) as err:
        b.folders()
    assert "auth" in err.value.server_says.lower()


def test_unreachable_server_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        with open_backend(f"imap+insecure://127.0.0.1:{port}", user="x", password="y") as b, \
                pytest.raises(MailUnavailable):
            b.folders()


def test_uidvalidity_change_resyncs_without_duplicates(dovecot, account) -> None:
    user, b = account
    b.create_folder("Archive")
    old = [b.append("Archive", make_message(n)) for n in range(3)]
    rep = Replica()
    rep.sync(b, "Archive")
    assert len(rep.headers) == 3
    # The server recreates the folder: same name, new UIDVALIDITY, one message.
    c = b._connect()
    c.unselect_folder() if b._selected else None
    b._selected = None
    c.delete_folder("Archive")
    c.create_folder("Archive")
    b.append("Archive", make_message(9))
    batches = rep.sync(b, "Archive")
    assert batches[0].reset and set(batches[0].removed) == set(old)
    assert [h.message_id for h in rep.headers.values()] == ["<msg-9@fabrikam.example>"]
    assert not set(old) & set(rep.headers)
    with pytest.raises(MailProtocolError):
        b.fetch(old[0])  # a stale ref never reaches another message


def test_condstore_without_qresync_and_plain_uid_ranges(dovecot) -> None:
    user = dovecot.new_user()
    for kwargs in ({"use_qresync": False}, {"use_condstore": False}):
        with open_backend(dovecot.url(), user=user, password=dovecot.password, **kwargs) as b:
            refs = [b.append("Inbox", make_message(n), is_read=False) for n in range(4)]
            rep = Replica()
            rep.sync(b, "Inbox")
            b.set_read(refs[0], True)
            b.delete(refs[1])
            new = b.append("Inbox", make_message(7))
            batches = rep.sync(b, "Inbox")
            assert refs[0] in {c.ref for x in batches for c in x.changed}
            assert rep.headers[refs[0]].is_read
            assert refs[1] not in rep.headers and new in rep.headers
            for r in list(rep.headers):
                b.delete(r)


def test_reconnects_after_the_server_drops_the_session(account) -> None:
    _, b = account
    ref = b.append("Inbox", make_message(1))
    b._connect().socket().shutdown(socket.SHUT_RDWR)  # the server "timed out" the session
    assert b"msg-1" in b.fetch(ref)


def test_non_ascii_folder_names(account) -> None:
    _, b = account
    b.create_folder("Inbox/Geschäft/Größe")
    paths = {f.path: f for f in b.folders()}
    assert paths["Inbox/Geschäft/Größe"].parent == "Inbox/Geschäft"
    ref = b.append("Inbox/Geschäft/Größe", make_message(3))
    assert Replica().sync(b, "Inbox/Geschäft/Größe")[0].added[0].ref == ref


def test_send_goes_through_smtp_and_can_be_read_back(dovecot, smtp_server) -> None:
    alice, bob, carol = dovecot.new_user(), dovecot.new_user(), dovecot.new_user()
    mime = (f"From: Alice <{alice}>\r\nTo: Bob <{bob}>\r\nBcc: {carol}\r\n"
            "Subject: Quote CRM:0001023\r\nMessage-ID: <send-1@test.example>\r\n\r\nHi\r\n"
            ).encode()
    with open_backend(dovecot.url(), user=alice, password=dovecot.password,
                      smtp_url=smtp_server.url()) as a:
        a.send(mime)
        sent = Replica()
        sent.sync(a, a.folder("sent").path)
        assert "<send-1@test.example>" in sent.by_msgid()
    for user in (bob, carol):
        with open_backend(dovecot.url(), user=user, password=dovecot.password) as b:
            inbox = Replica()
            inbox.sync(b, "Inbox")
            h = inbox.by_msgid()["<send-1@test.example>"]
            assert h.subject == "Quote CRM:0001023"
            assert b"Bcc:" not in b.fetch(h.ref)  # nobody sees the Bcc line


def test_send_without_smtp_is_refused(account) -> None:
    _, b = account
    with pytest.raises(MailProtocolError):
        b.send(make_message(1))


def test_idle_wakes_up_on_new_mail(dovecot, account) -> None:
    import threading

    user, b = account
    assert b.wait_for_changes("Inbox", timeout=0.2) is False  # nothing happens
    threading.Timer(0.3, dovecot.deliver, (user, make_message(1))).start()
    assert b.wait_for_changes("Inbox", timeout=30) is True
    assert Replica().sync(b, "Inbox")[0].added


def test_fast_fetch_reader_agrees_with_imapclient(account) -> None:
    from imapclient.response_parser import parse_fetch_response

    from core.mail import imap_wire
    from core.mail.imap import _FIELDS

    _, b = account
    for n in range(3):
        b.append("Inbox", make_message(n, subject=f"=?utf-8?q?Gr=C3=BC=C3=9Fe_{n}?="),
                 is_read=bool(n % 2))
    b.set_tracked(Replica().sync(b, "Inbox")[0].added[0].ref, "act")
    c = b._connect()
    b._selected = None
    b._select(c, "Inbox")
    tag = c._imap._command("UID", "FETCH", "1:*", f"(FLAGS RFC822.SIZE {_FIELDS.decode()})")
    typ, resp = c._imap._command_complete("FETCH", tag)
    typ, resp = c._imap._untagged_response(typ, resp, "FETCH")
    fast = imap_wire._header_fetch(resp)
    slow = parse_fetch_response(resp, True, True)
    assert fast is not None and set(fast) == set(slow)
    for uid, row in fast.items():
        for key, value in row.items():
            assert slow[uid][key] == value
