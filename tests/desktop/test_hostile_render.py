"""The malformed-MIME corpus (tests/corpus/hostile.py), 50 MB attachment included, synced into
the real window and each message opened in the reading pane (issue 18, "the suite that keeps
it so"): no message freezes the window (the GUI thread is never blocked long: a 50 ms timer's
longest gap), each one shows (its subject, or what could be read) within a hang-guard, and the
process's peak memory grows by a bounded amount."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop.mainwindow import MainWindow
from desktop.messages import Column
from tests.corpus.hostile import corpus, write_big_attachment
from tests.desktop.conftest import demo_window_with
from tests.desktop.test_reader_bounds import GapMeter

MAX_GAP = 2.0  # seconds the GUI thread may be blocked (a generous hang-guard)
MAX_GROWTH_MB = 1500  # peak RSS growth over the whole corpus, 50 MB attachment included


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture
def window(qtbot, tmp_path: Path) -> Iterator[MainWindow]:
    def add(mailbox: Path) -> None:
        for n, raw in enumerate(corpus().values()):
            (mailbox / "new" / f"99999999{n:02d}.hostile.local").write_bytes(raw)
        write_big_attachment(mailbox / "new" / "9999999999.big.local")

    with demo_window_with(qtbot, tmp_path, add, messages=5) as win:
        yield win


def test_every_hostile_message_opens_without_freezing_the_window(qtbot, window) -> None:
    model = window.message_model
    subjects = {
        row: str(model.data(model.index(row, Column.SUBJECT)) or "")
        for row in range(model.rowCount())
    }
    hostile = [row for row, subject in subjects.items() if "[corpus" in subject]
    assert len(hostile) == len(corpus()) + 1, sorted(subjects.values())
    before = _peak_mb()
    stalls: dict[str, float] = {}
    for row in hostile:
        meter = GapMeter()
        meter.start()
        with qtbot.waitSignal(window.message_shown, timeout=60_000):
            window.mail_view.select_rows([row])
        qtbot.wait(50)
        window.grab()  # laid out and painted
        stalls[subjects[row][:40]] = meter.stop()
        pane = window.reading_pane
        assert pane.subject.text().startswith("[corpus"), subjects[row][:80]
    growth = _peak_mb() - before
    worst = max(stalls, key=lambda k: stalls[k])
    print(
        f"\nhostile corpus: {len(hostile)} messages, longest GUI stall {stalls[worst]:.2f} s "
        f"({worst}), peak memory +{growth:.0f} MB"
    )
    assert stalls[worst] < MAX_GAP, f"the GUI thread was blocked: {stalls}"
    assert growth < MAX_GROWTH_MB
