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
    QPoint,
    QStringListModel,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QDesktopServices,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QPalette,
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
    QMenu,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.domain.model import Address
from core.sync.address_books import AddressBook, AddressBookEntry
from core.workspace.new_party import ExcludedRecord, excluded_records
from core.workspace.regarding import browse
from desktop.errors import describe
from desktop.icons import entity_icon
from desktop.roles import AddressEntryRole
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.store import Store
    from core.workspace.facade import Workspace
    from desktop.ops import ChangeBus

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
    ``AddressBookEntry``), then the records found without an address to write to, greyed
    with the reason (``core.domain.new_party.email_exclusion_reason``)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[AddressBookEntry] = []
        self._reasons: dict[tuple[str, str], str] = {}

    def set_rows(self, rows: list[AddressBookEntry]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._reasons = {}
        self.endResetModel()

    def add_excluded(self, excluded: list[ExcludedRecord]) -> None:
        """Mark the listed records that have no address to write to, and add the others."""
        self.beginResetModel()
        listed = {(e.record.entity, e.record.id.lower()) for e in self._rows}
        for ex in excluded:
            key = (ex.record.entity, ex.record.id.lower())
            self._reasons[key] = ex.reason
            if key not in listed:
                listed.add(key)
                self._rows.append(AddressBookEntry(ex.record, ex.email))
        self.endResetModel()

    def entry(self, row: int) -> AddressBookEntry | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def reason(self, row: int) -> str | None:
        """Why the record of ``row`` is no address to write to (None: it is one)."""
        entry = self.entry(row)
        if entry is None:
            return None
        return self._reasons.get((entry.record.entity, entry.record.id.lower()))

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
        reason = self.reason(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            email = entry.email
            if reason:
                email = f"{email} ({reason})" if email else f"({reason})"
            return (
                entry.record.name,
                email,
                entry.company,
                TYPE_NAMES.get(entry.record.entity, entry.record.entity),
            )[index.column()]
        if reason and role == Qt.ItemDataRole.ForegroundRole:
            return QGuiApplication.palette().brush(
                QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text
            )
        if reason and role == Qt.ItemDataRole.ToolTipRole:
            return f"Not in the address book: {reason}"
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 0:
            return entity_icon(entry.record.entity)
        if role == AddressEntryRole:
            return entry
        return None


class AddressBookDialog(QDialog):
    """Browse (nothing typed: by name) and search (FTS) the cached books; write mail to,
    open in the CRM or copy the address of the selected records (buttons, context menu,
    keys). With a ``workspace`` online, a search also lists the records the books leave out,
    greyed with the reason. ``results_changed(count)`` fires after each update (the cache's
    rows, then again with the records left out); ``excluded_shown(count)`` after the latter."""

    results_changed = Signal(int)
    excluded_shown = Signal(int)

    def __init__(
        self,
        store: Callable[[], Store],
        workers: Workers,
        parent: QWidget | None = None,
        *,
        workspace: Workspace | None = None,
        bus: ChangeBus | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("AddressBookDialog")
        self.setWindowTitle("Address book")
        self.resize(820, 520)
        self._store = store
        self._workers = workers
        self._ws = workspace
        self._bus = bus
        self._serial = 0
        #: Opens a URL in the browser (a test replaces it); False: none opened.
        self.open_url: Callable[[QUrl], bool] = QDesktopServices.openUrl
        self.opened: dict[str, QWidget] = {}
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
        layout.addLayout(self._make_actions())
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self._debounce = QTimer(self, singleShot=True, interval=120)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.kind.currentIndexChanged.connect(lambda _i: self.refresh())
        self.table.selectionModel().selectionChanged.connect(lambda *_a: self.update_actions())
        self.table.doubleClicked.connect(lambda _i: self.write_mail())
        self.refresh()

    # --- actions on the selected records ---------------------------------------------------
    def _make_actions(self) -> QHBoxLayout:
        """Write Mail To (Ctrl+N, Enter), Open in CRM (Ctrl+O), Copy Address (Ctrl+C): as
        buttons under the list, in its context menu, and as keys while it has the focus."""

        def action(text: str, keys: QKeySequence, slot: Callable[[], None]) -> QAction:
            act = QAction(text, self)
            act.setShortcut(keys)
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(slot)
            self.table.addAction(act)
            return act

        self.write_action = action("&Write Mail To", QKeySequence("Ctrl+N"), self.write_mail)
        self.crm_action = action("&Open in CRM", QKeySequence("Ctrl+O"), self.open_in_crm)
        self.copy_action = action(
            "&Copy Address", QKeySequence(QKeySequence.StandardKey.Copy), self.copy_address
        )
        self.resolve_button = QPushButton("Create contact or lead…")
        self.resolve_button.setObjectName("addressBookResolve")
        self.resolve_button.clicked.connect(self.resolve_typed_address)
        self.resolve_button.setVisible(False)
        row = QHBoxLayout()
        self.action_buttons: dict[str, QPushButton] = {}
        for name, act in (
            ("write", self.write_action),
            ("crm", self.crm_action),
            ("copy", self.copy_action),
        ):
            button = QPushButton(act.text())
            button.setObjectName(f"addressBook_{name}")
            button.setAccessibleName(act.text().replace("&", ""))
            button.setToolTip(act.shortcut().toString(QKeySequence.SequenceFormat.NativeText))
            button.clicked.connect(act.trigger)
            self.action_buttons[name] = button
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.resolve_button)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.update_actions()
        return row

    def _context_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        menu.setObjectName("addressBookMenu")
        for act in (self.write_action, self.crm_action, self.copy_action):
            menu.addAction(act)
        self.context_menu = menu
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        """Enter in the list writes to the selected records (not the dialog's default)."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.table.hasFocus():
            self.write_mail()
            return
        super().keyPressEvent(event)

    def selected(self) -> list[tuple[AddressBookEntry, str | None]]:
        """The selected entries with the reason each has no address to write to."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        found = []
        for r in rows:
            entry = self.model.entry(r)
            if entry is not None:
                found.append((entry, self.model.reason(r)))
        return found

    def writable(self) -> list[Address]:
        """The addresses of the selected records that can be written to."""
        return [e.address for e, reason in self.selected() if not reason and e.email]

    def update_actions(self) -> None:
        chosen = self.selected()
        writable = bool(self.writable())
        self.write_action.setEnabled(writable and self._ws is not None and self._bus is not None)
        self.copy_action.setEnabled(writable)
        self.crm_action.setEnabled(len(chosen) == 1 and self._ws is not None)
        for name, act in (
            ("write", self.write_action),
            ("crm", self.crm_action),
            ("copy", self.copy_action),
        ):
            self.action_buttons[name].setEnabled(act.isEnabled())
        skipped = [reason for _e, reason in chosen if reason]
        if chosen and skipped and not writable:
            self.status.setText(f"No address to write to: {skipped[0]}.")

    def write_mail(self) -> None:
        """A new message to the selected records (those with an address to write to)."""
        from desktop.compose import ComposeWindow

        addresses = self.writable()
        if not addresses or self._ws is None or self._bus is None:
            return
        window = ComposeWindow(self._ws, self._workers, self._bus, online=self._ws.online)
        window.to.setText("; ".join(a.display() for a in addresses) + "; ")
        # The window opened with these recipients: closing it untouched loses nothing.
        window.saver.dirty = False
        self.opened["compose"] = window
        window.show()
        window.activateWindow()

    def open_in_crm(self) -> None:
        """The selected record's page in the CRM; says so when no browser opened."""
        chosen = self.selected()
        if len(chosen) != 1 or self._ws is None:
            return
        record = chosen[0][0].record
        url = self._ws.record_url(record.entity, record.id)
        if self.open_url(QUrl(url)):
            self.status.setText(f"Opened {record.name or record.entity} in the CRM.")
        else:
            self.status.setText(
                f"No browser opened for {record.name or record.entity}. Its address in the "
                f"CRM is {url} (copied to the clipboard)."
            )
            QGuiApplication.clipboard().setText(url)

    def copy_address(self) -> None:
        addresses = self.writable()
        if not addresses:
            return
        QGuiApplication.clipboard().setText("; ".join(a.email for a in addresses))
        self.status.setText(
            f"Copied {addresses[0].email}"
            if len(addresses) == 1
            else f"Copied {len(addresses)} addresses"
        )

    def resolve_typed_address(self) -> None:
        """The searched address is no CRM record's: create one, or add it to a record."""
        from desktop.resolve_dialog import open_resolve

        text = self.search.text().strip()
        if self._ws is None or self._bus is None or "@" not in text:
            return
        dialog = open_resolve(self._ws, self._workers, self._bus, text, None, parent=self)
        dialog.outcome_ready.connect(lambda outcome: self.status.setText(outcome.message()))
        dialog.accepted.connect(self.refresh)
        self.opened["resolve"] = dialog

    def _find_excluded(self, serial: int, text: str, entity: str | None) -> None:
        """Ask the CRM for the records the books leave out (online only)."""
        ws = self._ws
        if ws is None or not ws.online or len(text) < 2 or "@" in text:
            return
        kinds = [entity] if entity else ["contact", "account", "lead", "systemuser"]

        def done(found: list[ExcludedRecord]) -> None:
            if serial != self._serial:
                return
            if found:
                self.model.add_excluded(found)
                self.results_changed.emit(self.model.rowCount())
            self.excluded_shown.emit(len(found))

        def failed(exc: BaseException) -> None:
            if serial == self._serial:
                self.excluded_shown.emit(-1)

        crm = ws.crm
        self._workers.run(lambda: excluded_records(crm, text, kinds), done, failed, owner=self)

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
            unknown = bool(text and not rows and "@" in text)
            self.resolve_button.setVisible(unknown and self._ws is not None)
            if unknown:
                self.status.setText(
                    f"No CRM record has the address {text}. Create a contact or lead from "
                    "it, or add it to a record the CRM has."
                    if self._ws is not None
                    else f"No CRM record has the address {text}."
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
            self.update_actions()
            self.results_changed.emit(len(rows))
            if text:
                self._find_excluded(serial, text, entity)

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
