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

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from core.mail.base import MailBackend, SyncBatch
from core.prefetch import prefetched_groups

if TYPE_CHECKING:
    from core.store import HeaderRows, Store


def apply_batch(store: Store, folder: str, batch: SyncBatch, rows: HeaderRows | None = None) -> int:
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
    for group in prefetched_groups(
        prepared(),
        2,
        size=lambda item: len(item[0].added),
        max_size=max_group,
        name="mail-sync-prefetch",
    ):
        with store.transaction():
            for batch, rows in group:
                added += apply_batch(store, folder, batch, rows)
        if on_batch is not None:
            for batch, _ in group:
                on_batch(batch)
    return added
