"""The address book dialog (``AddressBookDialog``) and the address completer of the compose
window: both read the CRM address books cached in the store (``core.sync.address_books``), on
workers, so they work offline and never block the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QStringListModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.sync.address_books import AddressBook, AddressBookEntry
from core.workspace.regarding import browse
from desktop.errors import describe
from desktop.icons import entity_icon
from desktop.roles import AddressEntryRole
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.store import Store

_Index = QModelIndex | QPersistentModelIndex
#: The CRM address books (entity → label), in the order the dialog and Options list them.
BOOK_LABELS = {
    "contact": "Contacts",
    "account": "Accounts",
    "lead": "Leads",
    "systemuser": "Users",
    "queue": "Queues",
    "equipment": "Facilities/equipment",
}
TYPE_NAMES = {
    "contact": "Contact",
    "account": "Account",
    "lead": "Lead",
    "systemuser": "User",
    "queue": "Queue",
    "equipment": "Facility/equipment",
}
HEADERS = ("Name", "E-mail", "Company", "Type")


class AddressBookModel(QAbstractTableModel):
    """Rows of cached address-book records (``AddressEntryRole`` gives the raw
    ``AddressBookEntry``)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[AddressBookEntry] = []

    def set_rows(self, rows: list[AddressBookEntry]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

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
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        entry = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                entry.record.name,
                entry.email,
                entry.company,
                TYPE_NAMES.get(entry.record.entity, entry.record.entity),
            )[index.column()]
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 0:
            return entity_icon(entry.record.entity)
        if role == AddressEntryRole:
            return entry
        return None


class AddressBookDialog(QDialog):
    """Browse (nothing typed: by name) and search (FTS) the cached books.
    ``results_changed(count)`` fires after each update."""

    results_changed = Signal(int)

    def __init__(
        self, store: Callable[[], Store], workers: Workers, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("AddressBookDialog")
        self.setWindowTitle("Address book")
        self.resize(820, 520)
        self._store = store
        self._workers = workers
        self._serial = 0
        self.search = QLineEdit()
        self.search.setObjectName("addressBookSearch")
        self.search.setAccessibleName("Search the address book")
        self.search.setPlaceholderText("Search by name, e-mail or company")
        self.search.setClearButtonEnabled(True)
        self.kind = QComboBox()
        self.kind.setObjectName("addressBookType")
        self.kind.setAccessibleName("Address book")
        self.kind.view().setAccessibleName("Address books")
        for value, label in (("", "All address books"), *BOOK_LABELS.items()):
            self.kind.addItem(label, value)
        self.model = AddressBookModel(self)
        self.table = QTableView()
        self.table.setObjectName("addressBookTable")
        self.table.setAccessibleName("Address book entries")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setColumnWidth(0, 190)
        self.table.setColumnWidth(2, 170)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setShowGrid(False)
        self.status = QLabel()
        self.status.setObjectName("addressBookStatus")
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.kind)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self._debounce = QTimer(self, singleShot=True, interval=120)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.kind.currentIndexChanged.connect(lambda _i: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        self._serial += 1
        serial = self._serial
        text = self.search.text().strip()
        entity = self.kind.currentData() or None
        store = self._store

        def op() -> tuple[list[AddressBookEntry], int]:
            s = store()
            book = AddressBook(s)
            total = book.count(entity)
            if not text:
                return browse(s, entity, limit=500), total
            return book.search(text, limit=500, entities=[entity] if entity else None), total

        def done(result: tuple[list[AddressBookEntry], int]) -> None:
            if serial != self._serial:
                return
            rows, total = result
            self.model.set_rows(rows)
            if text and not rows and "@" in text:
                self.status.setText(
                    f"No CRM record has the address {text}. Add it as a contact or lead in "
                    "the CRM; it resolves on the next synchronisation. (Trackbox cannot "
                    "create CRM records itself yet.)"
                )
            elif text:
                self.status.setText(f"{len(rows)} match(es) among {total:,} cached records")
            elif total:
                self.status.setText(
                    f"{total:,} cached records"
                    + (f" (first {len(rows)} shown)" if total > len(rows) else "")
                )
            else:
                self.status.setText(
                    "The address book cache is empty: it fills on the next "
                    "synchronisation with the CRM."
                )
            self.results_changed.emit(len(rows))

        def failed(exc: BaseException) -> None:
            if serial == self._serial:
                self.status.setText(describe(exc))
                self.results_changed.emit(-1)

        self._workers.run(op, done, failed, owner=self)


class AddressCompleter(QObject):
    """Completes the address being typed in a To/Cc/Bcc box ("a@x; Jane D…") from the cache.

    ``suggestions_ready(list)`` fires when suggestions were shown."""

    suggestions_ready = Signal(list)

    def __init__(self, edit: QLineEdit, store: Callable[[], Store], workers: Workers) -> None:
        super().__init__(edit)
        self.edit = edit
        self._store = store
        self._workers = workers
        self._serial = 0
        self.model = QStringListModel(self)
        self.completer = QCompleter(self.model, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        self.completer.setWidget(edit)
        self.completer.activated.connect(self.insert)
        self._debounce = QTimer(self, singleShot=True, interval=150)
        self._debounce.timeout.connect(self._lookup)
        edit.textEdited.connect(lambda _t: self._debounce.start())

    def fragment(self) -> str:
        text = self.edit.text()[: self.edit.cursorPosition()]
        cut = max(text.rfind(";"), text.rfind(","))
        return text[cut + 1 :].strip()

    def _lookup(self) -> None:
        fragment = self.fragment()
        if len(fragment) < 2:
            return
        self._serial += 1
        serial = self._serial
        store = self._store

        def op() -> list[str]:
            entries = AddressBook(store()).search(fragment, limit=12)
            return [e.address.display() for e in entries]

        def done(items: list[str]) -> None:
            if serial != self._serial or not items:
                return
            self.model.setStringList(items)
            self.completer.complete()
            self.suggestions_ready.emit(items)

        self._workers.run(op, done, lambda _e: None, owner=self)

    def insert(self, chosen: str) -> None:
        text = self.edit.text()
        pos = self.edit.cursorPosition()
        head = text[:pos]
        cut = max(head.rfind(";"), head.rfind(","))
        before = head[: cut + 1]
        new = (before + (" " if before else "") + chosen + "; ").lstrip()
        self.edit.setText(new + text[pos:].lstrip(" ;,"))
        self.edit.setCursorPosition(len(new))
