"""The banner's "resolve…" never dead-ends (issue 17): a contact or lead created from the
address, or the address added to an existing record, through the queue, against the demo's
CRM emulator; afterwards the banner no longer offers to resolve the address."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from core.crm.client import odata_string
from core.domain.model import Address
from core.domain.new_party import body_beginning, split_name
from core.sync.address_books import AddressBook
from desktop.resolve_dialog import ResolveDialog
from desktop.roles import RowIdRole

TIMEOUT = 60_000


def unresolved_sender_row(window) -> tuple[int, Address]:
    """A list row whose sender no CRM record has (and that has a display name)."""
    ws, model = window.workspace, window.message_model
    for r in range(model.rowCount()):
        row_id = model.data(model.index(r, 0), RowIdRole)
        row = ws.store().message(row_id)
        sender = row.header.sender if row else None
        if sender is not None and sender.name and sender in ws.unresolved_for(row_id):
            return r, sender
    raise AssertionError("the demo has no mail from an address the CRM does not know")


def open_for(qtbot, window, row: int, email: str) -> ResolveDialog:
    with qtbot.waitSignal(window.message_shown, timeout=TIMEOUT):
        window.select_rows([row])
    banner = window.reading_pane.banner
    assert f"resolve:{email}" in banner.text.text()
    banner.text.linkActivated.emit(f"resolve:{email}")  # the user clicks "resolve…"
    dialog = window.dialogs.opened["resolve"]
    assert isinstance(dialog, ResolveDialog) and dialog.isVisible()
    return dialog


def submit(qtbot, dialog: ResolveDialog):
    assert dialog.ok.isEnabled()
    with qtbot.waitSignal(dialog.outcome_ready, timeout=TIMEOUT) as got:
        dialog.ok.click()
    return got.args[0]


def crm_rows(ws, entity_set: str, column: str, email: str) -> list[dict]:
    return list(ws.crm.query(entity_set, filter=f"{column} eq {odata_string(email)}"))


def test_create_contact_prefilled_and_banner_resolves(qtbot, window) -> None:
    ws = window.workspace
    row, sender = unresolved_sender_row(window)
    dialog = open_for(qtbot, window, row, sender.email)
    name = split_name(sender.name, sender.email)
    assert dialog.first.text() == name.first
    assert dialog.last.text() == (name.last or sender.email.partition("@")[0])
    assert dialog.email.text() == sender.email and dialog.email.isReadOnly()
    assert dialog.radios["contact"].isChecked() and dialog.ok.text() == "Create contact"
    assert not dialog.topic.isVisible()  # a contact has no topic
    view = window.mail_view.shown_view()
    description = dialog.description.toPlainText()
    assert description == body_beginning(view.body_text)

    last = dialog.last.text()
    outcome = submit(qtbot, dialog)
    assert outcome.done, outcome.message()
    created = crm_rows(ws, "contacts", "emailaddress1", sender.email)
    assert len(created) == 1
    assert created[0]["contactid"].lower() == outcome.record.id
    assert created[0]["lastname"] == last
    assert (created[0].get("description") or "") == description
    # The address book has it now, and the banner no longer offers "resolve…" for it.
    assert [r.id for r in AddressBook(ws.store()).lookup(sender.email)] == [outcome.record.id]
    banner = window.reading_pane.banner
    qtbot.waitUntil(lambda: f"resolve:{sender.email}" not in banner.text.text(), timeout=TIMEOUT)
    shown = window.mail_view.shown_row()
    assert shown is not None and sender not in ws.unresolved_for(shown)
    assert not shiboken6.isValid(dialog) or not dialog.isVisible()  # closed once done


def test_offline_lead_waits_in_the_queue_and_is_created_once_online(qtbot, window) -> None:
    ws = window.workspace
    row, sender = unresolved_sender_row(window)
    with qtbot.waitSignal(window.online_changed, timeout=TIMEOUT):
        window.window_actions.work_offline.setChecked(True)
    dialog = open_for(qtbot, window, row, sender.email)
    assert "created when it is reachable" in dialog.note.text()
    row_id = window.mail_view.shown_row()
    assert row_id is not None and sender in ws.unresolved_for(row_id)
    dialog.radios["lead"].click()
    assert dialog.ok.text() == "Create lead" and dialog.topic.isVisible()
    subject = window.mail_view.shown_view().header.subject
    assert dialog.topic.text() == subject
    dialog.company.setText("Fabrikam Test")

    outcome = submit(qtbot, dialog)
    assert outcome.queued and not outcome.done
    assert "will be created when it is reachable" in outcome.message()
    queued = [q for q in ws.queue() if sender.email in q.summary]
    assert len(queued) == 1, [q.summary for q in ws.queue()]
    assert crm_rows(ws, "leads", "emailaddress1", sender.email) == []
    window.dialogs.open_queue()  # the queue view lists it
    view = window.dialogs.opened["queue"]

    def listed() -> bool:
        texts = [view.model.index(r, 1).data() for r in range(view.model.rowCount())]
        return any(sender.email in (t or "") and "New lead" in t for t in texts)

    qtbot.waitUntil(listed, timeout=TIMEOUT)
    view.close()

    with qtbot.waitSignal(window.online_changed, timeout=TIMEOUT):
        window.window_actions.work_offline.setChecked(False)
    qtbot.waitUntil(lambda: ws.queued_count() == 0, timeout=TIMEOUT)
    leads = crm_rows(ws, "leads", "emailaddress1", sender.email)
    assert len(leads) == 1  # exactly once
    assert leads[0]["subject"] == subject[:300] and leads[0]["companyname"] == "Fabrikam Test"
    # The sync that going online starts reads the address books: the address resolves.
    banner = window.reading_pane.banner
    qtbot.waitUntil(lambda: sender not in ws.unresolved_for(row_id), timeout=TIMEOUT)
    qtbot.waitUntil(
        lambda: banner.isVisible() and f"resolve:{sender.email}" not in banner.text.text(),
        timeout=TIMEOUT,
    )


def linkable_contact(ws) -> tuple[str, str, str]:
    entry = next(e for e in AddressBook(ws.store()).browse("contact", limit=50) if e.record.name)
    return entry.record.id, entry.record.name, entry.email


def test_link_to_existing_record_fills_the_first_free_column(qtbot, window) -> None:
    ws = window.workspace
    row, sender = unresolved_sender_row(window)
    record_id, name, primary = linkable_contact(ws)
    ws.crm.update("contacts", record_id, {"emailaddress2": None, "emailaddress3": None})
    dialog = open_for(qtbot, window, row, sender.email)
    with qtbot.waitSignal(dialog.results_changed, timeout=TIMEOUT):
        dialog.radios["link"].click()
    assert dialog.ok.text() == "Add"
    with qtbot.waitSignal(dialog.results_changed, timeout=TIMEOUT, check_params_cb=lambda n: n > 0):
        dialog.search.setText(name)
    items = [dialog.results.item(i) for i in range(dialog.results.count())]
    dialog.results.setCurrentItem(next(i for i in items if name in i.text()))
    assert dialog.selected_record().id == record_id

    outcome = submit(qtbot, dialog)
    assert outcome.done, outcome.message()
    record = ws.crm.get("contacts", record_id, select=["emailaddress1", "emailaddress2"])
    assert (record["emailaddress1"], record["emailaddress2"]) == (primary, sender.email)
    assert outcome.column == "emailaddress2" and "additional e-mail address" in outcome.message()


def test_link_asks_before_replacing_and_cancel_changes_nothing(qtbot, window) -> None:
    ws = window.workspace
    row, sender = unresolved_sender_row(window)
    record_id, name, _primary = linkable_contact(ws)
    taken = {"emailaddress2": "b@x.example", "emailaddress3": "c@x.example"}
    ws.crm.update("contacts", record_id, taken)
    dialog = open_for(qtbot, window, row, sender.email)
    dialog.radios["link"].click()
    with qtbot.waitSignal(dialog.results_changed, timeout=TIMEOUT, check_params_cb=lambda n: n > 0):
        dialog.search.setText(name)
    items = [dialog.results.item(i) for i in range(dialog.results.count())]
    dialog.results.setCurrentItem(next(i for i in items if name in i.text()))
    asked: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(50, answer)
            return
        asked.append(box.text())
        assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Cancel).click()

    QTimer.singleShot(50, answer)
    dialog.ok.click()
    qtbot.waitUntil(lambda: dialog.note.text() == "Nothing was changed.", timeout=TIMEOUT)
    assert asked and "c@x.example" in asked[0] and "third" in asked[0]
    record = ws.crm.get("contacts", record_id, select=["emailaddress3"])
    assert record["emailaddress3"] == "c@x.example"
    assert not [q for q in ws.queue() if sender.email in q.summary]


def test_resolve_link_never_opens_a_dead_end(qtbot, window) -> None:
    """What replaces test_reading's "opens the address book": the link opens this dialog,
    even for an address the shown mail does not name (bare address, last name from it)."""
    window.reading_pane.banner.resolve_requested.emit("nobody@nowhere.example")
    dialog = window.dialogs.opened["resolve"]
    assert isinstance(dialog, ResolveDialog) and dialog.isVisible()
    assert dialog.email.text() == "nobody@nowhere.example"
    assert (dialog.first.text(), dialog.last.text()) == ("", "nobody")
    assert dialog.ok.isEnabled()
    dialog.last.clear()
    assert not dialog.ok.isEnabled()  # the CRM requires a last name
    dialog.reject()


def test_says_when_the_crm_has_the_address_outside_the_address_book(qtbot, window) -> None:
    ws = window.workspace
    row, sender = unresolved_sender_row(window)
    # A second address of a record: the address books cache only the primary one.
    ws.crm.create(
        "contacts",
        {"firstname": "Second", "lastname": "Address", "emailaddress2": sender.email},
    )
    dialog = open_for(qtbot, window, row, sender.email)
    # The check's answer comes through the event loop, which has not run since the dialog
    # opened: waiting now cannot miss it.
    with qtbot.waitSignal(dialog.duplicates_checked, timeout=TIMEOUT) as checked:
        pass
    assert checked.args == [1]
    assert [r.name for r in dialog.existing] == ["Second Address"]
    assert "already has" in dialog.note.text() and "duplicate" in dialog.note.text()
    assert dialog.ok.isEnabled()  # a warning, not a refusal
    dialog.reject()


def test_no_duplicate_warning_for_a_new_address(qtbot, window) -> None:
    row, sender = unresolved_sender_row(window)
    dialog = open_for(qtbot, window, row, sender.email)
    with qtbot.waitSignal(dialog.duplicates_checked, timeout=TIMEOUT) as checked:
        pass
    assert checked.args == [0]
    assert dialog.existing == [] and dialog.note.text() == ""
    dialog.reject()


def test_link_to_a_record_without_address_resolves_the_mail(qtbot, window) -> None:
    ws = window.workspace
    row, sender = unresolved_sender_row(window)
    record_id = ws.crm.create("contacts", {"firstname": "Ulla", "lastname": "Ohnemail"})
    dialog = open_for(qtbot, window, row, sender.email)
    dialog.radios["link"].click()
    with qtbot.waitSignal(dialog.results_changed, timeout=TIMEOUT, check_params_cb=lambda n: n > 0):
        dialog.search.setText("Ohnemail")  # not in the cache: found by the CRM step
    assert dialog.selected_record().id == record_id.lower()
    outcome = submit(qtbot, dialog)
    assert outcome.done and outcome.column == "emailaddress1", outcome.message()
    assert ws.crm.get("contacts", record_id, select=["emailaddress1"])["emailaddress1"] == (
        sender.email
    )
    shown = window.mail_view.shown_row()
    assert [r.id for r in AddressBook(ws.store()).lookup(sender.email)] == [record_id.lower()]
    banner = window.reading_pane.banner
    qtbot.waitUntil(
        lambda: banner.isVisible() and f"resolve:{sender.email}" not in banner.text.text(),
        timeout=TIMEOUT,
    )
    assert shown is not None and sender not in ws.unresolved_for(shown)
