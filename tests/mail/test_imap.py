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
    b = open_backend(
        dovecot.url("imaps"),
        user=user,
        password=dovecot.password,
        ssl_context=dovecot.tls.client_context(),
    )
    assert isinstance(b, ImapBackend)
    yield user, b
    b.close()


def test_starttls_is_required_and_verified(dovecot) -> None:
    user = dovecot.new_user()
    with open_backend(
        dovecot.url("imap"),
        user=user,
        password=dovecot.password,
        ssl_context=dovecot.tls.client_context(),
    ) as b:
        assert any(f.path == "Inbox" for f in b.folders())
    # Default context: the system CAs do not know our test CA.
    with (
        open_backend(dovecot.url("imap"), user=user, password=dovecot.password) as b,
        pytest.raises(MailProtocolError) as err,
    ):
        b.folders()
    assert "certificate" in str(err.value).lower()
    with (
        open_backend(dovecot.url("imaps"), user=user, password=dovecot.password) as b,
        pytest.raises(MailProtocolError),
    ):
        b.folders()


def test_wrong_password_is_an_auth_error_with_the_servers_words(dovecot) -> None:
    with (
        open_backend(dovecot.url(), user=dovecot.new_user(), password="wrong") as b,
        pytest.raises(MailAuthError) as err,
    ):
        b.folders()
    assert "auth" in err.value.server_says.lower()


def test_unreachable_server_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        with (
            open_backend(f"imap+insecure://127.0.0.1:{port}", user="x", password="y") as b,
            pytest.raises(MailUnavailable),
        ):
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


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"use_qresync": False}, {"use_condstore": False}],
    ids=["qresync", "condstore", "plain"],
)
def test_new_mail_with_a_gap_and_more_than_a_batch(dovecot, kwargs) -> None:
    """An incremental sync fetches the UIDs below UIDNEXT without a SEARCH: one expunged
    before the sync must not be listed, and more new mail than a batch still all arrives."""
    user = dovecot.new_user()
    with open_backend(dovecot.url(), user=user, password=dovecot.password, **kwargs) as b:
        b.append("Inbox", make_message(0))
        rep = Replica()
        rep.sync(b, "Inbox", batch_size=3)
        new = [b.append("Inbox", make_message(n)) for n in range(1, 4)]
        b.delete(new[1])  # arrived and went before this client looked
        rep.sync(b, "Inbox", batch_size=3)
        assert {r for r in rep.headers if r in new} == {new[0], new[2]}
        more = [b.append("Inbox", make_message(n)) for n in range(4, 11)]  # > batch_size
        batches = rep.sync(b, "Inbox", batch_size=3)
        assert {h.ref for x in batches for h in x.added} == set(more)
        assert len(rep.headers) == 1 + 2 + 7
        assert not any(x.added for x in rep.sync(b, "Inbox", batch_size=3))


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
    mime = (
        f"From: Alice <{alice}>\r\nTo: Bob <{bob}>\r\nBcc: {carol}\r\n"
        "Subject: Quote CRM:0001023\r\nMessage-ID: <send-1@test.example>\r\n\r\nHi\r\n"
    ).encode()
    with open_backend(
        dovecot.url(), user=alice, password=dovecot.password, smtp_url=smtp_server.url()
    ) as a:
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


def test_header_fetch_reader_agrees_with_imapclient(account) -> None:
    """The direct FETCH reader gives what imapclient's general parser gives, over TLS, for
    encoded and 8-bit subjects, flags and the tracked keyword (replies of other shapes:
    the scripted test below)."""
    from core.mail import imap_wire
    from core.mail.imap import _FIELDS

    _, b = account
    for n in range(3):
        b.append(
            "Inbox",
            make_message(n, subject=f"=?utf-8?q?Gr=C3=BC=C3=9Fe_{n}?="),
            is_read=bool(n % 2),
        )
    b.append("Inbox", make_message(9).replace(b"Subject:", "Subject: Grüße".encode() + b"\r\nX:"))
    b.set_tracked(Replica().sync(b, "Inbox")[0].added[0].ref, "act")
    c = b._connect()
    b._selected = None
    b._select(c, "Inbox")
    slow = c.fetch(c.search(["ALL"]), ["FLAGS", "RFC822.SIZE", _FIELDS.decode()])
    got = list(imap_wire.header_fetch(c, "1:*", b"FLAGS RFC822.SIZE " + _FIELDS))
    assert [row.uid for row in got] == sorted(slow) and len(got) == 4
    for row in got:
        want = slow[row.uid]
        block = next(v for k, v in want.items() if k.startswith(b"BODY[HEADER"))
        assert (row.flags, row.size, row.block) == (want[b"FLAGS"], want[b"RFC822.SIZE"], block)
    assert any(b"$CRMTracked" in row.flags for row in got)
    assert b.folders()  # the connection is in step after the direct reads


class _ScriptedImap:
    """Plays a server's reply to one FETCH, byte for byte, for replies Dovecot never sends."""

    def __init__(self, reply: bytes) -> None:
        import io

        self.stream = io.BytesIO(reply)
        self.sent: list[bytes] = []
        self.tagged_commands: dict[bytes, object] = {}
        self.closed = False

    def shutdown(self) -> None:
        self.closed = True

    def _new_tag(self) -> bytes:
        self.tagged_commands[b"T1"] = None
        return b"T1"

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def readline(self) -> bytes:
        return self.stream.readline()

    def read(self, n: int) -> bytes:
        return self.stream.read(n)


class _ScriptedClient:
    normalise_times = True

    def __init__(self, reply: bytes) -> None:
        self._imap = _ScriptedImap(reply)


def test_header_fetch_reader_takes_odd_replies_and_refuses_bad_ones() -> None:
    from imapclient import exceptions as imap_exc

    from core.mail import imap_wire

    head = b"Subject: hi\r\n\r\n"
    reply = (
        b"* 3 EXISTS\r\n"  # other untagged data mixed in: skipped
        b"* 1 FETCH (UID 7 FLAGS (\\Seen) RFC822.SIZE 99 BODY[HEADER.FIELDS (SUBJECT)] {%d}\r\n"
        b"%s)\r\n"
        b'* 2 FETCH (UID 8 BODY[HEADER.FIELDS (SUBJECT)] "" FLAGS () RFC822.SIZE 5)\r\n'
        b"* 2 FETCH (UID 8 FLAGS (\\Flagged))\r\n"  # an unsolicited flag update: skipped
        b"* 1 EXPUNGE\r\n"
        b"T1 OK done\r\n" % (len(head), head)
    )
    c = _ScriptedClient(reply)
    items = b"FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)]"
    got = list(imap_wire.header_fetch(c, "1:*", items))
    assert c._imap.sent == [
        b"T1 UID FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n"
    ]
    assert got == [
        imap_wire.FetchedHeader(7, (b"\\Seen",), 99, head),
        imap_wire.FetchedHeader(8, (), 5, b""),
    ]
    assert c._imap.tagged_commands == {}
    with pytest.raises(imap_exc.IMAPClientError, match="no such message"):
        list(imap_wire.header_fetch(_ScriptedClient(b"T1 NO no such message\r\n"), "1", b"FLAGS"))
    for cut in (
        b"* 1 FETCH (UID 7 BODY[HEADER.FIELDS (SUBJECT)] {40}\r\nSubject:",
        b"* BYE shutting down\r\n",
        b"* 1 FETCH (UID 7 FLAGS ()",
    ):
        with pytest.raises(imap_exc.IMAPClientAbortError):
            list(imap_wire.header_fetch(_ScriptedClient(cut), "1", b"FLAGS"))
    # a reader left half-way closes the connection: the rest of the reply is in the way
    c = _ScriptedClient(reply)
    next(imap_wire.header_fetch(c, "1:*", items))
    assert c._imap.closed
