"""Options › E-mail tracking › Never track (issue 17): add an address and a domain, refuse
what is neither, remove one, save; the list comes back normalised and reaches the rules."""

from __future__ import annotations

from desktop.options import OptionsDialog


def open_options(qtbot, window) -> OptionsDialog:  # type: ignore[no-untyped-def]
    window.window_actions.options.trigger()
    dialogs = window.findChildren(OptionsDialog)
    dialog = dialogs[-1]
    qtbot.waitUntil(lambda: dialog.save_button.isEnabled(), timeout=10_000)
    return dialog


def test_never_track_section_adds_refuses_removes_and_saves(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    dialog = open_options(qtbot, window)
    editor = dialog.never_track
    assert editor.list.count() == 0

    for text in ("Jane.Doe@Fabrikam.example", "@lists.Contoso.example"):
        editor.entry.setText(text)
        editor.add_button.click()
    assert editor.problem.text() == ""
    shown = [editor.list.item(i).text() for i in range(editor.list.count())]
    assert shown == ["jane.doe@fabrikam.example", "lists.contoso.example"]

    editor.entry.setText("not an address")
    editor.add_button.click()
    assert "neither an e-mail address" in editor.problem.text()
    assert editor.list.count() == 2 and editor.entry.text() == "not an address"

    editor.entry.setText("JANE.DOE@fabrikam.example")
    editor.add_button.click()
    assert "already on the list" in editor.problem.text()
    assert editor.list.count() == 2

    editor.entry.setText("private.example")
    editor.add_button.click()
    editor.list.setCurrentRow(0)
    assert editor.remove_button.isEnabled()
    editor.remove_button.click()
    assert editor.entries() == ("@lists.contoso.example", "@private.example")

    with qtbot.waitSignal(dialog.saved, timeout=10_000):
        dialog.save_button.click()
    saved = window.workspace.local_options()
    assert saved.never_track == ("@lists.contoso.example", "@private.example")
    assert saved.never_track_list().entry_for("a@x.private.example") == "@private.example"

    again = open_options(qtbot, window)
    shown = [again.never_track.list.item(i).text() for i in range(again.never_track.list.count())]
    assert shown == ["lists.contoso.example", "private.example"]
    again.reject()
