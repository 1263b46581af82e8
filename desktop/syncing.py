"""Runs the sync cycle on a worker: on "Sync now", on the interval timer, on reconnect.

Each run is ``workspace.sync_cycle`` (the full cycle of issue 6), an :class:`~desktop.ops.Op`
whose change notice says that folders and messages may have changed. Progress callbacks arrive
on the worker thread and are relayed to the GUI thread through a queued signal, at most every
50 ms so that a sync of 100,000 records cannot flood the event loop.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from core.domain.changes import Changes
from core.sync.report import SyncProgress, SyncReport
from desktop.ops import ChangeBus, Op
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.workspace.facade import Workspace

PROGRESS_EVERY_S = 0.05


class _ProgressRelay(QObject):
    progress = Signal(str, int, object)


def sync_changes(report: SyncReport) -> Changes:
    """What a cycle may have changed: the folder list and any message (the report's row ids
    say which messages it knows changed), with the cycle's errors."""
    return Changes(
        folders=True,
        messages=True,
        row_ids=report.changes.row_ids,
        errors=report.errors or report.changes.errors,
    )


class SyncController(QObject):
    """``started``; ``progress(step, done, total)``; ``finished(SyncReport)`` (after the
    change notice went out on the bus); ``failed(exc)``."""

    started = Signal()
    progress = Signal(str, int, object)
    finished = Signal(object)
    failed = Signal(object)

    def __init__(self, workers: Workers, bus: ChangeBus, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.bus = bus
        self.workspace: Workspace | None = None
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

    def set_workspace(self, workspace: Workspace | None) -> None:
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

        def report(p: SyncProgress) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                relay.progress.emit(p.step, p.done, p.total)

        def cycle() -> SyncReport:
            return ws.sync_cycle(progress=report, cancel=cancel)

        self.started.emit()
        Op(cycle, self.bus, changes=sync_changes).success(self._done).failure(
            self._fail
        ).run_in_background(self.workers)
        return True

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _done(self, report: SyncReport) -> None:
        self._running = False
        self.finished.emit(report)

    def _fail(self, exc: BaseException) -> None:
        self._running = False
        self.failed.emit(exc)
