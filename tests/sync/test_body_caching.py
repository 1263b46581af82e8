"""Caching a folder's bodies in bulk (``core.sync.mailbox.cache_bodies``): over IMAP in a few
``UID FETCH`` round trips (Dovecot on loopback), elsewhere one message at a time."""

from __future__ import annotations

from pathlib import Path

from core.mail import open_backend
from core.mail.demo import create_demo_mailbox
from core.mail.imap import ImapBackend
from core.mail.maildir import MaildirBackend
from core.store import Store
from core.store.search import backlog_size, index_backlog
from core.sync.mailbox import cache_bodies, sync_folder


def _mime(n: int, size: int = 0) -> bytes:
    return (
        f"From: a{n}@test.example\r\nTo: me@test.example\r\nSubject: body {n}\r\n"
        f"Message-ID: <body-{n}@test.example>\r\n\r\nword{n} " + "x" * size + "\r\n"
    ).encode()


def test_imap_bodies_are_cached_in_batches_and_searchable(tmp_path: Path, dovecot) -> None:  # type: ignore[no-untyped-def]
    user = dovecot.new_user()
    sizes = [10, 200_000, 10, 10, 50_000, 10, 10]
    for n, size in enumerate(sizes):
        dovecot.deliver(user, _mime(n, size))
    backend = open_backend(dovecot.url(), user=user, password=dovecot.password)
    assert isinstance(backend, ImapBackend)
    store = Store.open(tmp_path / "s.db")
    try:
        assert sync_folder(store, backend, "Inbox") == len(sizes)
        # Small batches: several round trips, one of them a single large message.
        cached = cache_bodies(
            store, backend, "Inbox", search_text=True, batch_bytes=100_000, batch_size=3
        )
        assert cached == 7
        assert backlog_size(store) == 0
        assert store.bodies.missing("Inbox") == []
        for row in store.message_rows("Inbox", 0, 10):
            raw = store.bodies.get(row.id)
            assert raw is not None
            n = int(row.header.subject.split()[-1])
            assert raw.replace(b"\r\n", b"\n").endswith(
                _mime(n, sizes[n]).replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]
            )
        assert _matches(store, "word4") == 1
        # Nothing left to fetch: a second run caches nothing.
        assert cache_bodies(store, backend, "Inbox") == 0
    finally:
        backend.close()
        store.close()


def test_by_default_the_search_text_is_left_to_the_backlog(tmp_path: Path, dovecot) -> None:  # type: ignore[no-untyped-def]
    user = dovecot.new_user()
    for n in range(5):
        dovecot.deliver(user, _mime(n))
    backend = open_backend(dovecot.url(), user=user, password=dovecot.password)
    store = Store.open(tmp_path / "s.db")
    try:
        sync_folder(store, backend, "Inbox")
        assert cache_bodies(store, backend, "Inbox") == 5
        assert backlog_size(store) == 5
        assert not _matches(store, "word3")
        while index_backlog(store):
            pass
        assert backlog_size(store) == 0
        assert _matches(store, "word3") == 1
    finally:
        backend.close()
        store.close()


def test_only_what_fits_under_the_bound_is_fetched(tmp_path: Path, dovecot) -> None:  # type: ignore[no-untyped-def]
    user = dovecot.new_user()
    for n in range(6):
        dovecot.deliver(user, _mime(n, 1000))
    backend = open_backend(dovecot.url(), user=user, password=dovecot.password)
    store = Store.open(tmp_path / "s.db", body_cache_bytes=3500)
    try:
        sync_folder(store, backend, "Inbox")
        cached = cache_bodies(store, backend, "Inbox")
        assert 1 <= cached < 6
        assert store.bodies.size() <= 3500
    finally:
        backend.close()
        store.close()


def _matches(store: Store, word: str) -> int:
    return int(
        store.conn.execute(
            "SELECT count(*) FROM message_search WHERE message_search MATCH ?", (word,)
        ).fetchone()[0]
    )


def test_imap_messages_deleted_meanwhile_are_skipped(tmp_path: Path, dovecot) -> None:  # type: ignore[no-untyped-def]
    user = dovecot.new_user()
    for n in range(4):
        dovecot.deliver(user, _mime(n))
    backend = open_backend(dovecot.url(), user=user, password=dovecot.password)
    assert isinstance(backend, ImapBackend)
    store = Store.open(tmp_path / "s.db")
    try:
        sync_folder(store, backend, "Inbox")
        gone = store.message_rows("Inbox", 0, 10)[0].header.ref
        other = open_backend(dovecot.url(), user=user, password=dovecot.password)
        try:
            other.delete(gone)
        finally:
            other.close()
        assert cache_bodies(store, backend, "Inbox") == 3
        assert [uid for _, uid, _ in store.bodies.missing("Inbox")] == [gone.uid]
    finally:
        backend.close()
        store.close()


def test_backends_without_bulk_fetch_cache_one_by_one(tmp_path: Path) -> None:
    create_demo_mailbox(tmp_path / "mail", messages=12, seed=3)
    backend = MaildirBackend(tmp_path / "mail")
    store = Store.open(tmp_path / "s.db")
    try:
        added = sync_folder(store, backend, "Inbox")
        assert added > 0
        assert cache_bodies(store, backend, "Inbox") == added - _too_big(store, "Inbox")
        for row_id, uid, _ in store.bodies.missing("Inbox"):
            assert store.message(row_id) is not None, uid
    finally:
        store.close()


def _too_big(store: Store, folder: str) -> int:
    return sum(1 for _, _, size in store.bodies.missing(folder) if size > store.body_cache_bytes)
