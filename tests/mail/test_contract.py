"""The contract every mailbox backend honours (Maildir, IMAP on Dovecot, EWS on the fake server
with Basic and with NTLM, Microsoft Graph on its fake server).

Parametrised by the ``mailbox`` fixture of ``conftest.py``, which this module widens with
Graph; a test here must pass unchanged for every backend (vdirsyncer's ``StorageTests``).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.domain.model import FolderRole
from core.mail import MailBackend, MailNotFound, open_backend, parse_message
from core.mail.base import FLAGGED_KEYWORD

from .conftest import _FACTORIES, CUSTOM_FOLDERS, KINDS, Mailbox, Opener
from .helpers import Replica, make_message


def _graph(tmp_path: Path, request: pytest.FixtureRequest) -> Opener:
    """Microsoft 365 through Graph: the fake server, a token from the emulator's authority;
    the mailbox has its Outbox, as every Exchange mailbox does."""
    server = request.getfixturevalue("graph_server")
    tokens = request.getfixturevalue("graph_authority")
    user = "me@test.example"
    server.add_mailbox(user, outbox=True)
    token = tokens.graph(user)
    verify = ssl.create_default_context(cafile=server.ca_file)
    return user, lambda: open_backend(
        "graph:", base_url=server.url, token=lambda: token, verify=verify
    )


_ALL = {**_FACTORIES, "graph": _graph}


@pytest.fixture(params=[*KINDS, "graph"])
def mailbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mailbox]:
    """The ``conftest`` mailbox, over every backend including Graph."""
    address, opener = _ALL[request.param](tmp_path, request)
    backend = opener()
    for path in CUSTOM_FOLDERS:
        backend.create_folder(path)
    opened = [backend]

    def reopen() -> MailBackend:
        b = opener()
        opened.append(b)
        return b

    yield Mailbox(request.param, backend, address, reopen)
    for b in opened:
        b.close()


def test_folder_tree_has_roles_and_custom_folders(mailbox: Mailbox) -> None:
    folders = {f.path: f for f in mailbox.backend.folders()}
    roles = {f.role for f in folders.values() if f.role}
    assert {
        FolderRole.INBOX,
        FolderRole.SENT,
        FolderRole.DRAFTS,
        FolderRole.DELETED,
        FolderRole.JUNK,
        FolderRole.OUTBOX,
    } <= roles
    assert folders["Inbox"].role is FolderRole.INBOX
    for path in CUSTOM_FOLDERS:
        assert path in folders
    assert folders["Inbox/Projects/Fabrikam"].parent == "Inbox/Projects"
    assert folders["Inbox/Projects"].parent == "Inbox"
    assert folders["Archive"].role is None and folders["Archive"].parent is None
    order = list(folders)
    assert order.index("Inbox/Projects") < order.index("Inbox/Projects/Fabrikam")
    assert mailbox.backend.folder("sent").role is FolderRole.SENT


def test_first_sync_then_nothing_new(mailbox: Mailbox) -> None:
    b = mailbox.backend
    extra = (
        "Cc: Mark Chen <mark.chen@fabrikam.example>\r\nIn-Reply-To: <a@x.example>\r\n"
        "References: <r@x.example> <a@x.example>\r\n"
        "Thread-Index: AdzbWpSLhYCPWGHctDxE6q2E\r\n"
    )
    ref = b.append("Inbox", make_message(1, extra=extra), is_read=False)
    b.append("Inbox", make_message(2), is_read=True)
    rep = Replica()
    rep.sync(b, "Inbox")
    assert set(rep.by_msgid()) == {"<msg-1@fabrikam.example>", "<msg-2@fabrikam.example>"}
    h = rep.by_msgid()["<msg-1@fabrikam.example>"]
    assert h.ref == ref
    assert h.subject == "Test message 1"
    assert h.sender is not None and h.sender.email == "jane.doe@fabrikam.example"
    assert h.sender.name == "Jane Doe"
    assert [a.email for a in h.cc] == ["mark.chen@fabrikam.example"]
    assert h.in_reply_to == "<a@x.example>"
    assert h.references == ("<r@x.example>", "<a@x.example>")
    assert h.thread_index == "AdzbWpSLhYCPWGHctDxE6q2E"
    assert h.date is not None and h.date.year == 2026
    assert h.size > 100 and not h.is_read and not h.parse_errors
    assert rep.by_msgid()["<msg-2@fabrikam.example>"].is_read
    again = rep.sync(b, "Inbox")
    assert all(batch.empty for batch in again) and again


def test_first_sync_streams_in_batches_and_resumes(mailbox: Mailbox) -> None:
    b = mailbox.backend
    for n in range(7):
        b.append("Archive", make_message(n))
    batches = list(b.sync("Archive", None, batch_size=3))
    assert [len(x.added) for x in batches if x.added] == [3, 3, 1]
    # Stop after the first batch (a crash), resume from its state: no gap, no duplicate.
    rep = Replica()
    rep.apply(batches[0])
    rep.sync(b, "Archive", batch_size=3)
    assert len(rep.headers) == 7
    assert len(rep.by_msgid()) == 7


def test_changes_and_removals_are_reported(mailbox: Mailbox) -> None:
    b = mailbox.backend
    refs = [b.append("Inbox", make_message(n), is_read=False) for n in range(4)]
    rep = Replica()
    rep.sync(b, "Inbox")
    other = mailbox.reopen()  # another device changes the mailbox
    other.set_read(refs[0], True)
    other.set_tracked(refs[1], "9f0c2a4e-1111-4f6e-9a61-000000000001")
    other.delete(refs[2])
    new = other.append("Inbox", make_message(10))
    batches = rep.sync(b, "Inbox")
    changed = {c.ref for x in batches for c in x.changed}
    removed = {r for x in batches for r in x.removed}
    added = {h.ref for x in batches for h in x.added}
    assert {refs[0], refs[1]} <= changed and refs[3] not in changed
    assert removed == {refs[2]} and added == {new}
    assert rep.headers[refs[0]].is_read
    assert rep.headers[refs[1]].tracked_marker
    assert not rep.headers[refs[3]].tracked_marker
    other.set_tracked(refs[1], None)
    rep.sync(b, "Inbox")
    assert rep.headers[refs[1]].tracked_marker is None


def test_fetch_returns_the_message(mailbox: Mailbox) -> None:
    b = mailbox.backend
    raw = make_message(5, subject="Grüße aus München", body="Ünïcödé body\r\n")
    ref = b.append("Drafts", raw)
    got = b.fetch(ref)
    msg = parse_message(got, ref)
    assert msg.header.message_id == "<msg-5@fabrikam.example>"
    assert msg.header.subject == "Grüße aus München"
    assert msg.text.strip() == "Ünïcödé body"
    b.delete(ref)
    with pytest.raises(MailNotFound):
        b.fetch(ref)


def test_move_gives_a_new_ref(mailbox: Mailbox) -> None:
    b = mailbox.backend
    ref = b.append("Inbox", make_message(1))
    src, dst = Replica(), Replica()
    src.sync(b, "Inbox")
    dst.sync(b, "Inbox/Projects/Fabrikam")
    new = b.move(ref, "Inbox/Projects/Fabrikam")
    assert new.folder == "Inbox/Projects/Fabrikam"
    assert parse_message(b.fetch(new)).header.message_id == "<msg-1@fabrikam.example>"
    src.sync(b, "Inbox")
    dst.sync(b, "Inbox/Projects/Fabrikam")
    assert ref not in src.headers
    assert list(dst.headers) == [new]


def test_send_keeps_a_copy_in_sent_items(mailbox: Mailbox) -> None:
    b = mailbox.backend
    raw = make_message(
        42, sender=mailbox.address, to="jane.doe@fabrikam.example", subject="Proposal CRM:0001042"
    )
    b.send(raw)
    sent = Replica()
    sent.sync(b, b.folder("sent").path)
    h = sent.by_msgid()["<msg-42@fabrikam.example>"]
    assert h.subject == "Proposal CRM:0001042" and h.is_read


def test_broken_messages_never_stop_a_sync(mailbox: Mailbox) -> None:
    b = mailbox.backend
    b.append("Junk", make_message(1))
    b.append(
        "Junk",
        b"From: =?utf-8?q?broken=ZZ?= <x@y.example>\r\nSubject: =?bogus?q?x?=\r\n"
        b"Date: not a date\r\nMessage-ID: <broken@y.example>\r\n\r\nbody\r\n",
    )
    b.append("Junk", b"Subject: no separator, no id\r\nGarbage line without colon\r\n")
    b.append("Junk", make_message(2))
    rep = Replica()
    rep.sync(b, "Junk")
    assert len(rep.headers) == 4
    broken = rep.by_msgid()["<broken@y.example>"]
    assert broken.date is None and broken.parse_errors
    assert {"<msg-1@fabrikam.example>", "<msg-2@fabrikam.example>"} <= set(rep.by_msgid())


def test_empty_folder_still_gives_a_state(mailbox: Mailbox) -> None:
    b = mailbox.backend
    first = list(b.sync("Outbox", None))
    assert len(first) == 1 and first[0].empty and first[0].state
    again = list(b.sync("Outbox", first[0].state))
    assert again and all(x.empty for x in again)


def test_unknown_folder_and_stale_ref(mailbox: Mailbox) -> None:
    b = mailbox.backend
    with pytest.raises(MailNotFound):
        list(b.sync("No Such Folder", None))
    with pytest.raises(MailNotFound):
        b.append("No Such Folder", make_message(1))
    ref = b.append("Inbox", make_message(1))
    b.delete(ref)
    with pytest.raises(MailNotFound):
        b.set_read(ref, True)


def test_copy_leaves_the_original_and_gives_the_copy_a_ref(mailbox: Mailbox) -> None:
    b = mailbox.backend
    ref = b.append("Inbox", make_message(7), is_read=True)
    copy = b.copy(ref, "Archive")
    assert copy.folder == "Archive" and copy != ref
    assert parse_message(b.fetch(copy)).header.message_id == "<msg-7@fabrikam.example>"
    assert parse_message(b.fetch(ref)).header.message_id == "<msg-7@fabrikam.example>"
    dst = Replica()
    dst.sync(b, "Archive")
    assert list(dst.headers) == [copy]
    b.delete(ref)
    with pytest.raises(MailNotFound):
        b.copy(ref, "Archive")


def test_read_and_flag_round_trip_through_sync(mailbox: Mailbox) -> None:
    """Set read and flagged here; another device's sync sees both, and sees them cleared."""
    b = mailbox.backend
    ref = b.append("Inbox", make_message(8), is_read=False)
    rep = Replica()
    rep.sync(b, "Inbox")
    assert FLAGGED_KEYWORD not in rep.headers[ref].keywords
    b.set_flagged(ref, True)
    b.set_read(ref, True)
    rep.sync(b, "Inbox")
    assert FLAGGED_KEYWORD in rep.headers[ref].keywords and rep.headers[ref].is_read
    fresh = Replica()
    fresh.sync(mailbox.reopen(), "Inbox")
    assert FLAGGED_KEYWORD in fresh.headers[ref].keywords
    b.set_flagged(ref, False)
    b.set_read(ref, False)
    rep.sync(b, "Inbox")
    assert FLAGGED_KEYWORD not in rep.headers[ref].keywords and not rep.headers[ref].is_read
    b.delete(ref)
    with pytest.raises(MailNotFound):
        b.set_flagged(ref, True)
