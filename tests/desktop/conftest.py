"""GUI fixtures: the demo environment (emulator over HTTP + demo Maildir + real workspace) and
a main window attached to it, first sync done and first message shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

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
