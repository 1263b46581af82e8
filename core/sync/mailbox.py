"""Apply a mailbox's sync batches to the local store — the one place that knows how.

The mailbox side of a first sync (network reads, header parsing, and turning headers into
store rows) and the store side (SQLite writes) used to take turns. :func:`sync_folder` runs
the first on a producer thread, a couple of batches ahead, while this thread only writes.
SQLite keeps the GIL released while it writes a statement, so the two overlap; and since
the writing thread needs the GIL hardly at all, neither waits out the other's switch
interval. Only the producer touches the backend while the iteration runs; the caller gets
the backend back when ``sync_folder`` returns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

from core.mail.base import MailBackend, SyncBatch

if TYPE_CHECKING:
    from core.store import HeaderRows, Store

T = TypeVar("T")
_DONE = object()


def apply_batch(store: Store, folder: str, batch: SyncBatch,
                rows: HeaderRows | None = None) -> int:
    """Write one batch in one transaction, in the order :class:`SyncBatch` documents, and keep
    its state as the folder's resume point. ``rows`` are ``batch.added`` prepared by
    :meth:`Store.header_rows`, if the caller has them. Returns how many headers were added."""
    with store.transaction():
        if batch.reset:
            store.clear_folder(folder)
        if batch.removed:
            store.remove_messages(batch.removed)
        if batch.changed:
            store.apply_flag_changes(batch.changed)
        added = 0
        if batch.added:
            added = store.upsert_headers(rows if rows is not None else batch.added)
        store.set_folder_sync_state(folder, batch.state)
    return added


class _Prefetch(Generic[T]):
    """Runs an iterator on a producer thread, at most ``depth`` items ahead."""

    def __init__(self, items: Iterator[T], depth: int) -> None:
        self.items = items
        self.box: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._produce, name="mail-sync-prefetch",
                                       daemon=True)

    def _put(self, item: object) -> bool:
        """Hand ``item`` over unless the consumer has left; False when it has."""
        while not self.stop.is_set():
            try:
                self.box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        last: object = _DONE
        try:
            for item in self.items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            last = exc
        finally:
            close = getattr(self.items, "close", None)
            if close is not None and self.stop.is_set():
                close()
        self._put(last)

    def groups(self, size: Callable[[T], int], max_size: int) -> Iterator[list[T]]:
        """Every item the producer has ready, up to ``max_size`` by ``size``, at least one;
        an error in the producer is raised here, after the items before it."""
        self.thread.start()
        try:
            pending: object = None  # taken from the box, not handed over yet
            while True:
                item = self.box.get() if pending is None else pending
                pending = None
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                group: list[T] = [item]  # type: ignore[list-item]
                total = size(group[0])
                while total < max_size:
                    try:
                        more = self.box.get_nowait()
                    except queue.Empty:
                        break
                    if more is _DONE or isinstance(more, BaseException):
                        pending = more
                        break
                    group.append(more)  # type: ignore[arg-type]
                    total += size(more)  # type: ignore[arg-type]
                yield group
        finally:
            self.stop.set()
            self.thread.join()


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` on a producer thread, at most ``depth`` items ahead. An error in the
    producer is raised here; leaving the loop early stops the producer."""
    for group in _Prefetch(items, depth).groups(lambda _: 1, 1):
        yield from group


def sync_folder(
    store: Store,
    backend: MailBackend,
    folder: str,
    *,
    batch_size: int = 500,
    on_batch: Callable[[SyncBatch], None] | None = None,
    max_group: int = 2000,
) -> int:
    """Bring one folder of the store up to date with the mailbox; returns headers added.

    Batches the producer has ready when the store gets to them are written in one
    transaction (up to ``max_group`` headers): one commit instead of several when the
    store falls behind. ``on_batch`` sees each batch after it is stored (the sync cycle
    collects new mail there, and raises to cancel)."""

    def prepared() -> Iterator[tuple[SyncBatch, HeaderRows]]:
        for batch in backend.sync(folder, state, batch_size):
            yield batch, store.header_rows(batch.added)

    added = 0
    state = store.folder_sync_state(folder)
    for group in _Prefetch(prepared(), 2).groups(lambda item: len(item[0].added), max_group):
        with store.transaction():
            for batch, rows in group:
                added += apply_batch(store, folder, batch, rows)
        if on_batch is not None:
            for batch, _ in group:
                on_batch(batch)
    return added
