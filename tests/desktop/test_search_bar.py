"""The search bar over the message list (issue 17), in the real window over the demo workspace
(emulator over HTTPS, demo Maildir): typing narrows the list to the store's matches, the scope
and the quick filters, Esc, Ctrl+F / Ctrl+E, tracking a result through the CRM, and the GUI
thread never blocked while typing."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget

from core.domain.model import TrackState
from core.store.search import QuickFilter, search
from desktop.messages import Column
from desktop.roles import RowIdRole, TrackStateRole
from desktop.search import results_text
from tests.desktop.test_reader_bounds import MAX_GAP, GapMeter


def listed_ids(window) -> list[int]:
    model = window.message_model
    return [model.data(model.index(r, Column.SUBJECT), RowIdRole) for r in range(model.rowCount())]


def store_search(window, text: str, **kw) -> list[int]:
    return search(window.workspace.store(), text, **kw)


def inbox(window) -> str:
    folder, _states = window.mail_view._scope
    assert folder is not None
    return folder


def type_and_wait(qtbot, window, text: str, expected: list[int]) -> None:
    qtbot.keyClicks(window.mail_view.search_bar.edit, text)
    qtbot.waitUntil(lambda: listed_ids(window) == expected, timeout=10_000)


def test_typing_filters_the_folder_and_esc_brings_it_back(qtbot, window) -> None:
    folder = inbox(window)
    everything = listed_ids(window)
    subject = window.message_model.index(0, Column.SUBJECT).data()
    word = subject.split()[0]
    expected = store_search(window, word, folder=folder)
    assert 0 < len(expected) < len(everything)
    type_and_wait(qtbot, window, word, expected)
    assert window.mail_view.searching()
    # the tracked-icon column is there for every result
    model = window.message_model
    assert all(
        isinstance(model.data(model.index(r, Column.STATE), TrackStateRole), TrackState)
        for r in range(model.rowCount())
    )
    results = f"{len(expected)} result" + ("" if len(expected) == 1 else "s")
    assert window.statusBar().currentMessage() == results
    assert window.mail_view.search_bar.results.text() == results

    qtbot.keyClick(window.mail_view.search_bar.edit, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: listed_ids(window) == everything, timeout=10_000)
    assert not window.mail_view.searching() and window.mail_view.search_bar.text() == ""


def test_words_that_match_nothing_and_hostile_text(qtbot, window) -> None:
    type_and_wait(qtbot, window, 'zzqx "NEAR( OR -*', [])
    assert window.statusBar().currentMessage() == "0 results"


def test_scope_switch_searches_all_folders(qtbot, window) -> None:
    bar = window.mail_view.search_bar
    folder = inbox(window)
    everywhere = store_search(window, "", filters={QuickFilter.NOT_TRACKED})
    here = store_search(window, "", folder=folder, filters={QuickFilter.NOT_TRACKED})
    assert len(everywhere) > len(here) > 0
    bar.buttons[QuickFilter.NOT_TRACKED].click()
    qtbot.waitUntil(lambda: listed_ids(window) == here, timeout=10_000)
    bar.set_all_folders(True)
    qtbot.waitUntil(lambda: listed_ids(window) == everywhere, timeout=10_000)


def test_quick_filters_combine_and_exclude_each_other(qtbot, window) -> None:
    bar = window.mail_view.search_bar
    folder = inbox(window)

    def shows(*filters: QuickFilter) -> bool:
        """The list shows what the store finds now (opening mail marks it read meanwhile)."""
        return listed_ids(window) == store_search(window, "", folder=folder, filters=set(filters))

    bar.buttons[QuickFilter.UNREAD].click()
    qtbot.waitUntil(lambda: shows(QuickFilter.UNREAD), timeout=10_000)
    bar.buttons[QuickFilter.TRACKED].click()
    qtbot.waitUntil(lambda: shows(QuickFilter.UNREAD, QuickFilter.TRACKED), timeout=10_000)
    both = listed_ids(window)
    bar.buttons[QuickFilter.NOT_TRACKED].click()  # one tracked state at a time
    assert not bar.buttons[QuickFilter.TRACKED].isChecked()
    qtbot.waitUntil(lambda: shows(QuickFilter.UNREAD, QuickFilter.NOT_TRACKED), timeout=10_000)
    assert set(listed_ids(window)).isdisjoint(both)


def test_ctrl_f_and_ctrl_e_focus_the_search_box(qtbot, window) -> None:
    edit = window.mail_view.search_bar.edit
    window.activateWindow()
    for key in (Qt.Key.Key_F, Qt.Key.Key_E):
        window.message_list.setFocus()
        qtbot.waitUntil(lambda: window.message_list.hasFocus(), timeout=5_000)
        qtbot.keyClick(window.message_list, key, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: edit.hasFocus(), timeout=5_000)
    qtbot.keyClick(edit, Qt.Key.Key_Escape)  # an empty box: back to the list
    qtbot.waitUntil(lambda: window.message_list.hasFocus(), timeout=5_000)


def test_every_new_widget_has_an_accessible_name(window) -> None:
    bar = window.mail_view.search_bar
    nameless = [
        w.objectName() or type(w).__name__
        for w in [bar, *bar.findChildren(QWidget)]
        if w.focusPolicy() != Qt.FocusPolicy.NoFocus and not w.accessibleName()
    ]
    assert nameless == []


def test_track_a_result_through_the_crm(qtbot, window) -> None:
    """A result is a message like any other: Track works on it, its icon follows, and with
    the "Not tracked" filter on it leaves the results once tracked."""
    bar = window.mail_view.search_bar
    folder = inbox(window)
    bar.buttons[QuickFilter.NOT_TRACKED].click()
    untracked = store_search(window, "", folder=folder, filters={QuickFilter.NOT_TRACKED})
    qtbot.waitUntil(lambda: listed_ids(window) == untracked, timeout=10_000)
    target = untracked[0]
    window.select_rows([0])
    assert window.selected_row_ids() == [target]
    assert window.window_actions.track.isEnabled()
    with qtbot.waitSignal(window.tracking_done, timeout=30_000) as done:
        window.window_actions.track.trigger()
    assert done.args[0].errors == ()
    qtbot.waitUntil(lambda: target not in listed_ids(window), timeout=15_000)
    store = window.workspace.store()
    qtbot.waitUntil(lambda: store.message(target).track_state == TrackState.TRACKED, timeout=15_000)
    bar.buttons[QuickFilter.TRACKED].click()  # now among the tracked results, icon and all
    qtbot.waitUntil(lambda: target in listed_ids(window), timeout=10_000)
    row = listed_ids(window).index(target)
    model = window.message_model
    assert model.data(model.index(row, Column.STATE), TrackStateRole) == TrackState.TRACKED


def test_the_gui_thread_never_blocks_while_typing(qtbot, window) -> None:
    edit = window.mail_view.search_bar.edit
    bar = window.mail_view.search_bar
    bar.set_all_folders(True)
    meter = GapMeter()
    meter.start()
    for letter in "approval":
        qtbot.keyClicks(edit, letter)
        qtbot.wait(40)
    expected = store_search(window, "approval")
    qtbot.waitUntil(lambda: listed_ids(window) == expected, timeout=10_000)
    longest = meter.stop()
    QApplication.processEvents()
    assert meter.ticks > 5
    assert longest < MAX_GAP, f"the GUI thread was blocked for {longest:.2f} s"


def common_word(window, folder: str) -> str:
    """The subject word of this folder with the most matches in it."""
    model = window.message_model
    words = {
        w
        for r in range(model.rowCount())
        for w in str(model.index(r, Column.SUBJECT).data()).split()
        if w.isalpha() and len(w) > 3
    }
    return max(sorted(words), key=lambda w: len(store_search(window, w, folder=folder)))


def test_the_first_page_comes_first_then_every_match(qtbot, window) -> None:
    """Within a folder a keystroke shows the first page of results at once (an index walk),
    then every match with the count; what the list shows is the head of the whole list."""
    view, bar = window.mail_view, window.mail_view.search_bar
    view._search.page_size = 2
    folder = inbox(window)
    word = common_word(window, folder)
    expected = store_search(window, word, folder=folder)
    assert len(expected) > 2
    shown: list[tuple[str, bool, list[int], str]] = []
    view.results_shown.connect(
        lambda request, complete: shown.append(
            (request.text, complete, listed_ids(window), bar.results.text())
        )
    )
    bar.edit.setText(word)  # one change: one request
    qtbot.waitUntil(lambda: listed_ids(window) == expected, timeout=10_000)
    assert shown[0] == (word, False, expected[:2], "Searching…")
    assert shown[-1] == (word, True, expected, results_text(len(expected)))
    # (a change notice, e.g. the shown message marked read, may search again: same results)
    assert all(entry[:3] == (word, False, expected[:2]) for entry in shown if not entry[1])
    assert window.statusBar().currentMessage() == results_text(len(expected))
    qtbot.waitUntil(lambda: not view._search.busy, timeout=10_000)


def test_typing_fast_within_a_folder_ends_on_the_last_text(qtbot, window) -> None:
    """Keystrokes while a first page is shown and the whole list waits or runs: each newer
    text replaces the older, and the list ends with every match of the last one."""
    view, bar = window.mail_view, window.mail_view.search_bar
    view._search.page_size = 1
    folder = inbox(window)
    word = common_word(window, folder)
    for letter in word:
        qtbot.keyClicks(bar.edit, letter)
        qtbot.wait(5)
    expected = store_search(window, word, folder=folder)
    qtbot.waitUntil(
        lambda: (
            listed_ids(window) == expected and bar.results.text() == results_text(len(expected))
        ),
        timeout=10_000,
    )
    qtbot.waitUntil(lambda: not view._search.busy, timeout=10_000)
    bar.edit.clear()  # no words: the folder again, nothing left running
    qtbot.waitUntil(lambda: not view.searching(), timeout=10_000)
    assert not view._search.busy
