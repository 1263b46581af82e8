"""Figures ``search_keystroke`` and ``search_stall`` of the search bar (issue 17).

A store of ``size`` (default 100,000) messages in one folder, every one with a cached body
(plain-text mail of 60-200 words drawn from a Zipf-distributed vocabulary of business English
and made-up names, so common words match most mail and rare ones a handful), indexed as the
body cache indexes them.

``search_keystroke``: words typed letter by letter into the real search box (``MailView`` over
the store, offscreen); for each keystroke, the time from the key press to the first page of
that text's results on screen: the list's first paint after it took them, or the moment they
came when the list already showed exactly those rows (the search runs on a worker: the first
page in the list's order, then every match; the list pages the result ids). Baseline: the bare
FTS5 query for the same text, quoted and with the last word a prefix as ours (``SELECT rowid
FROM message_search WHERE message_search MATCH ?``, every match fetched into Python, best of
3) on its own connection to the same file.
Figure: p95 of ours over p95 of the baseline, same keystrokes. Target: ratio <= 3.

``search_stall``: the longest gap between ticks of a 20 ms timer on the GUI thread while the
same words are typed at 60 ms a key (faster than results come for common prefixes, so searches
are cancelled and coalesced), as a ratio against a 50 ms budget. Target: ratio <= 1. With it,
the CPU time the GUI thread and the whole process had within that gap, and the load average:
on a shared machine a long gap with little CPU in it was spent waiting for a core.

Run: ``python -m bench search [--size N]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QSplitter  # noqa: E402

from bench._harness import figure, print_figures  # noqa: E402

BENCH = "search"
DEFAULT_SIZE = 100_000
STALL_BUDGET_MS = 50.0
TICK_MS = 20
TYPING_MS = 60
#: Words typed, from very common to rare (and one sender name, one address part).
WORDS = ("meeting", "invoice", "proposal", "quarterly", "warehouse", "hendricks", "okonkwo")

_COMMON = (
    "the and to of a in for is on that with we you this be are at as it will our have from by "
    "please can your an or not let me know if would all has been thanks regards team meeting "
    "invoice proposal order delivery contract price budget report review schedule call project "
    "update customer account payment quote shipment agreement renewal discount support monday "
    "tuesday wednesday thursday friday next week today tomorrow morning afternoon attached draft "
    "final approval request follow up question details information office client sales "
    "quarterly forecast pipeline opportunity partner product service license installation "
    "training warehouse logistics inventory freight customs purchase reference number total"
)
_NAMES = (
    "hendricks okonkwo nakamura fitzgerald castellanos lindqvist abernathy montgomery "
    "villanueva kowalczyk oyelaran"
)
COMMON, NAMES = _COMMON.split(), _NAMES.split()


def _vocabulary(rnd: random.Random, extra: int = 8000) -> list[str]:
    syllables = ["ka", "lo", "min", "tre", "sa", "vor", "del", "qui", "ran", "bel", "tos", "mar"]
    made_up = {"".join(rnd.choices(syllables, k=rnd.randint(2, 4))) for _ in range(extra)}
    return COMMON + NAMES + sorted(made_up)


def _mime(i: int, sender: str, subject: str, body: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: me@contoso.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <search-{i}@bench.example>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def build_store(path: Path, size: int) -> None:
    """``size`` messages in "Inbox", each with a cached, indexed body."""
    from core.domain.model import Address, MailRef, MessageHeader
    from core.store import Store

    rnd = random.Random(17)
    vocab = _vocabulary(rnd)
    weights = [1.0 / (rank + 1) ** 1.05 for rank in range(len(vocab))]
    people = [
        (f"{rnd.choice(NAMES).title()} {w.title()}", f"{w}@{rnd.choice(NAMES)}.example")
        for w in rnd.sample(vocab[len(COMMON) :], 900)
    ]
    store = Store.open(path)
    base = datetime(2021, 1, 1, tzinfo=UTC)
    with store.deferred_checkpoint():
        for start in range(0, size, 5000):
            count = min(5000, size - start)
            words = rnd.choices(vocab, weights, k=count * 210)
            headers, bodies = [], []
            for k in range(count):
                i = start + k
                name, email = people[i % len(people)]
                chunk = words[k * 210 : k * 210 + rnd.randint(66, 206)]
                subject = " ".join(chunk[:6]).capitalize()
                headers.append(
                    MessageHeader(
                        MailRef("Inbox", str(i)),
                        f"<search-{i}@bench.example>",
                        subject=subject,
                        sender=Address(email, name),
                        to=(Address("me@contoso.example", "Me"),),
                        date=base + timedelta(minutes=i),
                        size=2000,
                        is_read=bool(i % 3),
                    )
                )
                bodies.append((i, _mime(i, email, subject, " ".join(chunk[6:]))))
            store.upsert_headers(headers)
            ids = dict(
                store.conn.execute(
                    "SELECT uid, id FROM messages WHERE folder = 'Inbox' AND uid IN "
                    f"({', '.join('?' * count)})",
                    [str(i) for i, _ in bodies],
                ).fetchall()
            )
            store.bodies.put_many((ids[str(i)], raw) for i, raw in bodies)
    store.close()


class _Workspace:
    """What MailView needs of a workspace here: a store per thread on the file. Opening a
    message is refused (the benchmark measures the list, not the reading pane)."""

    def __init__(self, path: Path) -> None:
        from core.workspace.stores import StorePool

        self._pool = StorePool(path)

    def store(self) -> Any:
        return self._pool.store()

    def load_message(self, row_id: int) -> Any:
        raise LookupError("not in this benchmark")

    def close(self) -> None:
        self._pool.close()


class _Host:
    def __init__(self, workspace: _Workspace) -> None:
        self.workspace: Any = workspace
        self.local_options = None
        self.said = ""

    def say(self, text: str, msecs: int = 0) -> None:
        self.said = text

    def sync_now(self) -> None: ...
    def update_actions(self) -> None: ...
    def apply_local_options(self, options: Any) -> None: ...
    def connection_saved(self, profile: str) -> None: ...
    def sign_in_changed(self, signed_in: bool) -> None: ...


class _Painted(QObject):
    """Notes the time of the list viewport's paints."""

    def __init__(self) -> None:
        super().__init__()
        self.at = 0.0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Paint:
            self.at = time.perf_counter()
        return False


def _wait(app: QApplication, done: Callable[[], bool], timeout: float = 60.0) -> None:
    """Run the event loop (idle between events, as a user's window is: a busy loop would take
    a core from the worker) until ``done()``, looked at every millisecond."""
    if done():
        return
    deadline = time.perf_counter() + timeout
    loop = QEventLoop()
    check = QTimer()
    check.setInterval(1)
    check.timeout.connect(lambda: loop.quit() if done() or time.perf_counter() > deadline else None)
    check.start()
    loop.exec()
    check.stop()
    if not done():
        raise RuntimeError("timed out")


def _keystrokes(app: QApplication, view: Any, painted: _Painted) -> tuple[list[float], list[str]]:
    """Per keystroke: key press → its results' first page on screen (seconds), and the texts.
    On screen: the list's first paint after it took the rows (``results_shown`` after a layout
    change), or at ``results_shown`` when the list already showed them."""
    edit = view.search_bar.edit
    layout = [0.0]  # when the list last took new rows
    shown: dict[str, tuple[float, float]] = {}  # text → (results_shown, layout change)
    view.model.layoutChanged.connect(lambda *_: layout.__setitem__(0, time.perf_counter()))
    view.results_shown.connect(
        lambda request, _complete: shown.setdefault(request.text, (time.perf_counter(), layout[0]))
    )
    times, texts = [], []
    for word in WORDS:
        view.search_bar.clear()
        _wait(app, lambda: not view.searching())
        for letter in word:
            text = edit.text() + letter
            shown.clear()
            start = time.perf_counter()
            QTest.keyClick(edit, letter)
            _wait(app, lambda text=text: text in shown)  # noqa: B023
            at, laid_out = shown[text]
            if laid_out > start:  # the list took this text's rows: on screen at its next paint
                _wait(app, lambda laid_out=laid_out: painted.at > laid_out)  # noqa: B023
                at = painted.at
            times.append(at - start)
            texts.append(text)
    return times, texts


def _bare(path: Path, texts: list[str]) -> list[float]:
    from core.store.search import fts_query

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA cache_size = -32768")
    out = []
    for text in texts:
        match = fts_query(text)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            conn.execute(
                "SELECT rowid FROM message_search WHERE message_search MATCH ?", (match,)
            ).fetchall()
            best = min(best, time.perf_counter() - start)
        out.append(best)
    conn.close()
    return out


def _stall(app: QApplication, view: Any) -> tuple[float, float, float]:
    """Longest GUI-thread gap while typing every word at TYPING_MS a key (ms), with the CPU
    time the GUI thread and the whole process had within it (ms): a gap with little CPU
    in it was spent waiting (for the GIL, or for a core on a loaded machine), not working."""
    ticks: list[tuple[float, float, float]] = []
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(
        lambda: ticks.append((time.perf_counter(), time.thread_time(), time.process_time()))
    )
    timer.start()
    edit = view.search_bar.edit
    for word in WORDS:
        view.search_bar.clear()
        for letter in word:
            QTest.keyClick(edit, letter)
            until = time.perf_counter() + TYPING_MS / 1000
            _wait(app, lambda until=until: time.perf_counter() >= until)  # noqa: B023
        _wait(app, lambda: not view._search.busy)
        end = time.perf_counter() + 0.1
        _wait(app, lambda end=end: time.perf_counter() >= end)  # noqa: B023
    timer.stop()
    if len(ticks) < 2:
        return 0.0, 0.0, 0.0
    gap, at = max((b[0] - a[0], i) for i, (a, b) in enumerate(zip(ticks, ticks[1:], strict=False)))
    before, after = ticks[at], ticks[at + 1]
    return gap * 1000, (after[1] - before[1]) * 1000, (after[2] - before[2]) * 1000


def _percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def measure(app: QApplication, path: Path, size: int) -> list[dict[str, Any]]:
    from desktop.mailview import MailView
    from desktop.ops import ChangeBus
    from desktop.workers import Workers

    workers = Workers()
    ws = _Workspace(path)
    host = _Host(ws)
    view = MailView(host, workers, ChangeBus())  # type: ignore[arg-type]
    window = QSplitter()
    window.addWidget(view.panel)
    window.addWidget(view.pane)
    window.resize(1100, 700)
    window.show()
    painted = _Painted()
    view.list.viewport().installEventFilter(painted)
    view.show_folder("Inbox")
    _wait(app, lambda: view.model.rowCount() == size)
    app.processEvents()
    times, texts = _keystrokes(app, view, painted)
    bare = _bare(path, texts)
    load = os.getloadavg()[0]
    stall, gui_cpu, process_cpu = _stall(app, view)
    for watched in (view.list, view.list.viewport()):  # no filter call from a list being torn down
        watched.removeEventFilter(view)
    window.close()
    view.detach()
    workers.wait()
    ws.close()
    ours_p95, bare_p95 = _percentile(times, 95), _percentile(bare, 95)
    common = {"messages": size, "keystrokes": len(times), "words": list(WORDS)}
    return [
        figure(
            BENCH,
            "search_keystroke",
            value=ours_p95,
            unit="s",
            baseline=bare_p95,
            ratio=ours_p95 / bare_p95,
            target=3.0,
            median_s=round(statistics.median(times), 4),
            baseline_median_s=round(statistics.median(bare), 4),
            **common,
        ),
        figure(
            BENCH,
            "search_stall",
            value=stall,
            unit="ms",
            baseline=STALL_BUDGET_MS,
            ratio=stall / STALL_BUDGET_MS,
            target=1.0,
            typing_ms=TYPING_MS,
            gap_gui_cpu_ms=round(gui_cpu, 1),
            gap_process_cpu_ms=round(process_cpu, 1),
            load_avg=round(load, 1),
            **common,
        ),
    ]


def run(size: int | None = None) -> list[dict[str, Any]]:
    # Opening a message is refused here on purpose: no traceback per selection change.
    logging.getLogger("desktop.workers").setLevel(logging.ERROR)
    from desktop.app import tune_gil

    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    tune_gil()  # as the app does
    n = size or DEFAULT_SIZE
    with tempfile.TemporaryDirectory(prefix="trackbox-bench-search-") as tmp:
        path = Path(tmp) / "store.sqlite"
        start = time.perf_counter()
        build_store(path, n)
        built = time.perf_counter() - start
        # Opening the store must not pay for the index: a second open is the app's start.
        from core.store import Store

        start = time.perf_counter()
        Store.open(path).close()
        opened = time.perf_counter() - start
        figures = measure(app, path, n)
        for fig in figures:
            fig["build_s"] = round(built, 1)
            fig["open_s"] = round(opened, 3)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None)
    print_figures(run(parser.parse_args().size))
