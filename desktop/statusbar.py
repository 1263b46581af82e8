"""The status bar: online/offline, last successful sync, queued operations, sync progress,
and the CRM asking Trackbox to slow down.

``StatusPanel`` only shows what it is told (``MainWindow`` feeds it from the workspace's
``SyncReport`` and ``online``); clicking the queue count opens the queue view.
``QueueWatch`` keeps the queue count current: it reads the outbox queue after every change
notice and hands the list on to whoever shows more of it (the queue view, "Pending Send").
``ThrottleWatch`` (made by ``QueueWatch``) shows the CRM client's throttle: a timer reads its
in-memory state (``core.crm.throttle.Throttle.state``) — never the network, never waiting at
the gate — so the GUI thread cannot block on a throttled CRM.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from core.crm.throttle import ThrottleState
from core.domain.changes import Changes
from core.sync.report import QueuedOperation
from desktop.errors import describe
from desktop.host import WindowHost
from desktop.icons import named_icon
from desktop.ops import ChangeBus, QueryOp
from desktop.workers import Workers


class StatusPanel(QWidget):
    """The permanent widgets of the main window's status bar."""

    queue_clicked = Signal()

    def __init__(self, bar: QStatusBar) -> None:
        super().__init__(bar)
        self.progress = QProgressBar()
        self.progress.setObjectName("statusProgress")
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        self.queue = QPushButton("")
        self.queue.setObjectName("statusQueue")
        self.queue.setFlat(True)
        self.queue.setCursor(Qt.CursorShape.PointingHandCursor)
        self.queue.setToolTip("Operations waiting for the CRM — click to see, retry or discard")
        self.queue.clicked.connect(self.queue_clicked)
        self.queue.setVisible(False)
        self.last_sync = QLabel("")
        self.last_sync.setObjectName("statusLastSync")
        self._last_ok: datetime | None = None
        self.connection = QLabel("Starting…")
        self.connection.setObjectName("statusConnection")
        self.throttle = QLabel("")
        self.throttle.setObjectName("statusThrottle")
        self.throttle.setStyleSheet("color: #a86a00;")
        self.throttle.setVisible(False)
        for w in (self.throttle, self.progress, self.queue, self.last_sync, self.connection):
            bar.addPermanentWidget(w)

    def set_connection(self, online: bool, where: str = "", detail: str = "") -> None:
        if online:
            text = "● Online" + (f" · {where}" if where else "")
            self.connection.setStyleSheet("color: #1f7a3f;")
        else:
            text = "○ Offline" + (f" · {detail}" if detail else "")
            self.connection.setStyleSheet("color: #a86a00;")
        self.connection.setText(text)
        self.connection.setToolTip(detail or where)

    def set_throttle(self, state: ThrottleState | None) -> None:
        """While the CRM's Retry-After runs: say so and when Trackbox resumes; else nothing."""
        if state is None or not state.throttled or state.until is None:
            self.throttle.setVisible(False)
            self.throttle.setText("")
            return
        resume = state.until.astimezone().strftime("%H:%M:%S")
        self.throttle.setText(throttle_message(state))
        wait = f"{state.last_retry_after:.0f} s" if state.last_retry_after is not None else "—"
        self.throttle.setToolTip(
            "The CRM's service protection limits were reached: Trackbox sends nothing new "
            f"until {resume}, then continues where it stopped; nothing is lost.\n"
            f"Asked to wait {state.throttle_count} time(s); last wait {wait}."
        )
        self.throttle.setVisible(True)

    def set_last_sync(self, when: datetime | None, ok: bool = True) -> None:
        """The last *successful* sync; an incomplete one is added beside it, it never
        replaces it."""
        if when is None:
            self.last_sync.setText("Not synchronised yet")
            return
        local = when.astimezone() if when.tzinfo else when
        if ok:
            self._last_ok = local
            self.last_sync.setText(f"Last sync {local.strftime('%H:%M')}")
            self.last_sync.setToolTip(f"Last successful sync: {local:%Y-%m-%d %H:%M:%S}")
            return
        done = self._last_ok
        head = f"Last sync {done.strftime('%H:%M')} · " if done else ""
        self.last_sync.setText(f"{head}attempt at {local.strftime('%H:%M')} incomplete")
        self.last_sync.setToolTip(
            "The last cycle could not finish every step (offline or "
            "an error); see the status message."
        )

    def set_queue(self, count: int, parked: int = 0) -> None:
        self.queue.setVisible(count > 0)
        text = f"{count} queued"
        if parked:
            text += f" ({parked} need attention)"
            self.queue.setIcon(named_icon("needs_attention"))
        else:
            self.queue.setIcon(named_icon("pending"))
        self.queue.setText(text)

    def set_progress(self, step: str, done: int, total: int | None) -> None:
        self.progress.setVisible(True)
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
            self.progress.setFormat(f"{step} %v/%m")
        else:
            self.progress.setRange(0, 0)  # busy indicator
            self.progress.setFormat(step)
        self.progress.setToolTip(step)

    def clear_progress(self) -> None:
        self.progress.setVisible(False)


def throttle_message(state: ThrottleState) -> str:
    """The status bar's words for a throttled CRM (local time)."""
    if state.until is None:
        return "The CRM asked to slow down"
    resume = state.until.astimezone().strftime("%H:%M:%S")
    return f"The CRM asked to slow down; work resumes at {resume}"


class ThrottleWatch(QObject):
    """Shows the workspace's CRM throttle in the status bar: every ``interval_ms`` a timer on
    the GUI thread reads the throttle's state from memory (no network, no waiting at the
    gate). ``changed(ThrottleState)`` when what it shows changes."""

    changed = Signal(object)

    def __init__(
        self,
        host: WindowHost,
        panel: StatusPanel,
        parent: QObject | None = None,
        *,
        interval_ms: int = 500,
    ) -> None:
        super().__init__(parent)
        self._host = host
        self._panel = panel
        self._shown: ThrottleState | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    def current(self) -> ThrottleState | None:
        ws = self._host.workspace
        return None if ws is None else ws.crm.throttle.state()

    def refresh(self) -> None:
        state = self.current()
        shown = state if state is not None and state.throttled else None
        if shown != self._shown:
            self._shown = shown
            self._panel.set_throttle(shown)
            self.changed.emit(state)


class QueueWatch(QObject):
    """Reads the outbox queue on a worker after every change notice (any change may have
    queued, run or parked an operation) and shows its count in the status bar.
    ``read(list[QueuedOperation])`` after each read that is shown (only the newest)."""

    read = Signal(object)

    def __init__(
        self,
        host: WindowHost,
        panel: StatusPanel,
        workers: Workers,
        bus: ChangeBus,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._host = host
        self._panel = panel
        self._workers = workers
        self._serial = 0
        bus.changes_applied.connect(self._follow_changes)
        # Operations wait while the CRM throttles: the status bar says so beside the queue.
        self.throttle = ThrottleWatch(host, panel, self)

    def _follow_changes(self, _changes: Changes) -> None:
        self.refresh()

    def refresh(self) -> None:
        ws = self._host.workspace
        if ws is None:
            return
        self._serial += 1
        serial = self._serial

        def show(ops: list[QueuedOperation]) -> None:
            if self._host.workspace is ws and serial == self._serial:
                self.show_queue(ops)

        QueryOp(ws.queue, show).failure(
            lambda exc: self._host.say(describe(exc))
        ).run_in_background(self._workers)

    def show_queue(self, ops: Sequence[QueuedOperation]) -> None:
        parked = sum(1 for op in ops if op.state == "parked")
        self._panel.set_queue(len(ops), parked)
        self.read.emit(list(ops))
