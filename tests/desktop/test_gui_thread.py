"""The GUI thread never performs network, mailbox or heavy disk I/O: a sync against a slow
mailbox (every folder listing and batch takes 100 ms, on the worker) leaves the event loop
turning — a 20 ms QTimer never stalls more than a generous bound while the sync runs."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer

from core import demo_data
from core.crm import BasicAuth, CrmClient
from core.mail.demo import create_demo_mailbox
from core.mail.maildir import MaildirBackend
from core.model import Address
from core.workspace import Workspace
from desktop.mainwindow import MainWindow
from desktop.workers import Workers

DELAY_S = 0.1
STALL_BOUND_S = 0.25  # generous: the slow calls alone take DELAY_S each


class SlowMaildir(MaildirBackend):
    """A Maildir whose every call is slow (as a distant IMAP server would be)."""

    calls = 0

    def folders(self):  # type: ignore[no-untyped-def]
        SlowMaildir.calls += 1
        time.sleep(DELAY_S)
        return super().folders()

    def sync(self, folder, state):  # type: ignore[no-untyped-def]
        for batch in super().sync(folder, state):
            SlowMaildir.calls += 1
            time.sleep(DELAY_S)
            yield batch

    def fetch(self, ref):  # type: ignore[no-untyped-def]
        time.sleep(DELAY_S)
        return super().fetch(ref)


def test_event_loop_keeps_turning_during_a_slow_sync(qtbot, tmp_path: Path, crm_server) -> None:
    mailbox = create_demo_mailbox(tmp_path / "mailbox", messages=200)
    crm = CrmClient(crm_server.url, BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD))
    ws = Workspace(store_path=tmp_path / "store.sqlite",
                   open_mailbox=lambda: SlowMaildir(mailbox), crm=crm,
                   owner=Address(demo_data.ME.email, demo_data.ME.full_name),
                   mailbox_name=demo_data.ME.email)
    workers = Workers()
    window = MainWindow(workers)
    qtbot.addWidget(window)
    window.show()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    SlowMaildir.calls = 0
    try:
        started = time.perf_counter()
        with qtbot.waitSignal(window.mail_synced, timeout=120_000):
            window.set_workspace(ws)
        elapsed = time.perf_counter() - started
        # A second sync ("Sync now") while the user clicks around.
        with qtbot.waitSignal(window.mail_synced, timeout=120_000):
            window.actions.sync_now.trigger()
            window.select_rows([0, 1, 2])
        timer.stop()
        assert SlowMaildir.calls >= 5, "the slow mailbox was really used"
        assert elapsed > SlowMaildir.calls * DELAY_S / 2 - 0.1
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        assert len(gaps) > 10
        assert max(gaps) < STALL_BOUND_S, f"longest stall {max(gaps) * 1000:.0f} ms"
        assert window.message_model.rowCount() > 0
    finally:
        window.detach_workspace()
        workers.wait()
        ws.close()
