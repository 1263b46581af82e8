"""The address book's actions (issue 17): Write Mail To, Open in CRM, Copy Address — by button,
context menu and keys — and the records the books leave out, greyed with the reason, against
the demo's CRM emulator."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, QUrl
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from core.domain.new_party import DO_NOT_EMAIL, NO_ADDRESS
from desktop.addressbook import AddressBookDialog

TIMEOUT = 60_000
JANE = "jane.doe@fabrikam.example"


def open_book(qtbot, window) -> AddressBookDialog:
    ws = window.workspace
    dialog = AddressBookDialog(ws.store, window.workers, window, workspace=ws, bus=window.bus)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.model.rowCount() > 0, timeout=TIMEOUT)
    return dialog


def search(qtbot, dialog: AddressBookDialog, text: str, *, excluded: bool = False) -> None:
    signal = dialog.excluded_shown if excluded else dialog.results_changed
    with qtbot.waitSignal(signal, timeout=TIMEOUT):
        dialog.search.setText(text)


def select(dialog: AddressBookDialog, name: str) -> int:
    model = dialog.model
    row = next(r for r in range(model.rowCount()) if model.index(r, 0).data() == name)
    dialog.table.setFocus()
    dialog.table.selectionModel().setCurrentIndex(
        model.index(row, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    return row


def test_write_mail_to_by_button_key_and_menu(qtbot, window) -> None:
    dialog = open_book(qtbot, window)
    search(qtbot, dialog, "Jane Doe")
    dialog.table.clearSelection()
    assert not dialog.action_buttons["write"].isEnabled()  # nothing selected
    select(dialog, "Jane Doe")
    assert dialog.action_buttons["write"].isEnabled()
    dialog.action_buttons["write"].click()
    compose = dialog.opened["compose"]
    assert JANE in compose.to.text() and "Jane Doe" in compose.to.text()
    compose.close()

    dialog.opened.clear()
    qtbot.keyClick(dialog.table, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert JANE in dialog.opened["compose"].to.text()
    dialog.opened["compose"].close()

    dialog.opened.clear()
    qtbot.keyClick(dialog.table, Qt.Key.Key_Return)
    assert JANE in dialog.opened["compose"].to.text()
    dialog.opened["compose"].close()

    dialog._context_menu(dialog.table.visualRect(dialog.model.index(0, 0)).center())
    menu = dialog.context_menu
    texts = [a.text().replace("&", "") for a in menu.actions()]
    assert texts == ["Write Mail To", "Open in CRM", "Copy Address"]
    assert all(a.isEnabled() for a in menu.actions())
    menu.close()


def test_copy_address_by_key_and_button(qtbot, window) -> None:
    dialog = open_book(qtbot, window)
    search(qtbot, dialog, "Jane Doe")
    select(dialog, "Jane Doe")
    QGuiApplication.clipboard().setText("before")
    qtbot.keyClick(dialog.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == JANE
    QGuiApplication.clipboard().setText("before")
    dialog.action_buttons["copy"].click()
    assert QGuiApplication.clipboard().text() == JANE
    assert JANE in dialog.status.text()


def test_open_in_crm_says_when_no_browser_opened(qtbot, window) -> None:
    ws = window.workspace
    dialog = open_book(qtbot, window)
    search(qtbot, dialog, "Jane Doe")
    row = select(dialog, "Jane Doe")
    record = dialog.model.entry(row).record
    opened: list[QUrl] = []
    dialog.open_url = lambda url: opened.append(url) or True
    qtbot.keyClick(dialog.table, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert [u.toString() for u in opened] == [ws.record_url("contact", record.id)]
    assert "Opened Jane Doe in the CRM" in dialog.status.text()

    dialog.open_url = lambda url: False  # no browser, as on a bare server
    dialog.action_buttons["crm"].click()
    url = ws.record_url("contact", record.id)
    assert "No browser opened" in dialog.status.text() and url in dialog.status.text()
    assert QGuiApplication.clipboard().text() == url


def test_records_without_an_address_are_greyed_with_the_reason(qtbot, window) -> None:
    ws = window.workspace
    ws.crm.create("contacts", {"firstname": "Zora", "lastname": "Noaddress"})
    ws.crm.create(
        "contacts",
        {"firstname": "Zora", "lastname": "Donotmail", "emailaddress1": "zora@x.example"},
    )
    # One that the books cache (it has an address) but that must not be written to.
    ws.crm.create(
        "contacts",
        {
            "firstname": "Zora",
            "lastname": "Refuses",
            "emailaddress1": "refuses@x.example",
            "donotemail": True,
        },
    )
    ws.address_book().sync(ws.crm)
    dialog = open_book(qtbot, window)
    search(qtbot, dialog, "Zora", excluded=True)
    model = dialog.model
    rows = {model.index(r, 0).data(): r for r in range(model.rowCount())}
    assert set(rows) == {"Zora Noaddress", "Zora Donotmail", "Zora Refuses"}
    assert model.reason(rows["Zora Noaddress"]) == NO_ADDRESS
    assert model.reason(rows["Zora Refuses"]) == DO_NOT_EMAIL
    assert model.reason(rows["Zora Donotmail"]) is None
    assert model.index(rows["Zora Noaddress"], 1).data() == f"({NO_ADDRESS})"
    assert DO_NOT_EMAIL in model.index(rows["Zora Refuses"], 1).data()
    grey = QApplication.palette().brush(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
    assert model.index(rows["Zora Refuses"], 0).data(Qt.ItemDataRole.ForegroundRole) == grey
    assert model.index(rows["Zora Donotmail"], 0).data(Qt.ItemDataRole.ForegroundRole) is None

    select(dialog, "Zora Refuses")
    assert not dialog.action_buttons["write"].isEnabled()
    assert not dialog.action_buttons["copy"].isEnabled()
    assert dialog.action_buttons["crm"].isEnabled()  # the record is still in the CRM
    assert DO_NOT_EMAIL in dialog.status.text()
    select(dialog, "Zora Donotmail")
    assert dialog.action_buttons["write"].isEnabled()


def test_an_unknown_address_offers_to_create_a_record(qtbot, window) -> None:
    dialog = open_book(qtbot, window)
    search(qtbot, dialog, "new.person@nowhere.example")
    assert dialog.resolve_button.isVisible()
    assert "No CRM record has the address" in dialog.status.text()
    dialog.resolve_button.click()
    resolve = dialog.opened["resolve"]
    assert resolve.email.text() == "new.person@nowhere.example"
    assert resolve.last.text() == "new.person"
    resolve.reject()
