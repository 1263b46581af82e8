"""The GUI thread never performs network, mailbox or heavy disk I/O: a sync against a slow
CRM (the emulator behind a loopback proxy that holds every response 40 ms) and a slow mailbox
(every folder listing and batch takes 100 ms) leaves the event loop turning — a 20 ms QTimer
never stalls more than a generous bound while the sync runs."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

from PySide6.QtCore import QTimer

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.model import Address
from core.mail.demo import create_demo_mailbox
from core.mail.maildir import MaildirBackend
from core.workspace.facade import Workspace
from desktop.mainwindow import MainWindow
from desktop.workers import Workers

DELAY_S = 0.1
STALL_BOUND_S = 0.25  # generous: the slow calls alone take DELAY_S each


class SlowProxy:
    """A loopback TCP proxy that delays every chunk from the server by ``delay`` seconds."""

    def __init__(self, upstream: str, delay: float) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.chunks = 0
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for src, dst, slow in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, slow), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        try:
            while data := src.recv(65536):
                if slow:
                    self.chunks += 1
                    time.sleep(self.delay)  # on the proxy's thread: the slow network
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closing = True
        self.listener.close()


class SlowMaildir(MaildirBackend):
    """A Maildir whose every call is slow (as a distant IMAP server would be)."""

    calls = 0

    def folders(self):  # type: ignore[no-untyped-def]
        SlowMaildir.calls += 1
        time.sleep(DELAY_S)
        return super().folders()

    def sync(self, folder, state, *args, **kwargs):  # type: ignore[no-untyped-def]
        for batch in super().sync(folder, state, *args, **kwargs):
            SlowMaildir.calls += 1
            time.sleep(DELAY_S)
            yield batch

    def fetch(self, ref):  # type: ignore[no-untyped-def]
        time.sleep(DELAY_S)
        return super().fetch(ref)


def test_event_loop_keeps_turning_during_a_slow_sync(qtbot, tmp_path: Path, crm_server) -> None:
    mailbox = create_demo_mailbox(tmp_path / "mailbox", messages=200)
    proxy = SlowProxy(crm_server.url, 0.04)
    crm = CrmClient(proxy.url, BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD))
    ws = Workspace(
        store_path=tmp_path / "store.sqlite",
        open_mailbox=lambda: SlowMaildir(mailbox),
        crm=crm,
        owner=Address(demo_data.ME.email, demo_data.ME.full_name),
        mailbox_name=demo_data.ME.email,
    )
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
            window.window_actions.sync_now.trigger()
            window.select_rows([0, 1, 2])
        timer.stop()
        assert SlowMaildir.calls >= 5, "the slow mailbox was really used"
        assert proxy.chunks >= 10, "the CRM was reached through the slow proxy"
        assert elapsed > SlowMaildir.calls * DELAY_S / 2 - 0.1
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        assert len(gaps) > 10
        assert max(gaps) < STALL_BOUND_S, f"longest stall {max(gaps) * 1000:.0f} ms"
        assert window.message_model.rowCount() > 0
    finally:
        window.detach_workspace()
        workers.wait()
        ws.close()
        proxy.close()
