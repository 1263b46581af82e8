"""The Tasks view (issue 20): due date, status and priority, overdue in red, a checkbox that
completes a task, the tracked-icon column, and a details pane under the tracking banner."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.pim.sides import PimKind
from desktop.icons import STATE_LABELS, state_icon
from desktop.pim_common import PimViewBase, details_html, item_state, when_text
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.workspace.pim import PimItem

KEY_ROLE = Qt.ItemDataRole.UserRole + 1
OVERDUE_ROLE = Qt.ItemDataRole.UserRole + 2
COLUMNS = ("", "Done", "Subject", "Due", "Status", "Priority")
OVERDUE = QColor("#c62828")


class TasksView(PimViewBase):
    kind = PimKind.TASK

    def __init__(self, workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(workers, parent)
        self.setObjectName("tasksView")
        self._filling = False
        self.list = QTreeWidget()
        self.list.setObjectName("tasksList")
        self.list.setAccessibleName("Tasks")
        self.list.setRootIsDecorated(False)
        self.list.setHeaderLabels(list(COLUMNS))
        self.list.setColumnWidth(0, 28)
        self.list.header().setStretchLastSection(False)
        self.list.header().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.list.setColumnWidth(1, 48)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(
            lambda pos: self.show_menu(self.list.viewport(), pos)
        )
        self.list.currentItemChanged.connect(lambda cur, _prev: self._picked(cur))
        self.list.itemChanged.connect(self._checked)
        self.list.itemDoubleClicked.connect(lambda _i, _c: self._open_current())
        right = self.details_column("taskDetails", "Task details")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.list)
        split.addWidget(right)
        split.setSizes([560, 320])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar())
        layout.addWidget(split, 1)

    def show_items(self, items: list[PimItem]) -> None:
        from core.workspace.pim import due_of, is_overdue, priority_label, task_done, task_status

        now = datetime.now(UTC)
        self._filling = True
        self.list.clear()
        ordered = sorted(items, key=lambda i: (task_done(i), str(due_of(i) or "9999")))
        for item in ordered:
            cells = [
                "",
                "",
                item.title,
                when_text(item.fields.get("scheduledend")),
                task_status(item),
                priority_label(item),
            ]
            row = QTreeWidgetItem(cells)
            state = item_state(item)
            row.setIcon(0, state_icon(state))
            row.setToolTip(0, STATE_LABELS[state])
            row.setData(0, KEY_ROLE, item.key)
            row.setFlags(row.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            done = task_done(item)
            row.setCheckState(1, Qt.CheckState.Checked if done else Qt.CheckState.Unchecked)
            overdue = is_overdue(item, now)
            row.setData(0, OVERDUE_ROLE, overdue)
            if overdue:
                for col in range(len(COLUMNS)):
                    row.setForeground(col, QBrush(OVERDUE))
                row.setToolTip(3, "Overdue")
            if done:
                font = row.font(2)
                font.setStrikeOut(True)
                row.setFont(2, font)
            self.list.addTopLevelItem(row)
        self._filling = False

    def row_of(self, subject: str) -> QTreeWidgetItem | None:
        for row in self.rows_items():
            if row.text(2) == subject:
                return row
        return None

    def select_key(self, key: str) -> None:
        for row in self.rows_items():
            if row.data(0, KEY_ROLE) == key:
                self.list.setCurrentItem(row)
                return

    def _checked(self, row: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 1:
            return
        key = row.data(0, KEY_ROLE)
        done = row.checkState(1) == Qt.CheckState.Checked
        self.run_change(lambda s: s.set_done(key, done))

    def rows_items(self) -> list[QTreeWidgetItem]:
        found = (self.list.topLevelItem(i) for i in range(self.list.topLevelItemCount()))
        return [row for row in found if row is not None]

    def _picked(self, row: QTreeWidgetItem | None) -> None:
        key = row.data(0, KEY_ROLE) if row is not None else None
        self.selected_changed(next((i for i in self.items if i.key == key), None))

    def show_details(self, item: PimItem | None) -> None:
        self.details.setHtml(details_html(item))
