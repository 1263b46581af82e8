"""GUI fixtures: the demo environment (emulator over HTTP + demo Maildir + real workspace) and
a main window attached to it, first sync done and first message shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PySide6.QtWidgets import QApplication

from core import demo_data
from core.demo import DemoEnvironment, start_demo
from desktop.mainwindow import MainWindow
from desktop.workers import Workers


def crm_emails_with(env: DemoEnvironment, message_id: str) -> list[dict]:
    """The CRM's e-mail activities with this Message-ID (asked over HTTP, not via the app)."""
    literal = message_id.replace("'", "''")
    response = httpx.get(
        env.crm_url + "/api/data/v9.2/emails",
        params={"$filter": f"messageid eq '{literal}'",
                "$select": "activityid,messageid,_regardingobjectid_value"},
        auth=(demo_data.ME.email, demo_data.DEMO_PASSWORD),
        headers={"Accept": "application/json", "OData-Version": "4.0"}, timeout=10)
    response.raise_for_status()
    return response.json()["value"]


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
    qtbot.waitUntil(lambda: win.actions.sync_now.isEnabled(), timeout=60_000)
    yield win
    win.detach_workspace()
    QApplication.processEvents()  # deliver late results while the window ignores them
    workers.wait()
