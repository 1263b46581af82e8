"""The keyboard: Outlook/Thunderbird keys without clashes, Tab and F6 round the panes, the
shortcut list and the About box under Help."""

from __future__ import annotations

from collections import Counter
from importlib import metadata

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from desktop.actions import ACTION_SPECS
from desktop.help_dialogs import AboutDialog, ShortcutsDialog, shortcut_rows
from desktop.mainwindow import MainWindow


def _bare_window(qtbot, workers) -> MainWindow:
    win = MainWindow(workers)
    qtbot.addWidget(win)
    return win


def _keys(win: MainWindow) -> list[str]:
    """Every key the window reacts to: its actions' and its QShortcuts'."""
    keys = [
        seq.toString()
        for action in win.findChildren(QAction)
        for seq in action.shortcuts()
        if not seq.isEmpty()
    ]
    keys += [s.key().toString() for s in win.findChildren(QShortcut) if not s.key().isEmpty()]
    return keys


def test_outlook_keys_and_no_two_actions_share_a_shortcut(qtbot, workers) -> None:
    win = _bare_window(qtbot, workers)
    a = win.window_actions
    assert a.reply_all.shortcut() == QKeySequence("Ctrl+Shift+R")
    assert a.set_regarding.shortcut() == QKeySequence("Ctrl+Alt+R")
    assert a.reply.shortcut() == QKeySequence("Ctrl+R")
    assert a.next_pane.shortcut() == QKeySequence("F6")
    assert a.previous_pane.shortcut() == QKeySequence("Shift+F6")
    keys = _keys(win)
    assert "Ctrl+F" in keys and "Ctrl+E" in keys  # the search bar's QShortcuts are counted
    clashes = {k: n for k, n in Counter(keys).items() if n > 1}
    assert clashes == {}
    specs = [s.shortcut for s in ACTION_SPECS if s.shortcut]
    assert len(specs) == len(set(specs))


def test_shortcut_list_is_every_menu_action_by_menu_and_searchable(qtbot, workers) -> None:
    win = _bare_window(qtbot, workers)
    rows = shortcut_rows(win)
    menus = [m for m, _t, _k in rows]
    assert menus == sorted(menus, key=menus.index)  # grouped: each menu in one run
    assert ("Message", "Reply all", "Ctrl+Shift+R") in rows
    assert ("CRM", "Set Regarding", "Ctrl+Alt+R") in rows
    assert ("Help", "About Trackbox", "") in rows
    listed = {t for _m, t, _k in rows}
    for spec in ACTION_SPECS:
        if spec.shortcut:  # every action with a key is in a menu, so in the list
            assert spec.text.replace("&", "").rstrip("…") in listed, spec.field

    win.window_actions.shortcuts.trigger()
    dialog = win.findChild(ShortcutsDialog)
    assert dialog is not None and dialog.isVisible()
    assert len(dialog.visible_rows()) == len(rows)
    qtbot.keyClicks(dialog.filter, "reply")
    assert set(dialog.visible_rows()) == {("Reply", "Ctrl+R"), ("Reply all", "Ctrl+Shift+R")}
    dialog.filter.setText("F6")
    assert dialog.visible_rows() == [("Next pane", "F6"), ("Previous pane", "Shift+F6")]
    dialog.close()


def test_about_box_shows_version_and_licence(qtbot, workers) -> None:
    win = _bare_window(qtbot, workers)
    win.window_actions.about.trigger()
    about = win.findChild(AboutDialog)
    assert about is not None and about.isVisible()
    text = about.text.text()
    assert f"Trackbox {metadata.version('trackbox')}" in text
    assert "Licence: MIT" in text
    assert "<a href=" in text and about.text.openExternalLinks()
    about.close()


def _focus_after(key: Qt.Key, modifier=Qt.KeyboardModifier.NoModifier) -> QWidget:
    QTest.keyClick(QApplication.focusWidget(), key, modifier)
    QApplication.processEvents()
    return QApplication.focusWidget()


def test_tab_and_f6_go_round_the_panes_and_arrows_stay_inside(qtbot, window) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5_000)
    tree, lst = window.folder_tree, window.message_list
    edit, body = window.mail_view.search_bar.edit, window.reading_pane.body
    tree.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is tree, timeout=5_000)

    # F6 visits tree → search → list → reading pane → tree; Shift+F6 the other way.
    visited = [_focus_after(Qt.Key.Key_F6) for _ in range(4)]
    assert visited == [edit, lst, body, tree]
    back = [_focus_after(Qt.Key.Key_F6, Qt.KeyboardModifier.ShiftModifier) for _ in range(4)]
    assert back == [body, lst, edit, tree]

    # Tab from the tree reaches the search box, then (past the search controls) the list,
    # then the reading pane; Shift+Tab comes back the same way.
    seen = [_focus_after(Qt.Key.Key_Tab)]
    while seen[-1] is not body and len(seen) < 20:
        seen.append(_focus_after(Qt.Key.Key_Tab))
    assert seen[0] is edit and lst in seen and seen[-1] is body
    assert seen.index(edit) < seen.index(lst) < seen.index(body)
    while QApplication.focusWidget() is not tree and len(seen) < 40:
        seen.append(_focus_after(Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier))
    assert QApplication.focusWidget() is tree

    # Arrow keys move within the list (Tab does not walk its cells).
    lst.setFocus()
    window.select_rows([0])
    qtbot.waitUntil(lambda: window.selected_row_ids() != [], timeout=5_000)
    first = window.selected_row_ids()
    assert _focus_after(Qt.Key.Key_Down) is lst
    assert window.selected_row_ids() != first
    assert _focus_after(Qt.Key.Key_Tab) is not lst
