"""Every widget that takes the focus has a name a screen reader can say: its accessible name,
the text of a label whose buddy it is, or its own button text (which Qt reports as the name).
Walked over the main window (a workspace open on the demo), the options dialog, the compose
window, the regarding picker, the address book, the setup wizard and the Help dialogs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLabel, QWidget

from desktop.addressbook import AddressBookDialog
from desktop.compose import ComposeWindow
from desktop.help_dialogs import AboutDialog, ShortcutsDialog
from desktop.options import OptionsDialog
from desktop.regarding import RegardingPicker
from desktop.wizard import SetupWizard


def _plain(text: str) -> str:
    return text.replace("&", "").strip()


def _named(widget: QWidget, buddies: dict[int, str]) -> bool:
    if widget.accessibleName().strip() or buddies.get(id(widget)):
        return True
    if isinstance(widget, QAbstractButton) and _plain(widget.text()):
        return True
    # A spin box or combo box speaks for its own line edit (and a focus proxy's owner).
    owner = widget.parentWidget()
    if owner is None or not (
        owner.focusProxy() is widget or isinstance(owner, (QAbstractSpinBox, QComboBox))
    ):
        return False
    return bool(owner.accessibleName().strip() or buddies.get(id(owner)))


def unnamed(root: QWidget) -> list[str]:
    """Each focusable widget under ``root`` (visible or not) that has no name, described."""
    widgets = [root, *root.findChildren(QWidget)]
    buddies = {}
    for label in root.findChildren(QLabel):
        if label.buddy() is not None and _plain(label.text()):
            buddies[id(label.buddy())] = _plain(label.text())
    return [
        f"{type(w).__name__} {w.objectName()!r} in {type(w.parentWidget()).__name__}"
        f" {w.parentWidget().objectName()!r}"
        for w in widgets
        if w.focusPolicy() != Qt.FocusPolicy.NoFocus and not _named(w, buddies)
    ]


def test_main_window_and_its_dialogs_name_every_focusable_widget(qtbot, window) -> None:
    found = {"main window": unnamed(window)}

    window.window_actions.options.trigger()
    options = window.findChild(OptionsDialog, "OptionsDialog")
    qtbot.waitUntil(lambda: options.save_button.isEnabled(), timeout=10_000)
    found["options"] = unnamed(options)
    options.reject()

    window.window_actions.new_mail.trigger()
    compose = window.dialogs.opened["compose"]
    assert isinstance(compose, ComposeWindow)
    qtbot.addWidget(compose)
    found["compose"] = unnamed(compose)
    compose.hide()

    window.select_rows([0])
    window.window_actions.set_regarding.trigger()
    picker = window.findChild(RegardingPicker, "RegardingPicker")
    assert picker is not None
    found["picker"] = unnamed(picker)
    picker.reject()

    window.window_actions.address_book.trigger()
    book = window.findChild(AddressBookDialog)
    assert book is not None
    found["address book"] = unnamed(book)
    book.reject()

    window.window_actions.shortcuts.trigger()
    window.window_actions.about.trigger()
    for kind in (ShortcutsDialog, AboutDialog):
        dialog = window.findChild(kind)
        assert dialog is not None
        found[kind.__name__] = unnamed(dialog)
        dialog.close()
    assert {k: v for k, v in found.items() if v} == {}


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_setup_wizard_names_every_focusable_widget(qtbot, home, workers) -> None:
    wizard = SetupWizard(workers)
    qtbot.addWidget(wizard)
    wizard.show()
    assert unnamed(wizard) == []
