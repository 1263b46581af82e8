"""The status bar while the CRM throttles: after a real 429 from the emulator's service
protection limits it says "The CRM asked to slow down; work resumes at HH:MM:SS" (the
client's Retry-After, local time), read from the throttle's memory by a timer on the GUI
thread, and the message clears by itself once the wait is over."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtWidgets import QMainWindow
from starlette.middleware import Middleware

from core.crm import BasicAuth, CrmClient, CrmError
from core.domain import demo_data
from crmserver import RunningServer, Settings, run_in_thread
from crmserver.limits import Limits, ProtectionStats, ServiceProtection
from desktop.statusbar import StatusPanel, ThrottleWatch

MESSAGE = re.compile(r"^The CRM asked to slow down; work resumes at (\d\d:\d\d:\d\d)$")


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[RunningServer, ProtectionStats]]:
    """The emulator admitting 2 requests per 2 s per user."""
    stats = ProtectionStats()
    middleware = [Middleware(ServiceProtection, limits=Limits(requests=2, window=2), stats=stats)]
    with run_in_thread(
        Settings(db_path=tmp_path / "org.db", seed="demo"), middleware=middleware
    ) as server:
        yield server, stats


def test_the_status_bar_says_when_work_resumes_and_clears(
    qtbot, limited: tuple[RunningServer, ProtectionStats]
) -> None:
    server, stats = limited
    window = QMainWindow()
    qtbot.addWidget(window)
    panel = StatusPanel(window.statusBar())
    crm = CrmClient(server.url, BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD), timeout=30)
    host = SimpleNamespace(workspace=SimpleNamespace(crm=crm))
    watch = ThrottleWatch(host, panel, interval_ms=20)  # type: ignore[arg-type]
    window.show()
    assert not panel.throttle.isVisible()
    errors: list[BaseException] = []

    def calls() -> None:  # a background sync's requests, on a worker
        try:
            for _ in range(4):
                crm.who_am_i()
        except CrmError as exc:
            errors.append(exc)

    worker = threading.Thread(target=calls)
    with qtbot.waitSignal(watch.changed, timeout=30_000) as changed:
        worker.start()
    state = changed.args[0]
    assert state.throttled and state.until is not None
    found = MESSAGE.match(panel.throttle.text())
    assert found, panel.throttle.text()
    assert found.group(1) == state.until.astimezone().strftime("%H:%M:%S")
    assert panel.throttle.isVisible()
    assert "service protection limits" in panel.throttle.toolTip()
    qtbot.waitUntil(lambda: not panel.throttle.isVisible(), timeout=30_000)
    assert panel.throttle.text() == ""
    worker.join(30)
    assert errors == [] and stats.throttled >= 1  # the requests waited, then went through
    watch.timer.stop()
    crm.close()
