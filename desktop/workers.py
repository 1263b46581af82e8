"""Run core calls off the GUI thread and deliver their results back on it.

One helper for every background job (after anki's ``QueryOp`` and picard's ``run_task``):
``op`` runs on a pool thread and must not touch widgets; ``success(result)`` or
``failure(exc)`` run on the GUI thread, delivered through a queued signal. Shutdown waits
for both pools to drain (:meth:`Workers.wait`).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Relay(QObject):
    """Lives on the GUI thread; a QRunnable is not a QObject, so its signals live here."""

    finished = Signal(object, object)  # (result, exception)


class _Job(QRunnable):
    def __init__(self, op: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._op = op
        self._relay = relay
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self._op()
        except BaseException as exc:  # everything goes back to the GUI, never lost in a thread
            log.warning("background job failed: %s", "".join(traceback.format_exception(exc)))
            self._relay.finished.emit(None, exc)
        else:
            self._relay.finished.emit(result, None)


class Workers(QObject):
    """The application's job runner: a pool for reads and network calls, and a one-thread
    queue for writes to the store so that writers never race each other."""

    def __init__(self, parent: QObject | None = None, *, max_threads: int = 4) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._serial = QThreadPool(self)
        self._serial.setMaxThreadCount(1)
        self._relays: set[_Relay] = set()

    def run(
        self,
        op: Callable[[], T],
        success: Callable[[T], None] | None = None,
        failure: Callable[[BaseException], None] | None = None,
        *,
        serial: bool = False,
        owner: QObject | None = None,
    ) -> None:
        """Start ``op`` in the background. ``serial=True`` queues it behind other writers.
        With ``owner`` (a window or dialog), the callbacks are dropped when the owner was
        deleted meanwhile (a dialog closed before its search answered)."""
        relay = _Relay()
        self._relays.add(relay)  # keep the Python object alive until the job reports

        @Slot(object, object)
        def done(result: Any, exc: BaseException | None) -> None:
            self._relays.discard(relay)
            if owner is not None and not shiboken6.isValid(owner):
                return
            if exc is not None:
                if failure is not None:
                    failure(exc)
                else:
                    log.error("unhandled background failure: %r", exc)
            elif success is not None:
                success(result)

        relay.finished.connect(done)
        (self._serial if serial else self._pool).start(_Job(op, relay))

    def wait(self, msecs: int = 30_000) -> bool:
        """Wait for every job to finish (used at shutdown and by tests)."""
        ok = self._pool.waitForDone(msecs)
        return self._serial.waitForDone(msecs) and ok
