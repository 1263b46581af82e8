"""The "Never track" section's explanation is never cut off (issue 17 screenshots: the
Options dialog at its first size showed half lines): in a tab page with little room, the
window grows to the wrapped text's height instead of squeezing it."""

from __future__ import annotations

from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from desktop.never_track import NeverTrackEditor


def test_the_intro_keeps_its_wrapped_height_in_a_small_tab(qtbot) -> None:
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    page = QWidget()
    filler = QWidget()
    filler.setMinimumHeight(300)  # the tracking options above the section
    editor = NeverTrackEditor()
    column = QVBoxLayout(page)
    column.addWidget(filler)
    column.addWidget(editor)
    tabs.addTab(page, "E-mail tracking")
    tabs.resize(560, 420)
    tabs.show()
    qtbot.waitExposed(tabs)
    intro = editor.intro

    def whole() -> bool:
        return intro.height() >= intro.heightForWidth(intro.width()) > 0

    qtbot.waitUntil(whole, timeout=5_000)
    assert intro.heightForWidth(intro.width()) > intro.fontMetrics().height() * 2  # wrapped
