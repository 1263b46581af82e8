"""Runs the sync cycle on a worker: on "Sync now", on the interval timer, on reconnect.

Each run is ``workspace.sync_cycle`` (the full cycle of issue 6). Progress callbacks arrive on
the worker thread and are relayed to the GUI thread through a queued signal, at most every
50 ms so that a sync of 100,000 records cannot flood the event loop.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from desktop.workers import Workers

PROGRESS_EVERY_S = 0.05


class _ProgressRelay(QObject):
    progress = Signal(str, int, object)


class SyncController(QObject):
    """``started``; ``progress(step, done, total)``; ``finished(result)`` with a
    ``SyncReport``; ``failed(exc)``."""

    started = Signal()
    progress = Signal(str, int, object)
    finished = Signal(object)
    failed = Signal(object)

    def __init__(self, workers: Workers, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.workspace: Any = None
        self._running = False
        self._cancel: threading.Event | None = None
        self._relay = _ProgressRelay(self)
        self._relay.progress.connect(self.progress)
        self.timer = QTimer(self)
        self.timer.setObjectName("syncIntervalTimer")
        self.timer.timeout.connect(self.sync_now)

    @property
    def running(self) -> bool:
        return self._running

    def set_workspace(self, workspace: Any) -> None:
        self.workspace = workspace

    def set_interval(self, minutes: float) -> None:
        """Sync every ``minutes`` (0 turns the interval off)."""
        if minutes and minutes > 0:
            self.timer.start(int(minutes * 60_000))
        else:
            self.timer.stop()

    def sync_now(self) -> bool:
        """Start a cycle unless one runs; returns whether one started."""
        ws = self.workspace
        if ws is None or self._running:
            return False
        self._running = True
        cancel = threading.Event()
        self._cancel = cancel
        relay = self._relay
        last = [0.0]

        def report(step: str, done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                relay.progress.emit(step, done, total)

        def op() -> Any:
            return ws.sync_cycle(progress=lambda p: report(p.step, p.done, p.total), cancel=cancel)

        self.started.emit()
        self.workers.run(op, self._done, self._fail, serial=True)
        return True

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _done(self, result: Any) -> None:
        self._running = False
        self.finished.emit(result)

    def _fail(self, exc: BaseException) -> None:
        self._running = False
        self.failed.emit(exc)
