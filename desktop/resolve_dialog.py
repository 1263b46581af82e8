"""The "resolve…" dialog (issue 17): an address no CRM record has becomes a new contact, a new
lead, or an address of an existing record — never a dead end.

What to prefill (first and last name from the display name, the topic from the subject, the
description from the signature-free beginning of the body) is decided in
``core.domain.new_party``; the CRM change is queued and run by
``core.workspace.new_party`` on a worker (:class:`~desktop.ops.Op`), so it waits in the queue
while the CRM cannot be reached. ``outcome_ready(PartyOutcome)`` fires when it was queued or
done; ``results_changed(count)`` after each search of records to link to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from core.domain.entities import entity
from core.domain.model import Address, RecordRef
from core.domain.new_party import (
    LinkPlan,
    PersonName,
    body_beginning,
    new_party_columns,
    split_name,
)
from core.workspace.new_party import (
    LINKABLE,
    PartyOutcome,
    create_party,
    link_address,
    link_plan,
    records_with_address,
)
from core.workspace.regarding import RegardingHit, RegardingSearch, group_hits
from desktop.errors import describe
from desktop.icons import entity_icon
from desktop.ops import ChangeBus, Op, QueryOp
from desktop.roles import RegardingHitRole
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.workspace.facade import Workspace
    from core.workspace.reading import MessageView

CHOICES = (
    ("contact", "Create a &contact"),
    ("lead", "Create a &lead"),
    ("link", "Add to an &existing record"),
)
LINK_LABELS = {"emailaddress1": "first", "emailaddress2": "second", "emailaddress3": "third"}


def address_in(view: MessageView | None, email: str) -> Address:
    """The address as the mail names it (with its display name), else bare."""
    if view is not None:
        header = view.header
        for a in (header.sender, *header.to, *header.cc):
            if a is not None and a.email.casefold() == email.casefold():
                return a
    return Address(email, "")


class ResolveDialog(QDialog):
    """Create a contact or lead from an unresolved address, or link it to a record."""

    outcome_ready = Signal(object)
    results_changed = Signal(int)
    duplicates_checked = Signal(int)

    def __init__(
        self,
        ws: Workspace,
        workers: Workers,
        bus: ChangeBus,
        address: Address,
        view: MessageView | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ResolveDialog")
        self.setWindowTitle(f"Resolve {address.email}")
        self.resize(560, 520)
        self._ws, self._workers, self._bus = ws, workers, bus
        self.address = address
        self.outcome: PartyOutcome | None = None
        self.existing: list[RecordRef] = []
        self._serial = 0
        self._build()
        self._prefill(view)
        self._debounce = QTimer(self, singleShot=True, interval=150)
        self._debounce.timeout.connect(self._search)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.results.currentItemChanged.connect(lambda *_a: self._update_ok())
        self.choices.idToggled.connect(lambda _i, _on: self._choice_changed())
        self._choice_changed()

    # --- building ------------------------------------------------------------------------
    def _build(self) -> None:
        intro = QLabel(
            f"No CRM record has the address <b>{self.address.email}</b>. Create one, or add "
            "the address to a record the CRM has."
        )
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        self.choices = QButtonGroup(self)
        self.radios: dict[str, QRadioButton] = {}
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        for i, (key, label) in enumerate(CHOICES):
            radio = QRadioButton(label)
            radio.setObjectName(f"resolve_{key}")
            radio.setAccessibleName(label.replace("&", ""))
            self.choices.addButton(radio, i)
            self.radios[key] = radio
            layout.addWidget(radio)
        self.radios["contact"].setChecked(True)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._new_page())
        self.pages.addWidget(self._link_page())
        layout.addWidget(self.pages, 1)
        self.note = QLabel()
        self.note.setObjectName("resolveNote")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok = QPushButton("Create")
        self.ok.setObjectName("resolveOk")
        self.ok.setDefault(True)
        self.buttons.addButton(self.ok, QDialogButtonBox.ButtonRole.ActionRole)
        self.ok.clicked.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def _edit(self, name: str, accessible: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setObjectName(name)
        edit.setAccessibleName(accessible)
        edit.textChanged.connect(lambda _t: self._update_ok())
        return edit

    def _new_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.first = self._edit("resolveFirstName", "First name")
        self.last = self._edit("resolveLastName", "Last name")
        self.email = self._edit("resolveEmail", "E-mail")
        self.email.setReadOnly(True)
        self.topic = self._edit("resolveTopic", "Topic")
        self.company = self._edit("resolveCompany", "Company")
        self.description = QPlainTextEdit()
        self.description.setObjectName("resolveDescription")
        self.description.setAccessibleName("Description")
        self.description.setTabChangesFocus(True)
        form.addRow("&First name:", self.first)
        form.addRow("L&ast name:", self.last)
        form.addRow("E-mail:", self.email)
        form.addRow("&Topic:", self.topic)
        form.addRow("Com&pany:", self.company)
        form.addRow("&Description:", self.description)
        self._form = form
        return page

    def _link_page(self) -> QWidget:
        page = QWidget()
        box = QVBoxLayout(page)
        self.search = self._edit("resolveSearch", "Search records to add the address to")
        self.search.setPlaceholderText("Search contacts, accounts and leads by name")
        self.results = QListWidget()
        self.results.setObjectName("resolveResults")
        self.results.setAccessibleName("Records to add the address to")
        self.results.itemDoubleClicked.connect(lambda _i: self.submit())
        box.addWidget(self.search)
        box.addWidget(self.results, 1)
        return page

    def _prefill(self, view: MessageView | None) -> None:
        name = split_name(self.address.name, self.address.email)
        self.first.setText(name.first)
        self.last.setText(name.last or self.address.email.partition("@")[0])
        self.email.setText(self.address.email)
        if view is not None:
            self.topic.setText(view.header.subject)
            sender = view.header.sender
            if sender is not None and sender.email.casefold() == self.address.email.casefold():
                # What they wrote (never the owner's own words to them).
                self.description.setPlainText(body_beginning(view.body_text))
        self.search.setText(name.last or name.first)
        if not self._ws.online:
            self.note.setText(
                "The CRM cannot be reached now: the record will be created when it is "
                "reachable (the queue lists it until then)."
            )
        else:
            self._look_for_duplicates()

    def _look_for_duplicates(self) -> None:
        """Records the address books do not cache may have the address already (another
        owner's contact, a second e-mail column): say so before a duplicate is made."""
        crm, email = self._ws.crm, self.address.email

        def found(records: list[RecordRef]) -> None:
            self.existing = records
            if records:
                names = ", ".join(
                    f"{r.name or r.id} ({entity(r.entity).label.lower()})" for r in records[:3]
                )
                self.note.setText(
                    f"The CRM already has {email} on {names}, outside your address book. "
                    "Creating another record makes a duplicate."
                )
            self.duplicates_checked.emit(len(records))

        def failed(_exc: BaseException) -> None:
            self.duplicates_checked.emit(-1)  # not knowing is no reason to stop the user

        QueryOp(lambda: records_with_address(crm, email), found, owner=self).failure(
            failed
        ).run_in_background(self._workers)

    # --- state ---------------------------------------------------------------------------
    def choice(self) -> str:
        return CHOICES[self.choices.checkedId()][0]

    def _choice_changed(self) -> None:
        choice = self.choice()
        self.pages.setCurrentIndex(1 if choice == "link" else 0)
        lead = choice == "lead"
        for widget in (self.topic, self.company):
            widget.setVisible(lead)
            label = self._form.labelForField(widget)
            if label is not None:
                label.setVisible(lead)
        self.ok.setText({"contact": "Create contact", "lead": "Create lead"}.get(choice, "Add"))
        if choice == "link" and self.results.count() == 0:
            self._search()
        self._update_ok()

    def _update_ok(self) -> None:
        if self.choice() == "link":
            ready = self.selected_record() is not None
        else:
            ready = bool(self.last.text().strip())
        self.ok.setEnabled(ready)

    def selected_record(self) -> RecordRef | None:
        item = self.results.currentItem()
        hit = item.data(RegardingHitRole) if item is not None else None
        return hit.record if isinstance(hit, RegardingHit) else None

    # --- searching records to link to ------------------------------------------------------
    def _search(self) -> None:
        self._serial += 1
        serial, text, ws = self._serial, self.search.text().strip(), self._ws
        online = ws.online

        def op() -> list[RegardingHit]:
            finder = RegardingSearch(ws.store, ws.crm if online else None, entities=LINKABLE)
            hits = [h for h in finder.local(text) if h.record.entity in LINKABLE]
            try:
                hits += finder.remote(text)
            except Exception:  # noqa: BLE001 (the CRM's words are not needed: cache suffices)
                pass
            return group_hits(hits)

        def shown(hits: list[RegardingHit]) -> None:
            if serial != self._serial:
                return
            self.results.clear()
            for hit in hits:
                text = hit.record.name + (f"  —  {hit.detail}" if hit.detail else "")
                item = QListWidgetItem(entity_icon(hit.record.entity), text)
                item.setData(RegardingHitRole, hit)
                self.results.addItem(item)
            if hits:
                self.results.setCurrentRow(0)
            self._update_ok()
            self.results_changed.emit(len(hits))

        def failed(exc: BaseException) -> None:
            if serial == self._serial:
                self.note.setText(describe(exc))
                self.results_changed.emit(-1)

        QueryOp(op, shown, owner=self).failure(failed).run_in_background(self._workers)

    # --- doing it --------------------------------------------------------------------------
    def submit(self) -> None:
        if not self.ok.isEnabled():
            return
        choice = self.choice()
        if choice == "link":
            record = self.selected_record()
            if record is not None:
                self._plan_link(record)
            return
        columns = new_party_columns(
            choice,
            PersonName(self.first.text().strip(), self.last.text().strip()),
            self.address.email,
            topic=self.topic.text(),
            company=self.company.text(),
            description=self.description.toPlainText(),
        )
        name = " ".join(p for p in (self.first.text().strip(), self.last.text().strip()) if p)
        ws = self._ws
        self._run(lambda: create_party(ws, choice, columns, name))

    def _plan_link(self, record: RecordRef) -> None:
        ws, email = self._ws, self.address.email
        self.ok.setEnabled(False)
        self.note.setText(f"Reading the e-mail addresses of {record.name}…")

        def planned(plan: LinkPlan) -> None:
            if plan.replaces and not self._may_replace(record, plan):
                self.note.setText("Nothing was changed.")
                self._update_ok()
                return
            self._run(lambda: link_address(ws, record, email, plan.column))

        def failed(exc: BaseException) -> None:
            self.note.setText(
                "Adding an address to a record needs the CRM, to read the addresses the "
                f"record has: {describe(exc)} Create a new record instead, or try again "
                "when the CRM is reachable."
            )
            self._update_ok()

        QueryOp(lambda: link_plan(ws, record, email), planned, owner=self).failure(
            failed
        ).run_in_background(self._workers)

    def _may_replace(self, record: RecordRef, plan: LinkPlan) -> bool:
        which = LINK_LABELS.get(plan.column, plan.column)
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Replace an e-mail address?",
            f"{record.name} has three e-mail addresses already. Replace its {which} one, "
            f"{plan.replaces}, with {self.address.email}?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("resolveReplace")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        self.replace_box = box
        return box.exec() == QMessageBox.StandardButton.Yes

    def _run(self, work: Callable[[], PartyOutcome]) -> None:
        self.ok.setEnabled(False)

        def done(outcome: PartyOutcome) -> None:
            self.outcome = outcome
            self.note.setText(outcome.message())
            self.outcome_ready.emit(outcome)
            if outcome.error is None:
                self.accept()
            else:
                self._update_ok()

        def failed(exc: BaseException) -> None:
            self.note.setText(describe(exc))
            self._update_ok()

        Op(work, self._bus, changes=lambda o: o.changes, owner=self).success(done).failure(
            failed
        ).run_in_background(self._workers)


def open_resolve(
    ws: Workspace,
    workers: Workers,
    bus: ChangeBus,
    email: str,
    view: MessageView | None,
    parent: QWidget | None = None,
) -> ResolveDialog:
    """Open the dialog for ``email`` as the message ``view`` names it."""
    dialog = ResolveDialog(ws, workers, bus, address_in(view, email), view, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
