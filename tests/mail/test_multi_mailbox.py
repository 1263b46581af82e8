"""A profile's own Microsoft 365 mailbox with a shared one beside it (``core.mail.multi``), on
the fake Graph server: the mail contract holds for the user's own mailbox through the
composite; the shared mailbox's folders sit under its address without roles; every call
reaches the mailbox its path names (checked in the fake, which keeps the two apart); refs and
sync states round-trip; a mailbox the user lost access to fails only for its own folders."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from core.domain.model import FolderRole, MailRef
from core.mail import MailAuthError, MailBackend, MailNotFound, open_backend, parse_message
from core.mail.graph_items import ACTIVITY_PROPERTY, TRACKED_CATEGORY_365
from core.mail.multi import ROOT_STATE, CrossMailboxMove, MultiMailbox
from tests.fakes.graph_server import FakeGraphServer
from tests.plugins.graph import MAIL_SCOPES, SHARED_SCOPES, GraphTokens

from . import test_contract as suite
from .conftest import CUSTOM_FOLDERS, Mailbox
from .helpers import Replica, make_message

# The contract suite, on the user's own mailbox through the composite.
test_changes_and_removals_are_reported = suite.test_changes_and_removals_are_reported
test_empty_folder_still_gives_a_state = suite.test_empty_folder_still_gives_a_state
test_fetch_returns_the_message = suite.test_fetch_returns_the_message
test_first_sync_streams_in_batches_and_resumes = (
    suite.test_first_sync_streams_in_batches_and_resumes
)
test_first_sync_then_nothing_new = suite.test_first_sync_then_nothing_new
test_folder_tree_has_roles_and_custom_folders = suite.test_folder_tree_has_roles_and_custom_folders
test_move_gives_a_new_ref = suite.test_move_gives_a_new_ref
test_send_keeps_a_copy_in_sent_items = suite.test_send_keeps_a_copy_in_sent_items
test_unknown_folder_and_stale_ref = suite.test_unknown_folder_and_stale_ref

ME = "me@test.example"
SALES = "sales@test.example"
ACTIVITY = "9f0c2a4e-1111-4f6e-9a61-000000000042"


class Opener:
    """Opens MultiMailboxes over ``ME`` with ``SALES`` beside it; counts the opened shared
    backends (they open lazily)."""

    def __init__(self, server: FakeGraphServer, tokens: GraphTokens) -> None:
        self.server = server
        self.token = tokens.graph(ME, MAIL_SCOPES + SHARED_SCOPES)
        self.verify = ssl.create_default_context(cafile=server.ca_file)
        self.shared_opened = 0
        self.made: list[MailBackend] = []

    def graph(self, mailbox: str | None = None) -> MailBackend:
        options = {"mailbox": mailbox} if mailbox else {}
        token = self.token
        return open_backend(
            "graph:", base_url=self.server.url, token=lambda: token, verify=self.verify, **options
        )

    def _shared(self) -> MailBackend:
        self.shared_opened += 1
        return self.graph(SALES)

    def __call__(self) -> MultiMailbox:
        made = MultiMailbox(self.graph(), {SALES: self._shared})
        self.made.append(made)
        return made


@pytest.fixture
def opener(graph_server: FakeGraphServer, graph_authority: GraphTokens) -> Iterator[Opener]:
    graph_server.add_mailbox(ME, outbox=True)
    graph_server.grant(SALES, ME)
    made = Opener(graph_server, graph_authority)
    yield made
    for backend in made.made:
        backend.close()


@pytest.fixture
def mailbox(opener: Opener) -> Mailbox:
    """The contract suite's mailbox: the user's own, through the composite."""
    backend = opener()
    for path in CUSTOM_FOLDERS:
        backend.create_folder(path)
    return Mailbox("graph-multi", backend, ME, opener)


def deliver(server: FakeGraphServer, box: str, n: int) -> str:
    return server.add_message(box, "inbox", make_message(n, to=box))


def only(replica: Replica) -> MailRef:
    [ref] = replica.headers
    return ref


def test_folders_of_both_mailboxes_and_roles_only_for_the_own(opener: Opener) -> None:
    multi = opener()
    multi.create_folder(f"{SALES}/Inbox/Projects/Fabrikam")
    folders = {f.path: f for f in multi.folders()}
    assert folders[SALES].parent is None and folders[SALES].role is None
    for path in ("Inbox", "Sent Items", "Drafts", "Deleted Items", "Junk"):
        shared = folders[f"{SALES}/{path}"]
        assert shared.role is None and shared.parent == SALES
    assert folders[f"{SALES}/Inbox/Projects/Fabrikam"].parent == f"{SALES}/Inbox/Projects"
    assert folders[f"{SALES}/Inbox"].name == "Inbox"
    roles = {f.role: f.path for f in folders.values() if f.role}
    assert roles[FolderRole.INBOX] == "Inbox" and roles[FolderRole.SENT] == "Sent Items"
    assert multi.folder("drafts").path == "Drafts"
    order = list(folders)
    assert order.index("Inbox") < order.index(SALES) < order.index(f"{SALES}/Inbox")
    assert opener.server.folder(SALES, "Inbox/Projects/Fabrikam").name == "Fabrikam"
    assert "Projects" not in {f.name for f in opener.server.mailbox(ME).folders.values()}
    assert multi.failures == {}


def test_sync_fetch_and_flags_reach_the_mailbox_the_path_names(opener: Opener) -> None:
    server = opener.server
    own_id = deliver(server, ME, 1)
    shared_id = deliver(server, SALES, 2)
    multi = opener()
    own, shared = Replica(), Replica()
    own.sync(multi, "Inbox")
    shared.sync(multi, f"{SALES}/Inbox")
    assert only(own) == MailRef("Inbox", own_id)
    ref = only(shared)
    assert ref == MailRef(f"{SALES}/Inbox", shared_id)
    assert shared.headers[ref].message_id == "<msg-2@fabrikam.example>"
    assert parse_message(multi.fetch(ref)).header.message_id == "<msg-2@fabrikam.example>"

    multi.set_read(ref, True)
    multi.set_tracked(ref, ACTIVITY)
    in_sales = server.message(SALES, shared_id)
    assert in_sales.is_read and TRACKED_CATEGORY_365 in in_sales.categories
    assert in_sales.properties[ACTIVITY_PROPERTY.lower()][1] == ACTIVITY
    untouched = server.message(ME, own_id)
    assert not untouched.is_read and not untouched.categories

    [change] = [c for b in shared.sync(multi, f"{SALES}/Inbox") for c in b.changed]
    assert change.ref == ref and change.is_read and change.tracked_marker == ACTIVITY
    assert all(b.empty for b in own.sync(multi, "Inbox"))


def test_bulk_marking_splits_by_mailbox(opener: Opener) -> None:
    server = opener.server
    own_id, shared_id = deliver(server, ME, 1), deliver(server, SALES, 2)
    multi = opener()
    refs = [MailRef("Inbox", own_id), MailRef(f"{SALES}/Inbox", shared_id)]
    gone = MailRef(f"{SALES}/Inbox", "AAMkNoSuchMessage")
    failed = multi.set_tracked_many([(refs[0], ACTIVITY), (refs[1], ACTIVITY), (gone, ACTIVITY)])
    assert list(failed) == [gone] and isinstance(failed[gone], MailNotFound)
    assert failed[gone].ref == gone
    for box, message_id in ((ME, own_id), (SALES, shared_id)):
        assert TRACKED_CATEGORY_365 in server.message(box, message_id).categories


def test_append_move_delete_and_folders_inside_the_shared_mailbox(opener: Opener) -> None:
    server = opener.server
    multi = opener()
    made = multi.create_folder(f"{SALES}/Inbox/Done")
    assert (made.path, made.parent, made.role) == (f"{SALES}/Inbox/Done", f"{SALES}/Inbox", None)
    assert multi.create_folder(SALES).path == SALES  # the mailbox itself: already there
    ref = multi.append(f"{SALES}/Inbox", make_message(7, to=SALES), is_read=False)
    assert ref.folder == f"{SALES}/Inbox"
    assert not server.message(SALES, ref.uid).is_read
    assert [m.id for m in server.messages(ME, "inbox")] == []
    moved = multi.move(ref, f"{SALES}/Inbox/Done")
    assert moved.folder == f"{SALES}/Inbox/Done" and server.message(SALES, moved.uid)
    with pytest.raises(CrossMailboxMove) as refused:
        multi.move(moved, "Inbox")
    assert refused.value.ref == moved and server.message(SALES, moved.uid)
    with pytest.raises(CrossMailboxMove):
        multi.copy(moved, "Inbox")
    multi.set_flagged(moved, True)
    assert server.message(SALES, moved.uid).flag == "flagged"
    assert [m.id for m in server.messages(ME, "inbox")] == []
    multi.delete(moved)
    with pytest.raises(MailNotFound) as gone:
        multi.fetch(moved)
    assert gone.value.ref == moved  # the error names the ref in the composite's paths
    with pytest.raises(MailNotFound) as missing:
        list(multi.sync(f"{SALES}/No Such Folder", None))
    assert missing.value.folder == f"{SALES}/No Such Folder"


def test_states_and_refs_round_trip_through_a_new_session(opener: Opener) -> None:
    server = opener.server
    deliver(server, SALES, 1)
    first = opener()
    replica = Replica()
    replica.sync(first, f"{SALES}/Inbox")
    [root] = list(first.sync(SALES, None))
    assert root.empty and root.state == ROOT_STATE
    first.close()
    first.close()  # twice is safe
    second = opener()
    assert all(b.empty for b in replica.sync(second, f"{SALES}/Inbox"))
    ref = only(replica)
    second.set_read(ref, True)  # a ref from the first session works in the second
    assert server.message(SALES, ref.uid).is_read
    later = deliver(server, SALES, 2)
    added = [h.ref for b in replica.sync(second, f"{SALES}/Inbox") for h in b.added]
    assert added == [MailRef(f"{SALES}/Inbox", later)]


def test_the_shared_mailbox_opens_only_when_used_and_sends_go_through_the_own(
    opener: Opener,
) -> None:
    server = opener.server
    multi = opener()
    list(multi.sync("Inbox", None))
    assert multi.folder("sent").path == "Sent Items"
    multi.send(make_message(3, sender=ME, to="jane.doe@fabrikam.example"))
    assert opener.shared_opened == 0
    assert [s.mailbox for s in server.sent] == [ME]
    multi.folders()
    assert opener.shared_opened == 1


def test_a_lost_grant_fails_only_the_shared_mailboxs_folders(opener: Opener) -> None:
    server = opener.server
    own_id, shared_id = deliver(server, ME, 1), deliver(server, SALES, 2)
    server._grants.discard((SALES, ME))  # the owner took the user's access away
    multi = opener()
    paths = [f.path for f in multi.folders()]
    assert "Inbox" in paths and not any(p.startswith(SALES) for p in paths)
    assert isinstance(multi.failures[SALES], MailAuthError)
    assert multi.failures[SALES].folder == SALES
    own = Replica()
    own.sync(multi, "Inbox")
    assert only(own) == MailRef("Inbox", own_id)
    with pytest.raises(MailAuthError) as refused:
        list(multi.sync(f"{SALES}/Inbox", None))
    assert refused.value.folder == f"{SALES}/Inbox" and "403" in refused.value.server_says
    shared_ref = MailRef(f"{SALES}/Inbox", shared_id)
    failed = multi.set_tracked_many([(MailRef("Inbox", own_id), ACTIVITY), (shared_ref, ACTIVITY)])
    assert list(failed) == [shared_ref] and isinstance(failed[shared_ref], MailAuthError)
    assert TRACKED_CATEGORY_365 in server.message(ME, own_id).categories
    assert not server.message(SALES, shared_id).categories


def test_an_extra_mailbox_that_cannot_open_is_a_failure_of_its_own(opener: Opener) -> None:
    def cannot() -> MailBackend:
        raise MailAuthError("no token for the shared mailbox")

    multi = MultiMailbox(opener.graph(), {SALES: cannot})
    opener.made.append(multi)
    assert [f.path for f in multi.folders()][0] == "Inbox"
    assert multi.failures[SALES].folder == SALES
    with pytest.raises(MailAuthError):
        multi.fetch(MailRef(f"{SALES}/Inbox", "x"))
