"""Apply a mailbox's sync batches to the local store — the one place that knows how.

The mailbox side of a first sync (network reads, header parsing, and turning headers into
store rows) and the store side (SQLite writes) used to take turns. :func:`sync_folder` runs
the first on a producer thread, a couple of batches ahead, while this thread only writes.
SQLite keeps the GIL released while it writes a statement, so the two overlap; and since
the writing thread needs the GIL hardly at all, neither waits out the other's switch
interval. Only the producer touches the backend while the iteration runs; the caller gets
the backend back when ``sync_folder`` returns. :func:`cache_bodies` downloads a folder's
bodies into the body cache the same way (a few ``UID FETCH`` round trips over IMAP).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from core.domain.model import MailRef
from core.mail.base import MailBackend, MailNotFound, SyncBatch
from core.prefetch import prefetched_groups
from core.store.cache import prepare_bodies

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


def cache_bodies(
    store: Store,
    backend: MailBackend,
    folder: str,
    *,
    search_text: bool = False,
    batch_bytes: int = 4 << 20,
    batch_size: int = 200,
) -> int:
    """Download the bodies of the folder's messages not cached yet into the body cache (for
    reading offline), as many as the cache's bound leaves room for; returns how many were
    cached. As in :func:`sync_folder`, a producer thread fetches a batch while this thread
    writes the one before. Extracting the search text costs several times the download
    (MIME parsing in Python), so by default the bodies go into ``search_backlog`` for
    ``core.store.search.index_backlog`` to index in the background; ``search_text=True``
    indexes them here. A batch holds up to ``batch_size`` messages and ``batch_bytes`` of
    mail (one message at least)."""
    bound = store.body_cache_bytes
    wanted = _fitting(store.bodies.missing(folder), bound - store.bodies.size())

    def prepared() -> Iterator[list[tuple[int, bytes, str | None]]]:
        for batch in _body_batches(wanted, batch_bytes, batch_size):
            rows = {uid: row for row, uid, _ in batch}
            got = _fetch_many(backend, [MailRef(folder, uid) for _, uid, _ in batch], batch)
            bodies = ((rows[ref.uid], raw) for ref, raw in got)
            yield prepare_bodies(bodies, bound, text=search_text)

    cached = 0
    try:
        for group in prefetched_groups(
            prepared(), 2, size=len, max_size=4 * batch_size, name="body-cache-prefetch"
        ):
            with store.transaction():
                for items in group:
                    cached += store.bodies.put_prepared(items, evict=False)
    finally:
        store.bodies.evict(bound)  # sizes on the server may differ from those listed
    return cached


def _fitting(wanted: list[tuple[int, str, int]], room: int) -> list[tuple[int, str, int]]:
    """The first of ``wanted`` (row, uid, size) whose sizes add up to at most ``room``: more
    would only push out what was just fetched."""
    out = []
    for item in wanted:
        room -= item[2]
        if room < 0:
            break
        out.append(item)
    return out


def _body_batches(
    wanted: list[tuple[int, str, int]], max_bytes: int, max_count: int
) -> Iterator[list[tuple[int, str, int]]]:
    batch: list[tuple[int, str, int]] = []
    size = 0
    for item in wanted:
        if batch and (size + item[2] > max_bytes or len(batch) >= max_count):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item[2]
    if batch:
        yield batch


def _fetch_many(
    backend: MailBackend, refs: Sequence[MailRef], batch: list[tuple[int, str, int]]
) -> list[tuple[MailRef, bytes]]:
    """Many bodies in one round trip where the backend can (IMAP), else one by one."""
    many = getattr(backend, "fetch_many", None)
    if many is not None:
        got: list[tuple[MailRef, bytes]] = many(refs, sum(m[2] for m in batch))
        return got
    got = []
    for ref in refs:
        try:
            got.append((ref, backend.fetch(ref)))
        except MailNotFound:
            continue  # deleted meanwhile: the next sync removes its row
    return got
