"""The GUI thread never does CRM I/O, even while the CRM throttles: 50 messages tracked from
the window's Track action are replayed against the emulator (over HTTPS) limited to a few
requests per second. Every request is sent on a worker, every operation runs exactly once,
no request comes inside a Retry-After window, and the event loop keeps turning meanwhile."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QTimer
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.model import Address, TrackState
from core.mail.demo import create_demo_mailbox
from core.mail.maildir import MaildirBackend
from core.workspace.facade import Workspace
from crmserver import RunningServer, Settings, TlsFiles, run_in_thread
from crmserver.limits import Limits, ProtectionStats, ServiceProtection
from crmserver.storage import Storage
from desktop.mainwindow import MainWindow
from desktop.messages import Column
from desktop.roles import TrackStateRole
from desktop.workers import Workers
from tests.plugins.crm import crm_ssl_context

TRACKED = 50
LIMITS = Limits(requests=15, window=1)


class ThreadRecorder(httpx.HTTPTransport):
    """The workspace CrmClient's transport: notes the thread each request is sent on."""

    def __init__(self, verify: ssl.SSLContext, sent_on: list[int]) -> None:
        super().__init__(verify=verify)
        self.sent_on = sent_on

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent_on.append(threading.get_ident())
        return super().handle_request(request)


@dataclass
class Switch:
    """Whether the service protection limits apply (off while the window sets up)."""

    on: bool = False
    stats: ProtectionStats = field(default_factory=ProtectionStats)


class SwitchedLimits:
    """ASGI middleware: the emulator's real ServiceProtection, or nothing, per ``switch``."""

    def __init__(self, app: ASGIApp, switch: Switch) -> None:
        self.app = app
        self.limited = ServiceProtection(app, LIMITS, stats=switch.stats)
        self.switch = switch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.limited if self.switch.on else self.app)(scope, receive, send)


@pytest.fixture
def throttling(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[tuple[RunningServer, Switch]]:
    switch = Switch()
    with run_in_thread(
        Settings(db_path=tmp_path / "org.db", seed="demo"),
        tls=crm_tls,
        middleware=[Middleware(SwitchedLimits, switch=switch)],
    ) as server:
        yield server, switch


def _state(window: MainWindow, row: int) -> object:
    model = window.message_model
    return model.data(model.index(row, Column.STATE), TrackStateRole)


def _untracked(window: MainWindow) -> list[int]:
    count = window.message_model.rowCount()
    return [r for r in range(count) if _state(window, r) == TrackState.NOT_TRACKED]


def _message_ids(db: Path) -> list[str]:
    storage = Storage(db)
    try:
        return [str(r["messageid"]) for r in storage.query("SELECT messageid FROM email")]
    finally:
        storage.close()


def test_a_throttled_replay_never_touches_the_gui_thread(
    qtbot, tmp_path: Path, throttling: tuple[RunningServer, Switch]
) -> None:
    server, switch = throttling
    gui = threading.get_ident()
    sent_on: list[int] = []
    crm = CrmClient(
        server.url,
        BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD),
        transport=ThreadRecorder(crm_ssl_context(server), sent_on),
    )
    mailbox = create_demo_mailbox(tmp_path / "mailbox", messages=150)
    ws = Workspace(
        store_path=tmp_path / "store.sqlite",
        open_mailbox=lambda: MaildirBackend(mailbox),
        crm=crm,
        owner=Address(demo_data.ME.email, demo_data.ME.full_name),
        mailbox_name=demo_data.ME.email,
    )
    workers = Workers()
    window = MainWindow(workers)
    qtbot.addWidget(window)
    window.show()
    ticks = [0]
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.__setitem__(0, ticks[0] + 1))
    try:
        with qtbot.waitSignal(window.mail_synced, timeout=60_000):
            window.set_workspace(ws)
        qtbot.waitUntil(lambda: len(_untracked(window)) >= TRACKED, timeout=60_000)
        qtbot.waitUntil(window.window_actions.sync_now.isEnabled, timeout=60_000)
        rows = _untracked(window)[:TRACKED]
        before = _message_ids(Path(server.settings.db_path))
        window.select_rows(rows)
        switch.on = True
        sent_before = len(sent_on)
        timer.start()
        with qtbot.waitSignal(window.tracking_done, timeout=120_000) as done:
            window.window_actions.track.trigger()
        timer.stop()
        switch.on = False
        replay_ticks = ticks[0]
        assert done.args[0].errors == ()
        qtbot.waitUntil(
            lambda: [_state(window, r) for r in rows] == [TrackState.TRACKED] * TRACKED,
            timeout=10_000,
        )
        assert ws.queued_count() == 0
    finally:
        timer.stop()
        window.detach_workspace()
        workers.wait()
        ws.close()
    added = [m for m in _message_ids(Path(server.settings.db_path)) if m not in before]
    assert len(added) == TRACKED == len(set(added))  # every Track ran exactly once
    assert len(sent_on) - sent_before >= TRACKED  # the replay's requests were seen …
    assert gui not in sent_on  # … and none, nor any other CRM request, on the GUI thread
    stats = switch.stats
    assert stats.throttled >= 1  # the limit did bite …
    assert stats.violations == 0  # … and nothing was sent inside a Retry-After window
    assert replay_ticks >= 10  # the event loop kept turning while the replay waited
