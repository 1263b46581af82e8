"""The interval scheduler: a plain Python thread (no Qt) that runs a sync cycle every N
minutes, at once on demand (``trigger``), and sooner while offline, so that the cycle that
finds the CRM back (and replays the queue) comes within ``retry_s``, not a full interval."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from core.sync.report import SyncReport

log = logging.getLogger(__name__)


class SyncScheduler:
    def __init__(
        self,
        run: Callable[[], SyncReport],
        interval_s: float = 15 * 60,
        *,
        retry_s: float = 60.0,
        run_at_start: bool = True,
    ) -> None:
        self.run = run
        self.interval_s = interval_s
        self.retry_s = retry_s
        self.run_at_start = run_at_start
        self.last: SyncReport | None = None
        self.cycles = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cycle_done = threading.Condition()

    def start(self) -> None:
        if self._thread is not None:
            return
        if self.run_at_start:
            self._wake.set()
        self._thread = threading.Thread(target=self._loop, name="trackbox-sync", daemon=True)
        self._thread.start()

    def trigger(self) -> None:
        """Sync now (on demand, or on reconnect)."""
        self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def next_wait(self) -> float:
        if self.last is not None and not self.last.online:
            return min(self.interval_s, self.retry_s)
        return self.interval_s

    def wait_for_cycles(self, count: int, timeout: float | None = None) -> bool:
        """Block until ``count`` cycles have run in total (tests, the CLI)."""
        with self.cycle_done:
            return self.cycle_done.wait_for(lambda: self.cycles >= count, timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.next_wait())
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.last = self.run()
            except Exception:  # a bug in a cycle must not end the scheduler
                log.exception("sync cycle failed")
            with self.cycle_done:
                self.cycles += 1
                self.cycle_done.notify_all()
