"""The regarding picker (``RegardingPicker``): one search box, results grouped by type.

Search logic lives in ``core.workspace.regarding``; this module only schedules it on workers
and shows the results. Each keystroke (debounced) runs the local step (recent + cached address
books, instant and offline) and then, when online, the CRM step; results of an older search are
dropped. Moving onto a contact lists its account and open opportunities/cases under it.
Opened for a mail (``suggest_for``) with nothing typed, it shows suggestions instead
(``core.workspace.regarding.RegardingSuggestions``: the mail's people, their accounts, open
opportunities and cases, recent choices), grouped and navigable like results.
Keyboard: type, Up/Down move between records (group headers are skipped), Enter picks,
Escape closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QFont, QKeyEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListView,
    QVBoxLayout,
    QWidget,
)

from core.domain.model import MessageHeader, RecordRef
from core.workspace.regarding import (
    ENTITY_LABELS,
    RegardingHit,
    RegardingSearch,
    RegardingSuggestions,
    Suggestions,
    group_hits,
)
from desktop.errors import describe
from desktop.icons import entity_icon
from desktop.roles import RegardingHitRole
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.workspace.new_party import ExcludedRecord

_Index = QModelIndex | QPersistentModelIndex
DEBOUNCE_MS = 120
SINGULAR = {
    "account": "Account",
    "contact": "Contact",
    "lead": "Lead",
    "opportunity": "Opportunity",
    "incident": "Case",
}


@dataclass(frozen=True, slots=True)
class _Line:
    header: str | None = None
    hit: RegardingHit | None = None


class RegardingResultsModel(QAbstractListModel):
    """Group headers (not selectable) and hits; ``RegardingHitRole`` gives the raw hit."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lines: list[_Line] = []
        #: (entity, lower-case id) → why the address books leave the record out.
        self._reasons: dict[tuple[str, str], str] = {}

    def set_reasons(self, reasons: dict[tuple[str, str], str]) -> None:
        """Say on each listed record the address books leave out why it has no e-mail
        (it stays a valid regarding record)."""
        self._reasons = reasons
        if self._lines:
            self.dataChanged.emit(self.index(0), self.index(len(self._lines) - 1))

    def reason_of(self, hit: RegardingHit) -> str | None:
        return self._reasons.get((hit.record.entity, hit.record.id.lower()))

    def set_hits(self, hits: list[RegardingHit]) -> None:
        self.beginResetModel()
        self._lines = []
        group = None
        for hit in hits:
            if hit.group != group:
                group = hit.group
                self._lines.append(_Line(header=ENTITY_LABELS.get(group, group.title())))
            self._lines.append(_Line(hit=hit))
        self.endResetModel()

    def add_related(self, parent: RecordRef, related: list[RegardingHit]) -> None:
        """Insert ``related`` right under ``parent`` (once; later calls are ignored)."""
        at = next(
            (
                i
                for i, line in enumerate(self._lines)
                if line.hit is not None and line.hit.record == parent
            ),
            None,
        )
        if at is None or not related:
            return
        if (
            at + 1 < len(self._lines)
            and (nxt := self._lines[at + 1].hit) is not None
            and nxt.parent == parent
        ):
            return
        self.beginInsertRows(QModelIndex(), at + 1, at + len(related))
        self._lines[at + 1 : at + 1] = [_Line(hit=h) for h in related]
        self.endInsertRows()

    def hit_at(self, row: int) -> RegardingHit | None:
        return self._lines[row].hit if 0 <= row < len(self._lines) else None

    def hits(self) -> list[RegardingHit]:
        return [line.hit for line in self._lines if line.hit is not None]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._lines)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if self._lines[index.row()].hit is None:
            return Qt.ItemFlag.ItemIsEnabled
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._lines):
            return None
        line = self._lines[index.row()]
        if line.hit is None:
            if role == Qt.ItemDataRole.DisplayRole:
                return line.header
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setBold(True)
                return font
            return None
        hit = line.hit
        reason = self.reason_of(hit)
        if role == Qt.ItemDataRole.DisplayRole:
            name = hit.record.name or hit.record.id
            if hit.parent is not None:
                kind = SINGULAR.get(hit.record.entity, hit.record.entity)
                name = f"    ↳ {kind}: {name}"
            else:
                name = f"  {name}"
            detail = reason or hit.detail
            return f"{name}  —  {detail}" if detail else name
        if role == Qt.ItemDataRole.ForegroundRole and reason:
            return QPalette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        if role == Qt.ItemDataRole.ToolTipRole and reason:
            return f"Not in the address book: {reason}"
        if role == Qt.ItemDataRole.DecorationRole:
            return entity_icon(hit.record.entity)
        if role == Qt.ItemDataRole.ToolTipRole:
            where = {
                "recent": "recently used",
                "cache": "from the address book cache",
                "crm": "from the CRM",
            }.get(hit.source, hit.source)
            return f"{hit.record.entity} · {where}"
        if role == RegardingHitRole:
            return hit
        return None


class RegardingPicker(QDialog):
    """Pick the record a mail is regarding. ``selected()`` is the choice after ``accept``.

    ``results_changed(source)`` fires after each update (``"local"``, ``"crm"`` for a
    search; ``"suggested-local"``, ``"suggested-crm"`` for the suggestions; ``"reasons"``,
    ``"related"``, ``"error"``) so tests and screenshots can wait for it.
    """

    results_changed = Signal(str)

    def __init__(
        self,
        search: RegardingSearch,
        workers: Workers,
        *,
        online: bool = True,
        title: str = "Set Regarding",
        parent: QWidget | None = None,
        suggest_for: MessageHeader | None = None,
        ok_text: str = "Set Regarding",
    ) -> None:
        super().__init__(parent)
        self.setObjectName("RegardingPicker")
        self.setWindowTitle(title)
        self.resize(560, 480)
        self._search = search
        self._workers = workers
        self._online = online
        self._serial = 0
        self._local: list[RegardingHit] = []
        self._remote: list[RegardingHit] = []
        self._related_done: set[tuple[str, str]] = set()
        self._selected: RegardingHit | None = None
        self._suggestions = (
            RegardingSuggestions(search, suggest_for) if suggest_for is not None else None
        )
        self._suggesting = False  # the list shows suggestions (already grouped)

        self._build()
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)

        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._debounce.timeout.connect(self._run_search)
        self._related_timer = QTimer(self, singleShot=True, interval=200)
        self._related_timer.timeout.connect(self._load_related)
        self.edit.textChanged.connect(lambda _t: self._debounce.start())
        self.edit.installEventFilter(self)
        self.list.selectionModel().currentChanged.connect(self._current_changed)
        self.list.doubleClicked.connect(lambda _i: self.accept())
        self._update_ok()
        self._run_search()

    def _build(self) -> None:
        """The search box, the results list, the status line and the buttons."""
        self.edit = QLineEdit()
        self.edit.setObjectName("regardingSearch")
        self.edit.setAccessibleName("Search CRM records")
        self.edit.setPlaceholderText("Search accounts, contacts, leads, opportunities, cases…")
        self.edit.setClearButtonEnabled(True)
        self.list = QListView()
        self.list.setObjectName("regardingResults")
        self.model = RegardingResultsModel(self)
        self.list.setModel(self.model)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setUniformItemSizes(True)
        self.list.setSpacing(1)
        self.list.setIconSize(QSize(16, 16))
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the search box keeps the keys
        self.status = QLabel()
        self.status.setObjectName("regardingStatus")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Set Regarding")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.edit)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

    # --- results -----------------------------------------------------------------------------
    def _run_search(self) -> None:
        self._serial += 1
        serial = self._serial
        text = self.edit.text()
        search = self._search
        self._suggesting = False
        if not text.strip() and self._suggestions is not None:
            self._run_suggestions(serial, self._suggestions)
            return
        self.status.setText("Searching…" if text.strip() else "Recently used records")

        def local_done(hits: list[RegardingHit]) -> None:
            if serial != self._serial:
                return
            self._local, self._remote = hits, []
            self._show()
            self.results_changed.emit("local")
            if not text.strip():
                if not hits:
                    self.status.setText("Type a name, an e-mail address or a company.")
                return
            if not self._online or search.crm is None:
                self.status.setText(
                    "Offline: showing records from the address book cache (records without "
                    "an e-mail address are found when the CRM is reachable)."
                )
                return
            self.status.setText("Searching the CRM…")
            self._workers.run(lambda: search.remote(text), remote_done, remote_failed, owner=self)

        def remote_done(hits: list[RegardingHit]) -> None:
            if serial != self._serial:
                return
            self._remote = hits
            self._show()
            total = len(self.model.hits())
            self.status.setText(f"{total} record(s)" if total else "No record matches.")
            self.results_changed.emit("crm")
            if hits:
                self._explain_exclusions(serial, text)

        def remote_failed(exc: BaseException) -> None:
            if serial != self._serial:
                return
            self.status.setText(f"Showing cached records only. {describe(exc)}")
            self.results_changed.emit("error")

        def local_failed(exc: BaseException) -> None:
            if serial == self._serial:
                self.status.setText(describe(exc))
                self.results_changed.emit("error")

        self._workers.run(lambda: search.local(text), local_done, local_failed, owner=self)

    def _explain_exclusions(self, serial: int, text: str) -> None:
        """Ask the CRM (on a worker) which of the found people and companies the address
        books leave out, and why; the picker greys them with the reason."""
        from core.workspace.new_party import excluded_records

        crm = self._search.crm
        if crm is None:
            return

        def done(found: list[ExcludedRecord]) -> None:
            if serial == self._serial:
                self.model.set_reasons(
                    {(x.record.entity, x.record.id.lower()): x.reason for x in found}
                )
                self.results_changed.emit("reasons")

        self._workers.run(
            lambda: excluded_records(crm, text, ("contact", "account", "lead")),
            done,
            lambda _exc: None,  # the reasons are a courtesy: the hits stand without them
            owner=self,
        )

    def _run_suggestions(self, serial: int, suggestions: RegardingSuggestions) -> None:
        """Suggestions for the mail: at once from what is on this computer, then from the
        CRM when online (its answers are kept for offline use)."""
        self.status.setText("Suggestions for this mail…")

        def shown(found: Suggestions, source: str) -> None:
            self._suggesting = True
            self._local, self._remote = found.hits, []
            self._show()
            self.results_changed.emit(source)

        def local_done(found: Suggestions) -> None:
            if serial != self._serial:
                return
            shown(found, "suggested-local")
            if self._online and self._search.crm is not None:
                self.status.setText("Suggestions for this mail; asking the CRM…")
                self._workers.run(suggestions.remote, remote_done, failed, owner=self)
            elif found.complete:
                self.status.setText("Suggestions for this mail (offline: as last seen).")
            else:
                self.status.setText(
                    "Offline: suggestions need the CRM for opportunities and cases. "
                    "Type to search the address book cache."
                )

        def remote_done(found: Suggestions) -> None:
            if serial == self._serial:
                shown(found, "suggested-crm")
                self.status.setText(
                    "Suggestions for this mail."
                    if found.hits
                    else "No suggestions; type to search."
                )

        def failed(exc: BaseException) -> None:
            if serial == self._serial:
                self.status.setText(f"Suggestions need the CRM. {describe(exc)}")
                self.results_changed.emit("error")

        self._workers.run(suggestions.local, local_done, failed, owner=self)

    def _show(self) -> None:
        current = self.current_hit()
        merged = [*self._local, *self._remote]
        self.model.set_hits(merged if self._suggesting else group_hits(merged))
        self._related_done.clear()
        rows = [r for r in range(self.model.rowCount()) if self.model.hit_at(r) is not None]
        keep = next((r for r in rows if current and self.model.hit_at(r) == current), None)
        if rows:
            self._set_row(keep if keep is not None else rows[0])
        self._update_ok()

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._update_ok()
        hit = self.model.hit_at(current.row()) if current.isValid() else None
        if (
            hit is not None
            and not self._suggesting  # suggestions list their accounts and work already
            and hit.record.entity == "contact"
            and hit.parent is None
            and self._online
            and self._search.crm is not None
        ):
            self._related_timer.start()

    def _load_related(self) -> None:
        hit = self.current_hit()
        if hit is None or hit.record.entity != "contact" or hit.key in self._related_done:
            return
        self._related_done.add(hit.key)
        serial = self._serial
        search = self._search

        def done(related: list[RegardingHit]) -> None:
            if serial == self._serial:
                self.model.add_related(hit.record, related)
                self.results_changed.emit("related")

        self._workers.run(lambda: search.related(hit.record), done, lambda _e: None, owner=self)

    # --- keyboard -----------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.edit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                step = {
                    Qt.Key.Key_Down: 1,
                    Qt.Key.Key_Up: -1,
                    Qt.Key.Key_PageDown: 8,
                    Qt.Key.Key_PageUp: -8,
                }[Qt.Key(key)]
                self.move_current(step)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                if self.current_hit() is not None:
                    self.accept()
                return True
        return super().eventFilter(watched, event)

    def move_current(self, step: int) -> None:
        """Move the current record by ``step`` records, skipping group headers."""
        rows = [r for r in range(self.model.rowCount()) if self.model.hit_at(r) is not None]
        if not rows:
            return
        current = self.list.currentIndex().row()
        pos = rows.index(current) if current in rows else (-1 if step > 0 else len(rows))
        self._set_row(rows[max(0, min(len(rows) - 1, pos + step))])

    def _set_row(self, row: int) -> None:
        index = self.model.index(row, 0)
        self.list.setCurrentIndex(index)
        self.list.scrollTo(index)

    @property
    def online(self) -> bool:
        """Whether the CRM is searched too (else the address-book cache only)."""
        return self._online

    # --- outcome ------------------------------------------------------------------------------
    def current_hit(self) -> RegardingHit | None:
        index = self.list.currentIndex()
        return self.model.hit_at(index.row()) if index.isValid() else None

    def _update_ok(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(
            self.current_hit() is not None
        )

    def accept(self) -> None:
        hit = self.current_hit()
        if hit is None:
            return
        self._selected = hit
        search = self._search
        self._workers.run(
            lambda: search.remember(hit.record, hit.detail),
            None,
            lambda _e: None,
            serial=True,
            owner=self,
        )
        super().accept()

    def selected(self) -> RecordRef | None:
        return self._selected.record if self._selected else None
