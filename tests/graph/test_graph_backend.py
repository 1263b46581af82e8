"""Graph specifics of the Graph mail backend (``core/mail/graph.py``) against the fake Graph
server: delta rounds, 410, paging, the tracked marker and its bulk form, Graph's limits,
shared mailboxes, tokens. The backend contract itself runs in ``tests/mail/test_contract.py``."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.domain import demo_data
from core.domain.message_identity import is_synthetic
from core.domain.model import MailRef, TrackState
from core.mail import MailAuthError, MailNotFound, MailProtocolError, MailUnavailable, open_backend
from core.mail.graph import GraphBackend
from core.mail.graph_http import MAX_WAIT
from core.mail.graph_items import ACTIVITY_PROPERTY, TRACKED_CATEGORY_365
from core.store import Store
from core.sync.mailbox import sync_folder
from tests.fakes.graph_server import FakeGraphServer
from tests.mail.helpers import Replica, make_message
from tests.plugins.graph import MAIL_SCOPES, SHARED_SCOPES, GraphTokens

ME = demo_data.ME.email
SHARED = "sales@contoso.example"
ACTIVITY = "9f0c2a4e-1111-4f6e-9a61-000000000001"


class Opened:
    """Backends on the fake server; ``sleeps`` records every Retry-After waited out."""

    def __init__(self, server: FakeGraphServer, tokens: GraphTokens) -> None:
        self.server = server
        self.tokens = tokens
        self.sleeps: list[float] = []
        self.backends: list[GraphBackend] = []
        self.verify = ssl.create_default_context(cafile=server.ca_file)

    def __call__(self, url: str = "graph:", token: Callable[[], str] | None = None) -> GraphBackend:
        fixed = self.tokens.graph(ME, (*MAIL_SCOPES, *SHARED_SCOPES))
        b = open_backend(
            url,
            base_url=self.server.url,
            token=token or (lambda: fixed),
            verify=self.verify,
            sleep=self.sleeps.append,
        )
        assert isinstance(b, GraphBackend)
        self.backends.append(b)
        return b


@pytest.fixture
def graph(graph_server: FakeGraphServer, graph_authority: GraphTokens) -> Iterator[Opened]:
    graph_server.add_mailbox(ME, outbox=True)
    opened = Opened(graph_server, graph_authority)
    yield opened
    for b in opened.backends:
        b.close()


def deliver(server: FakeGraphServer, n: int, folder: str = "inbox", box: str = ME) -> str:
    return server.add_message(box, folder, make_message(n, to=box))


def delta_requests(server: FakeGraphServer, since: int = 0) -> list[str]:
    return [r for r in server.requests[since:] if "/messages/delta" in r]


# -- delta ----------------------------------------------------------------------------------


def test_second_round_fetches_only_the_changes(graph: Opened) -> None:
    server, b = graph.server, graph()
    ids = [deliver(server, n) for n in range(6)]
    rep = Replica()
    first = rep.sync(b, "Inbox")
    assert len(rep.headers) == 6 and not first[0].reset
    mark = len(server.requests)
    server.change_message(ME, ids[0], is_read=True, categories=["Blue"])
    new = deliver(server, 99)
    batches = rep.sync(b, "Inbox")
    rounds = delta_requests(server, mark)
    assert len(rounds) == 1 and "$deltatoken=" in rounds[0] and "select" not in rounds[0]
    assert [c.ref.uid for x in batches for c in x.changed] == [ids[0]]
    assert [h.ref.uid for x in batches for h in x.added] == [new]
    assert rep.headers[MailRef("Inbox", ids[0])].keywords == ("Blue",)
    assert rep.headers[MailRef("Inbox", ids[0])].is_read


def test_removed_rows_are_removed_refs(graph: Opened) -> None:
    server, b = graph.server, graph()
    ids = [deliver(server, n) for n in range(3)]
    rep = Replica()
    rep.sync(b, "Inbox")
    server.delete_message(ME, ids[0])
    moved = server.move_message(ME, ids[1], "archive")
    batches = rep.sync(b, "Inbox")
    assert {r.uid for x in batches for r in x.removed} == {ids[0], ids[1]}
    assert set(rep.headers) == {MailRef("Inbox", ids[2])}
    archive = Replica()
    archive.sync(b, "Archive")
    assert set(archive.headers) == {MailRef("Archive", moved)}


def test_expired_delta_link_starts_over_and_keeps_tracked_state(
    graph: Opened, tmp_path: Path
) -> None:
    server, b = graph.server, graph()
    ids = [deliver(server, n) for n in range(4)]
    store = Store.open(tmp_path / "s.db")
    try:
        assert sync_folder(store, b, "Inbox") == 4
        row = store.message_by_ref(MailRef("Inbox", ids[1]))
        assert row is not None
        store.tracking.set_state(row.header.message_id, TrackState.TRACKED, activity_id=ACTIVITY)
        assert server.expire_delta_links(ME) >= 1
        deliver(server, 50)
        seen: list[bool] = []
        sync_folder(store, b, "Inbox", on_batch=lambda x: seen.append(x.reset))
        assert seen[0] is True and store.message_count("Inbox") == 5
        again = store.message_by_ref(MailRef("Inbox", ids[1]))
        assert again is not None and again.track_state is TrackState.TRACKED
        assert again.activity_id == ACTIVITY
        assert any("-> 410" in r for r in server.requests)
    finally:
        store.close()


def test_pages_follow_maxpagesize(graph: Opened) -> None:
    server, b = graph.server, graph()
    for n in range(7):
        deliver(server, n)
    batches = list(b.sync("Inbox", None, batch_size=3))
    assert [len(x.added) for x in batches] == [3, 3, 1]
    pages = delta_requests(server)
    assert len(pages) == 3 and sum("$skiptoken=" in p for p in pages) == 2


def test_state_of_another_folder_or_server_starts_over(graph: Opened) -> None:
    server, b = graph.server, graph()
    deliver(server, 1)
    state = list(b.sync("Inbox", None))[-1].state
    other = list(b.sync("Archive", state))
    assert other[0].reset and not any(x.added for x in other)
    foreign = list(b.sync("Inbox", '{"v": "graph1", "link": "https://evil.example/", "known": ""}'))
    assert foreign[0].reset and len(foreign[0].added) == 1
    assert not any("evil" in r for r in server.requests)


def test_message_without_message_id_gets_a_stable_synthetic_one(graph: Opened) -> None:
    server, b = graph.server, graph()
    raw = make_message(3).replace(b"Message-ID: <msg-3@fabrikam.example>\r\n", b"")
    server.add_message(ME, "inbox", raw)
    one, two = Replica(), Replica()
    one.sync(b, "Inbox")
    two.sync(graph(), "Inbox")
    (h,) = one.headers.values()
    assert is_synthetic(h.message_id) and h.parse_errors
    assert [x.message_id for x in two.headers.values()] == [h.message_id]


# -- folders --------------------------------------------------------------------------------


def test_renamed_and_moved_folders_are_followed(graph: Opened) -> None:
    server, b = graph.server, graph()
    b.create_folder("Inbox/Projects/Fabrikam")
    box = server.mailbox(ME)
    projects = server.folder(ME, "Inbox/Projects")
    projects.name = "Customers"
    fabrikam = server.folder(ME, "Inbox/Customers/Fabrikam")
    fabrikam.parent_id = box.folder("archive").id
    paths = {f.path: f for f in b.folders()}
    assert "Inbox/Customers" in paths and "Archive/Fabrikam" in paths
    assert "Inbox/Projects" not in paths and paths["Junk"].name == "Junk Email"
    ref = b.append("Archive/Fabrikam", make_message(1))
    assert server.message(ME, ref.uid).folder_id == fabrikam.id


def test_a_new_top_level_folder_and_one_below_it(graph: Opened) -> None:
    b = graph()
    made = b.create_folder("Clients/Contoso")
    assert made.path == "Clients/Contoso"
    assert {"Clients", "Clients/Contoso"} <= {f.path for f in b.folders()}


# -- tracked marker -------------------------------------------------------------------------


def test_tracked_marker_is_a_category_and_an_extended_property(graph: Opened) -> None:
    server, b = graph.server, graph()
    mid = server.add_message(ME, "inbox", make_message(1), categories=["Red"])
    ref = MailRef("Inbox", mid)
    b.set_tracked(ref, ACTIVITY)
    m = server.message(ME, mid)
    assert m.categories == ["Red", TRACKED_CATEGORY_365]
    assert m.properties[ACTIVITY_PROPERTY.lower()] == (ACTIVITY_PROPERTY, ACTIVITY)
    rep = Replica()
    rep.sync(b, "Inbox")
    assert rep.headers[ref].tracked_marker == ACTIVITY
    b.set_tracked(ref, None)
    assert server.message(ME, mid).categories == ["Red"]
    assert server.message(ME, mid).properties[ACTIVITY_PROPERTY.lower()][1] == ""
    rep.sync(b, "Inbox")
    assert rep.headers[ref].tracked_marker is None


def test_bulk_marking_goes_in_batches_of_twenty(graph: Opened) -> None:
    server, b = graph.server, graph()
    refs = [MailRef("Inbox", deliver(server, n)) for n in range(25)]
    gone = refs.pop()
    server.delete_message(ME, gone.uid)
    mark = len(server.requests)
    failed = b.set_tracked_many([(r, ACTIVITY) for r in [*refs, gone]])
    assert set(failed) == {gone} and isinstance(failed[gone], MailNotFound)
    sent = server.requests[mark:]
    assert sum(r.startswith("POST /v1.0/$batch") for r in sent) == 4  # 20 + 5 reads, writes
    assert not [r for r in sent if "(batch)" not in r and "$batch" not in r]
    assert sum("PATCH" in r for r in sent) == 24
    for ref in refs:
        assert TRACKED_CATEGORY_365 in server.message(ME, ref.uid).categories


# -- limits and errors ----------------------------------------------------------------------


def test_429_waits_as_long_as_retry_after_says(graph: Opened) -> None:
    server, b = graph.server, graph()
    ref = MailRef("Inbox", deliver(server, 1))
    server.inject(429, retry_after=7, path_contains="/$value", times=2)
    assert b"Message-ID: <msg-1@" in b.fetch(ref)
    assert graph.sleeps == [7.0, 7.0]
    assert [r.rsplit(" ", 1)[-1] for r in server.requests if "/$value" in r] == ["429"] * 2 + [
        "200"
    ]
    server.inject(429, retry_after=int(MAX_WAIT) + 1, path_contains="/$value")
    with pytest.raises(MailUnavailable):
        b.fetch(ref)
    server.inject(503, path_contains="/$value")
    with pytest.raises(MailUnavailable):
        b.fetch(ref)


class CountingSlots:
    """The mailbox's semaphore, counting who asked for a slot and who got one."""

    def __init__(self, real: threading.BoundedSemaphore) -> None:
        self.real = real
        self.asked = self.got = 0
        self.lock = threading.Lock()

    def __enter__(self) -> None:
        with self.lock:
            self.asked += 1
        self.real.acquire()
        with self.lock:
            self.got += 1

    def __exit__(self, *exc: object) -> None:
        self.real.release()


def test_never_more_than_four_requests_in_flight(graph: Opened) -> None:
    server = graph.server
    refs = [MailRef("Inbox", deliver(server, n)) for n in range(8)]
    backends = [graph() for _ in refs]  # separate backends, one mailbox: one semaphore
    assert len({id(b.http._slots) for b in backends}) == 1
    slots = CountingSlots(backends[0].http._slots)
    for b in backends:
        b.http._slots = slots  # type: ignore[assignment]
    gate = server.hold("/$value")
    results: dict[int, bytes | BaseException] = {}

    def fetch(i: int) -> None:
        try:
            results[i] = backends[i].fetch(refs[i])
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    gate.wait_for(4)
    deadline = time.monotonic() + 30  # a hang-guard: the condition holds at once when right
    while time.monotonic() < deadline and not any(r.endswith("429") for r in server.requests):
        if slots.asked == 8 and slots.got == 4:
            break
        time.sleep(0.01)
    assert (slots.asked, slots.got, server.in_flight(ME)) == (8, 4, 4)
    gate.release()
    for t in threads:
        t.join(60)
    assert all(isinstance(results[i], bytes) for i in range(8)), results
    fetched = [r for r in server.requests if "/$value" in r]
    assert len(fetched) == 8 and all(r.endswith("-> 200") for r in fetched)  # never a 429


def test_shared_mailbox_goes_through_users(graph: Opened) -> None:
    server = graph.server
    server.grant(SHARED, ME)
    mid = deliver(server, 1, box=SHARED)
    b = graph(f"graph:?mailbox={SHARED}")
    rep = Replica()
    rep.sync(b, "Inbox")
    b.set_read(MailRef("Inbox", mid), True)
    b.set_tracked(MailRef("Inbox", mid), ACTIVITY)
    assert server.message(SHARED, mid).is_read
    assert TRACKED_CATEGORY_365 in server.message(SHARED, mid).categories
    paths = [r.split(" ")[1] for r in server.requests if "$batch" not in r]
    assert paths and all(p.startswith(f"/v1.0/users/{SHARED}/") for p in paths)


def test_a_renewed_token_is_picked_up(graph: Opened) -> None:
    server, tokens = graph.server, graph.tokens
    deliver(server, 1)
    expired, fresh = tokens.graph(ME, lifetime=-600), tokens.graph(ME)
    current = [expired]
    b = graph(token=lambda: current[0])
    with pytest.raises(MailAuthError):
        b.folders()
    current[0] = fresh  # MSAL renewed it: the same backend uses it at once
    assert b.folder("inbox").path == "Inbox"
    given = iter([expired, fresh])
    renewing = graph(token=lambda: next(given, fresh))  # a 401, then the source has a new one
    assert len(list(renewing.sync("Inbox", None))[0].added) == 1


def test_refused_and_unreachable(graph: Opened, graph_authority: GraphTokens) -> None:
    server = graph.server
    b = graph(f"graph:?mailbox={SHARED}")  # no grant
    server.add_mailbox(SHARED)
    with pytest.raises(MailAuthError):
        b.folders()
    with pytest.raises(MailAuthError):
        graph(token=lambda: "").folders()
    dead = GraphBackend("https://127.0.0.1:9/v1.0", token=lambda: "x", timeout=5)
    with pytest.raises(MailUnavailable):
        dead.folders()
    dead.close()


def test_graph_urls() -> None:
    def token() -> str:
        return "t"

    b = open_backend("graph:", token=token)
    assert b.http.url("/x") == "https://graph.microsoft.com/v1.0/me/x"  # type: ignore[attr-defined]
    b.close()
    b = open_backend(f"graph://graph.microsoft.us/v1.0?mailbox={SHARED}", token=token)
    assert b.http.url("/x") == f"https://graph.microsoft.us/v1.0/users/{SHARED}/x"  # type: ignore[attr-defined]
    b.close()
    for bad in ("graph:?mailbox=nobody", "graph:?auth=basic", "graph:alex", "graph://u:p@h/v1.0"):
        with pytest.raises(MailProtocolError):
            open_backend(bad, token=token)
    with pytest.raises(MailAuthError):
        open_backend("graph:")
