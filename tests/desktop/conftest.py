"""GUI fixtures: the demo environment (emulator over HTTP + demo Maildir + real workspace) and
a main window attached to it, first sync done and first message shown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from core.mail.demo import create_demo_mailbox
from desktop.demo import DemoEnvironment, start_demo
from desktop.mainwindow import MainWindow
from desktop.workers import Workers


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoEnvironment]:
    env = start_demo(tmp_path / "demo", messages=120)
    yield env
    env.close()


@pytest.fixture
def workers() -> Iterator[Workers]:
    w = Workers()
    yield w
    w.wait()


@pytest.fixture
def window(qtbot, demo: DemoEnvironment, workers: Workers) -> Iterator[MainWindow]:
    win = MainWindow(workers)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.message_shown, timeout=60_000):
        win.set_workspace(demo.workspace)
    qtbot.waitUntil(lambda: win.window_actions.sync_now.isEnabled(), timeout=60_000)
    yield win
    win.detach_workspace()
    QApplication.processEvents()  # deliver late results while the window ignores them
    workers.wait()


@contextmanager
def demo_window_with(
    qtbot, tmp_path: Path, add: Callable[[Path], None], messages: int = 10
) -> Iterator[MainWindow]:
    """A main window on a demo whose Inbox (a Maildir: ``add`` writes into it, e.g. into
    ``new/``) holds extra messages, synced and with its first message shown."""
    data = tmp_path / "demo"
    add(create_demo_mailbox(data / "mailbox", messages=messages))
    env = start_demo(data, messages=messages)
    workers = Workers()
    win = MainWindow(workers)
    qtbot.addWidget(win)
    win.show()
    try:
        with qtbot.waitSignal(win.message_shown, timeout=180_000):
            win.set_workspace(env.workspace)
        qtbot.waitUntil(lambda: win.window_actions.sync_now.isEnabled(), timeout=180_000)
        yield win
    finally:
        win.detach_workspace()
        QApplication.processEvents()
        workers.wait()
        env.close()
