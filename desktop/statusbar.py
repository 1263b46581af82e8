"""The status bar: online/offline, last successful sync, queued operations, sync progress.

Only shows what it is told (``MainWindow`` feeds it from the workspace's ``SyncReport``,
``queue()`` and ``online``); clicking the queue count opens the queue view.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from desktop.icons import named_icon


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
        self.connection = QLabel("Starting…")
        self.connection.setObjectName("statusConnection")
        for w in (self.progress, self.queue, self.last_sync, self.connection):
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
        done = getattr(self, "_last_ok", None)
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
