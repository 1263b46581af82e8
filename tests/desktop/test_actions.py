"""Track / Set Regarding / Untrack on a multi-selection, through the window's actions, against
the emulator over HTTP; the regarding picker driven by the keyboard."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from core.domain.model import TrackState
from desktop.messages import Column
from desktop.regarding import RegardingPicker
from desktop.roles import TrackStateRole


def states(window, rows):
    model = window.message_model
    return [model.data(model.index(r, Column.STATE), TrackStateRole) for r in rows]


def rows_in(window, state, n):
    rows = [r for r in range(window.message_model.rowCount()) if states(window, [r])[0] == state]
    assert len(rows) >= n
    return rows[:n]


def untracked_rows(window, n):
    return rows_in(window, TrackState.NOT_TRACKED, n)


def test_track_set_regarding_untrack_on_a_selection(qtbot, window, monkeypatch) -> None:
    rows = untracked_rows(window, 3)
    window.select_rows(rows)
    assert (
        window.window_actions.track.isEnabled() and window.window_actions.set_regarding.isEnabled()
    )

    with qtbot.waitSignal(window.tracking_done, timeout=30_000) as done:
        window.window_actions.track.trigger()
        assert states(window, rows) == [TrackState.PENDING] * 3  # at once, before the CRM
    assert done.args[0].errors == ()
    qtbot.waitUntil(lambda: states(window, rows) == [TrackState.TRACKED] * 3, timeout=10_000)

    # Set Regarding: the picker, driven by the keyboard only.
    window.select_rows(rows)
    window.window_actions.set_regarding.trigger()
    picker = window.findChild(RegardingPicker, "RegardingPicker")
    assert picker is not None and picker.isVisible()
    with qtbot.waitSignal(
        picker.results_changed, timeout=10_000, check_params_cb=lambda s: s == "crm"
    ):
        qtbot.keyClicks(picker.edit, "northwind")
    names = [h.record.name for h in picker.model.hits()]
    assert "Northwind Traders" in names
    # Move to the account with the arrow keys (the list starts on the first record).
    target = names.index("Northwind Traders")
    for _ in range(target):
        qtbot.keyClick(picker.edit, Qt.Key.Key_Down)
    assert picker.current_hit().record.name == "Northwind Traders"
    with qtbot.waitSignal(window.tracking_done, timeout=30_000) as done:
        qtbot.keyClick(picker.edit, Qt.Key.Key_Return)
    assert done.args[0].errors == ()
    model = window.message_model
    qtbot.waitUntil(
        lambda: all(
            model.data(model.index(r, Column.REGARDING)) == "Northwind Traders" for r in rows
        ),
        timeout=10_000,
    )
    assert states(window, rows) == [TrackState.TRACKED] * 3

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.select_rows(rows)
    with qtbot.waitSignal(window.tracking_done, timeout=30_000) as done:
        window.window_actions.untrack.trigger()
    assert done.args[0].errors == ()
    qtbot.waitUntil(lambda: states(window, rows) == [TrackState.NOT_TRACKED] * 3, timeout=10_000)

    # Edit › Undo tracks them again, regarding the same record.
    qtbot.waitUntil(lambda: window.window_actions.undo.isEnabled(), timeout=10_000)
    window.window_actions.undo.trigger()
    qtbot.waitUntil(lambda: states(window, rows) == [TrackState.TRACKED] * 3, timeout=30_000)
    qtbot.waitUntil(
        lambda: all(
            model.data(model.index(r, Column.REGARDING)) == "Northwind Traders" for r in rows
        ),
        timeout=10_000,
    )


def test_untrack_asks_first_and_cancel_changes_nothing(qtbot, window, monkeypatch) -> None:
    rows = rows_in(window, TrackState.TRACKED, 1)  # Untrack is offered for tracked mail only
    window.select_rows(rows)
    asked = []
    monkeypatch.setattr(
        QMessageBox,
        "question",
        lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Cancel,
    )
    with qtbot.assertNotEmitted(window.tracking_done, wait=200):
        window.window_actions.untrack.trigger()
    (args,) = asked
    assert args[-1] == QMessageBox.StandardButton.Cancel  # Enter answers the safe way
    assert states(window, rows) == [TrackState.TRACKED]


def test_actions_follow_the_selection(qtbot, window) -> None:
    window.message_list.clearSelection()
    a = window.window_actions
    assert not a.track.isEnabled() and not a.set_regarding.isEnabled()
    assert not a.reply.isEnabled()
    window.select_rows([*untracked_rows(window, 1), *rows_in(window, TrackState.TRACKED, 1)])
    assert a.track.isEnabled() and a.untrack.isEnabled() and not a.reply.isEnabled()
    assert a.options.isEnabled() and a.work_offline.isEnabled() and a.new_mail.isEnabled()
    for action in (a.track, a.untrack, a.set_regarding, a.sync_now, a.work_offline, a.options):
        assert "not available" not in action.toolTip()
