"""The Contacts view (issue 20): a list with a search box, the tracked-icon column, and a
details pane under the tracking banner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHeaderView,
    QLineEdit,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.pim.sides import PimKind
from desktop.icons import STATE_LABELS, state_icon
from desktop.pim_common import PimViewBase, details_html, item_state
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.workspace.pim import PimItem

KEY_ROLE = Qt.ItemDataRole.UserRole + 1
COLUMNS = ("", "Name", "E-mail", "Company", "Job title", "Business phone")


class ContactsView(PimViewBase):
    kind = PimKind.CONTACT

    def __init__(self, workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(workers, parent)
        self.setObjectName("contactsView")
        self.search = QLineEdit()
        self.search.setObjectName("contactsSearch")
        self.search.setPlaceholderText("Search contacts")
        self.search.setAccessibleName("Search contacts")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _t: self.show_items(self.items))
        self.list = QTreeWidget()
        self.list.setObjectName("contactsList")
        self.list.setAccessibleName("Contacts")
        self.list.setRootIsDecorated(False)
        self.list.setHeaderLabels(list(COLUMNS))
        self.list.setColumnWidth(0, 28)
        self.list.header().setStretchLastSection(False)
        self.list.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.list.setSortingEnabled(True)
        self.list.sortByColumn(1, Qt.SortOrder.AscendingOrder)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(
            lambda pos: self.show_menu(self.list.viewport(), pos)
        )
        self.list.currentItemChanged.connect(lambda cur, _prev: self._picked(cur))
        self.list.itemDoubleClicked.connect(lambda _i, _c: self._open_current())
        right = self.details_column("contactDetails", "Contact details")
        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        lcol = QVBoxLayout(left)
        lcol.setContentsMargins(0, 0, 0, 0)
        lcol.addWidget(self.search)
        lcol.addWidget(self.list, 1)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([520, 360])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar())
        layout.addWidget(split, 1)

    def show_items(self, items: list[PimItem]) -> None:
        words = self.search.text().strip().lower().split()
        self.list.setSortingEnabled(False)
        self.list.clear()
        for item in items:
            f = item.fields
            cells = [
                "",
                item.title,
                str(f.get("emailaddress1") or ""),
                str(f.get("parentcustomerid") or ""),
                str(f.get("jobtitle") or ""),
                str(f.get("telephone1") or ""),
            ]
            haystack = " ".join(cells).lower()
            if any(w not in haystack for w in words):
                continue
            row = QTreeWidgetItem(cells)
            state = item_state(item)
            row.setIcon(0, state_icon(state))
            row.setToolTip(0, STATE_LABELS[state])
            row.setData(0, KEY_ROLE, item.key)
            self.list.addTopLevelItem(row)
        self.list.setSortingEnabled(True)

    def rows(self) -> list[str]:
        """The names shown, in order (tests)."""
        return [row.text(1) for row in self.rows_items()]

    def select_key(self, key: str) -> None:
        for row in self.rows_items():
            if row.data(0, KEY_ROLE) == key:
                self.list.setCurrentItem(row)
                return

    def rows_items(self) -> list[QTreeWidgetItem]:
        found = (self.list.topLevelItem(i) for i in range(self.list.topLevelItemCount()))
        return [row for row in found if row is not None]

    def _picked(self, row: QTreeWidgetItem | None) -> None:
        key = row.data(0, KEY_ROLE) if row is not None else None
        self.selected_changed(next((i for i in self.items if i.key == key), None))

    def show_details(self, item: PimItem | None) -> None:
        self.details.setHtml(details_html(item))
