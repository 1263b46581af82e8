"""Storing a mailbox's sync batches: order, resume points, prefetching, early exit, errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.domain.model import MailRef, MessageHeader
from core.mail.base import SyncBatch
from core.mail.demo import create_demo_mailbox
from core.mail.maildir import MaildirBackend
from core.prefetch import prefetched
from core.store import Store
from core.sync.mailbox import apply_batch, sync_folder


def header(uid: int) -> MessageHeader:
    return MessageHeader(MailRef("Inbox", str(uid)), f"<m{uid}@x.example>", subject=f"S {uid}")


def test_a_batch_is_applied_in_its_documented_order(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    apply_batch(store, "Inbox", SyncBatch("s1", added=(header(1), header(2))))
    # reset first, then the additions: the folder holds exactly what the batch lists
    added = apply_batch(store, "Inbox", SyncBatch("s2", added=(header(3),), reset=True))
    assert added == 1
    assert [r.header.ref.uid for r in store.message_rows("Inbox", 0, 10)] == ["3"]
    apply_batch(store, "Inbox", SyncBatch("s3", removed=(MailRef("Inbox", "3"),)))
    assert store.message_count("Inbox") == 0
    assert store.folder_sync_state("Inbox") == "s3"


def test_prefetched_keeps_order_and_runs_ahead_on_another_thread() -> None:
    threads: set[str] = set()

    def source() -> Iterator[SyncBatch]:
        for i in range(20):
            threads.add(threading.current_thread().name)
            yield SyncBatch(f"s{i}", added=(header(i),))

    got = [b.state for b in prefetched(source(), name="sync-test-prefetch")]
    assert got == [f"s{i}" for i in range(20)]
    assert threads == {"sync-test-prefetch"}


def test_an_error_in_the_mailbox_reaches_the_caller_after_the_good_batches() -> None:
    def source() -> Iterator[SyncBatch]:
        yield SyncBatch("s0")
        raise ConnectionResetError("server went away")

    seen = []
    with pytest.raises(ConnectionResetError, match="server went away"):
        for batch in prefetched(source()):
            seen.append(batch.state)
    assert seen == ["s0"]


def test_leaving_early_stops_and_closes_the_mailbox_iterator() -> None:
    produced = []
    closed = threading.Event()

    def source() -> Iterator[SyncBatch]:
        try:
            for i in range(10_000):
                produced.append(i)
                yield SyncBatch(f"s{i}")
        finally:
            closed.set()

    for batch in prefetched(source(), depth=2):
        if batch.state == "s3":
            break
    assert closed.is_set()
    assert len(produced) < 10  # it ran a few batches ahead, not to the end


def test_sync_folder_resumes_from_the_last_stored_batch(tmp_path: Path) -> None:
    create_demo_mailbox(tmp_path / "mb", messages=400)
    backend = MaildirBackend(tmp_path / "mb")
    store = Store.open(tmp_path / "s.db")
    total = len(list(backend.sync("Inbox", None)))  # batches in a full listing
    assert total >= 1

    class Stop(Exception):
        pass

    def stop_after_first(batch: SyncBatch) -> None:
        raise Stop

    with pytest.raises(Stop):
        sync_folder(
            store, backend, "Inbox", batch_size=20, on_batch=stop_after_first, max_group=20
        )  # one batch per write: the stop lands after the first
    first = store.message_count("Inbox")
    assert first == 20 and store.folder_sync_state("Inbox") is not None
    rest = sync_folder(store, backend, "Inbox", batch_size=20)
    listed = sum(len(b.added) for b in backend.sync("Inbox", None))
    assert store.message_count("Inbox") == listed == first + rest
    assert sync_folder(store, backend, "Inbox") == 0  # nothing new the second time
