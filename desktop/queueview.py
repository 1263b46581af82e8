"""The queue view (``QueueView``): operations waiting for the CRM, with Retry and Discard.

Rows are the workspace's ``QueuedOperation`` values (``core.sync.report``); the main window
feeds fresh lists after every change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.domain.changes import Changes
from core.outbox.kinds import OpKind
from core.sync.report import QueuedOperation
from core.workspace.feedback import counted, retry_done, retry_refused
from desktop.errors import describe
from desktop.roles import QueuedOperationRole
from desktop.workers import Workers

_Index = QModelIndex | QPersistentModelIndex
HEADERS = ("Operation", "Message", "State", "Attempts", "Last error", "Queued")
KIND_LABELS: dict[str, str] = {
    OpKind.PROMOTE: "Track",
    OpKind.UNTRACK: "Untrack",
    OpKind.SET_REGARDING: "Set regarding",
    OpKind.SEND_PENDING: "Send",
    OpKind.CREATE_RECORD: "Create record",
    OpKind.UPDATE_USER_SETTINGS: "Save options",
}
STATE_LABELS = {"queued": "Waiting", "running": "Running", "parked": "Stopped — needs you"}


class QueueModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._ops: list[QueuedOperation] = []

    def set_operations(self, ops: Sequence[QueuedOperation]) -> None:
        self.beginResetModel()
        self._ops = list(ops)
        self.endResetModel()

    def operation(self, row: int) -> QueuedOperation | None:
        return self._ops[row] if 0 <= row < len(self._ops) else None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._ops)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(HEADERS)
        ):
            return HEADERS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._ops):
            return None
        op = self._ops[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            created = (
                op.created.astimezone().strftime("%Y-%m-%d %H:%M")
                if isinstance(op.created, datetime)
                else ""
            )
            return (
                KIND_LABELS.get(op.kind, op.kind),
                op.subject or op.message_id or "",
                STATE_LABELS.get(op.state, op.state),
                str(op.attempts),
                op.last_error or "",
                created,
            )[index.column()]
        if role == Qt.ItemDataRole.ForegroundRole and op.state == "parked":
            return QBrush(QColor("#c62828"))
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 4:
            return op.last_error or None
        if role == QueuedOperationRole:
            return op
        return None


class QueueView(QDialog):
    """``changed(Changes)`` after a retry or discard (the main window refreshes from it)."""

    changed = Signal(object)

    def __init__(
        self,
        workspace: Any,
        workers: Workers,
        *,
        kinds: tuple[str, ...] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("QueueView")
        self.kinds = kinds
        self.setWindowTitle("Pending Send" if kinds == ("send_pending",) else "Queued operations")
        self.resize(820, 360)
        self.workspace = workspace
        self.workers = workers
        self._retried = False  # the next list shown follows a retry
        self.model = QueueModel(self)
        self.table = QTableView()
        self.table.setObjectName("queueTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.status = QLabel()
        self.status.setObjectName("queueStatus")
        self.status.setWordWrap(True)
        self.retry_button = QPushButton("Retry now")
        self.retry_button.setObjectName("queueRetry")
        self.discard_button = QPushButton("Discard")
        self.discard_button.setObjectName("queueDiscard")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.retry_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.discard_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.retry_button.clicked.connect(lambda: self._act("retry"))
        self.discard_button.clicked.connect(lambda: self._act("discard"))
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update())
        self._update()

    def show_operations(self, ops: Sequence[QueuedOperation]) -> None:
        if self.kinds is not None:
            ops = [op for op in ops if op.kind in self.kinds]
        self.model.set_operations(ops)
        if self._retried:  # the list after a retry: say what the retry did
            self._retried = False
            ws = self.workspace
            if ws.online:
                self.status.setText(retry_done(len(ops)))
            else:
                self.status.setText(retry_refused(len(ops), work_offline=ws.work_offline))
        else:
            self.status.setText(
                f"{counted(len(ops), 'operation')} waiting for the CRM."
                if ops
                else "Nothing is waiting: every operation reached the CRM."
            )
        if ops:
            self.table.selectRow(0)
        self._update()

    def selected(self) -> QueuedOperation | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.operation(rows[0].row()) if rows else None

    def _update(self) -> None:
        has = self.selected() is not None
        self.retry_button.setEnabled(has)
        self.discard_button.setEnabled(has)

    def _act(self, verb: str) -> None:
        op = self.selected()
        if op is None:
            return
        call = getattr(self.workspace, verb)
        op_id = op.id
        self.status.setText("Retrying…" if verb == "retry" else "Discarding…")

        def done(changes: Changes) -> None:
            # The fresh list follows the change notice; it says what the retry did.
            self._retried = verb == "retry"
            self.changed.emit(changes)

        def failed(exc: BaseException) -> None:
            self.status.setText(describe(exc))

        self.workers.run(lambda: call(op_id), done, failed, serial=True, owner=self)
