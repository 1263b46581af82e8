"""The search bar in a narrow window (issue 17: usable at 800×500): its minimum width fits,
the quick filters move into a drop-down when the buttons do not fit and come back when they
do, and a filter chosen from the drop-down filters the list like its button (real window,
demo workspace)."""

from __future__ import annotations

from core.store.search import QuickFilter, search
from desktop.search import SearchBar
from tests.desktop.test_search_bar import inbox, listed_ids


def test_minimum_width_and_the_overflow(qtbot) -> None:
    bar = SearchBar()
    qtbot.addWidget(bar)
    bar.resize(1000, 30)
    bar.show()
    qtbot.waitExposed(bar)
    assert bar.minimumSizeHint().width() <= 560
    assert not bar.compact and not bar.more.isVisible()
    assert all(b.isVisible() for b in bar.buttons.values())

    bar.resize(bar.minimumSizeHint().width(), 30)
    qtbot.waitUntil(lambda: bar.compact, timeout=5_000)
    assert bar.more.isVisible() and not any(b.isVisible() for b in bar.buttons.values())
    assert bar.edit.isVisible() and bar.scope.isVisible()
    with qtbot.waitSignal(bar.changed, timeout=5_000):
        bar.filter_actions[QuickFilter.UNREAD].trigger()
    assert bar.filters() == {QuickFilter.UNREAD}
    assert bar.more.text() == "Filters (1)"
    bar.buttons[QuickFilter.TRACKED].click()  # the one-of-three rule holds in the menu too
    bar.filter_actions[QuickFilter.NOT_TRACKED].trigger()
    assert bar.filters() == {QuickFilter.UNREAD, QuickFilter.NOT_TRACKED}
    assert not bar.filter_actions[QuickFilter.TRACKED].isChecked()
    bar.clear()
    assert bar.more.text() == "Filters"
    assert not any(a.isChecked() for a in bar.filter_actions.values())

    bar.resize(bar.full_width() + 10, 30)
    qtbot.waitUntil(lambda: not bar.compact, timeout=5_000)
    assert all(b.isVisible() for b in bar.buttons.values()) and not bar.more.isVisible()


def test_the_window_at_800_by_500_filters_from_the_drop_down(qtbot, window) -> None:
    window.resize(800, 500)
    qtbot.waitUntil(lambda: window.width() == 800 and window.height() == 500, timeout=5_000)
    bar = window.mail_view.search_bar
    qtbot.waitUntil(lambda: bar.compact, timeout=5_000)
    assert bar.width() >= bar.minimumSizeHint().width()
    right = bar.mapTo(window, bar.rect().topRight()).x()
    assert right <= window.width(), "the bar is not cut off"
    folder = inbox(window)
    everything = listed_ids(window)

    def unread() -> list[int]:  # read fresh: the shown message may be marked read meanwhile
        return search(window.workspace.store(), "", folder=folder, filters={QuickFilter.UNREAD})

    assert 0 < len(unread()) < len(everything)
    bar.filter_actions[QuickFilter.UNREAD].trigger()
    assert window.mail_view.search_bar.filters() == {QuickFilter.UNREAD}
    qtbot.waitUntil(lambda: listed_ids(window) == unread(), timeout=10_000)
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: not bar.compact, timeout=5_000)
    assert bar.buttons[QuickFilter.UNREAD].isChecked()
