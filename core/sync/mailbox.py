"""Apply a mailbox's sync batches to the local store — the one place that knows how.

The mailbox side of a first sync (network reads and header parsing) and the store side
(SQLite writes) used to take turns. :func:`sync_folder` runs the backend's batch iterator on a
producer thread, a couple of batches ahead, while this thread writes: socket reads and SQLite
both release the GIL, so the two overlap. Only the producer touches the backend while the
iteration runs; the caller gets the backend back when ``sync_folder`` returns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from core.mail.base import MailBackend, SyncBatch

if TYPE_CHECKING:
    from core.store import Store

_DONE = object()


def apply_batch(store: Store, folder: str, batch: SyncBatch) -> int:
    """Write one batch in one transaction, in the order :class:`SyncBatch` documents, and keep
    its state as the folder's resume point. Returns how many headers were added."""
    with store.transaction():
        if batch.reset:
            store.clear_folder(folder)
        if batch.removed:
            store.remove_messages(batch.removed)
        if batch.changed:
            store.apply_flag_changes(batch.changed)
        added = store.upsert_headers(batch.added) if batch.added else 0
        store.set_folder_sync_state(folder, batch.state)
    return added


def prefetched(batches: Iterator[SyncBatch], depth: int = 2) -> Iterator[SyncBatch]:
    """Iterate ``batches`` on a producer thread, at most ``depth`` batches ahead. An error in
    the producer is raised here; leaving the loop early stops the producer."""
    box: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        """Hand ``item`` over unless the consumer has left; False when it has."""
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        item: object = _DONE
        try:
            for batch in batches:
                if not put(batch):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            item = exc
        finally:
            close = getattr(batches, "close", None)
            if close is not None and stop.is_set():
                close()
        put(item)

    producer = threading.Thread(target=produce, name="mail-sync-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join()


def sync_folder(
    store: Store,
    backend: MailBackend,
    folder: str,
    *,
    batch_size: int = 500,
    on_batch: Callable[[SyncBatch], None] | None = None,
) -> int:
    """Bring one folder of the store up to date with the mailbox; returns headers added.

    ``on_batch`` sees each batch after it is stored (the sync cycle collects new mail there,
    and raises to cancel)."""
    added = 0
    state = store.folder_sync_state(folder)
    for batch in prefetched(backend.sync(folder, state, batch_size)):
        added += apply_batch(store, folder, batch)
        if on_batch is not None:
            on_batch(batch)
    return added
