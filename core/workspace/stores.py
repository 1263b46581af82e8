"""The workspace's connections to its local store: one :class:`~core.store.Store` per thread on
the same file (SQLite WAL lets readers and one writer coexist), and the outbox over them."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

from core.outbox.queue import Outbox, OutboxStatus
from core.store import Store

log = logging.getLogger(__name__)


class StorePool:
    """Per-thread store connections on ``path``; the outbox's status is shared by all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._stores: list[Store] = []
        self._lock = threading.Lock()
        self._status = OutboxStatus()

    def store(self) -> Store:
        """This thread's connection to the local store."""
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = open_store(self.path)
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return store

    def outbox(self) -> Outbox:
        return Outbox(self.store(), status=self._status)

    def close(self) -> None:
        with self._lock:
            for store in self._stores:
                try:
                    store.close()
                except Exception:  # a connection owned by a finished thread
                    log.debug("closing store failed", exc_info=True)
            self._stores.clear()


def open_store(path: Path, attempts: int = 5) -> Store:
    """Open a connection; SQLite can answer "database is locked" at once (without waiting
    for its busy timeout) while another connection changes the WAL, so try a few times."""
    for attempt in range(attempts):
        try:
            return Store.open(path)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt + 1 == attempts:
                raise
            log.info("store busy at open (attempt %d)", attempt + 1)
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")
