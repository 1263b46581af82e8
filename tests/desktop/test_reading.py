"""The reading pane: banner reasons per state, regarding link, unresolved addresses with
"resolve…"; the sanitiser in the real window: a hostile HTML mail loads nothing remote (a
local HTTP server the URLs point to sees zero requests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from core.domain.model import Address, MailRef, MessageHeader, Reason, RecordRef, TrackState
from core.mail.demo import create_demo_mailbox
from core.workspace.reading import MessageView
from desktop.demo import start_demo
from desktop.mainwindow import MainWindow
from desktop.reader import ReadingPane


def view(
    state: TrackState,
    reason: str = "",
    regarding: RecordRef | None = None,
    unresolved: tuple[Address, ...] = (),
) -> MessageView:
    header = MessageHeader(
        MailRef("Inbox", "1"),
        "<m1@x.example>",
        subject="Hello",
        sender=Address("jane@x.example", "Jane"),
        date=datetime(2026, 1, 2, 9, 30, tzinfo=UTC),
    )
    return MessageView(
        row_id=1,
        header=header,
        track_state=state,
        regarding=regarding,
        reason=Reason("code", reason) if reason else None,
        activity_id="a1",
        activity_url="http://crm.example/main.aspx?etn=email&id=a1",
        regarding_url="http://crm.example/main.aspx?etn=account&id=r1" if regarding else None,
        body_html=None,
        body_text="Body",
        attachments=(),
        unresolved=unresolved,
    )


@pytest.mark.parametrize(
    ("state", "reason", "label"),
    [
        (TrackState.TRACKED, "Correlated by the tracking token CRM:0001001", "Tracked in CRM"),
        (TrackState.TRACKED_BY_OTHER, "Tracked by Sam Lee", "Tracked in CRM by someone else"),
        (
            TrackState.NOT_TRACKED,
            "Your options track only replies to CRM mail",
            "Not tracked in CRM",
        ),
        (TrackState.FAILED, "The CRM refused: size limit", "Tracking failed"),
        (TrackState.NEEDS_ATTENTION, "Sender matches 2 contacts", "Needs attention"),
    ],
)
def test_banner_says_state_and_reason(qtbot, state, reason, label) -> None:
    pane = ReadingPane()
    qtbot.addWidget(pane)
    pane.show()
    pane.show_view(view(state, reason, RecordRef("account", "r1", "Fabrikam Inc.")))
    text = pane.banner.text.text()
    assert pane.banner.isVisible()
    assert label in text and reason in text
    assert 'href="http://crm.example/main.aspx?etn=account&amp;id=r1">Fabrikam Inc.</a>' in text
    if state in (TrackState.TRACKED, TrackState.TRACKED_BY_OTHER):
        assert "View in CRM" in text
    pane.set_banner_enabled(False)
    assert not pane.banner.isVisible()


def test_unresolved_addresses_are_red_with_resolve(qtbot) -> None:
    pane = ReadingPane()
    qtbot.addWidget(pane)
    pane.show_view(
        view(
            TrackState.NEEDS_ATTENTION,
            "Unresolved recipient",
            unresolved=(Address("who@nowhere.example", "Who"),),
        )
    )
    text = pane.banner.text.text()
    assert "#c62828" in text and "who@nowhere.example" in text
    assert 'href="resolve:who@nowhere.example">resolve…</a>' in text
    with qtbot.waitSignal(pane.banner.resolve_requested) as asked:
        pane.banner.text.linkActivated.emit("resolve:who@nowhere.example")
    assert asked.args == ["who@nowhere.example"]


class _Counter(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        _Counter.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    _Counter.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def hostile_message(base: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Tracker <ads@tracker.example>"
    msg["To"] = "alex.morgan@contoso.example"
    msg["Subject"] = "Hostile HTML"
    msg["Message-ID"] = "<hostile-1@tracker.example>"
    msg["Date"] = "Fri, 01 Jan 2038 10:00:00 +0000"  # newest: shown first
    msg.set_content("plain part")
    msg.add_alternative(
        f"""<html><head>
<link rel="stylesheet" href="{base}/style.css"><script src="{base}/evil.js"></script>
<style>body {{ background: url({base}/bg.png) }}</style></head>
<body onload="fetch('{base}/onload')"><p>Visible text</p>
<img src="{base}/pixel.png" width="1" height="1">
<img srcset="{base}/a.png 1x, {base}/b.png 2x">
<div style="background-image:url('{base}/div.png')">x</div>
<iframe src="{base}/frame.html"></iframe><video poster="{base}/poster.png"></video>
<script>document.write('<img src="{base}/written.png">')</script>
<a href="javascript:alert(1)">click</a></body></html>""",
        subtype="html",
    )
    return msg.as_bytes()


def test_html_mail_loads_nothing_remote(qtbot, tmp_path: Path, http_server: str) -> None:
    data = tmp_path / "demo"
    mailbox = create_demo_mailbox(data / "mailbox", messages=20)
    (mailbox / "new" / "9999999999.hostile.local").write_bytes(hostile_message(http_server))
    env = start_demo(data, messages=20)
    from desktop.workers import Workers

    workers = Workers()
    window = MainWindow(workers)
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(window.message_shown, timeout=60_000):
            window.set_workspace(env.workspace)
        qtbot.waitUntil(
            lambda: window.reading_pane.subject.text() == "Hostile HTML", timeout=30_000
        )
        pane = window.reading_pane
        assert "Visible text" in pane.body.toPlainText()
        html = pane.body.toHtml()
        assert "127.0.0.1" not in html and "<script" not in html.lower()
        assert "javascript:" not in html
        assert pane.notice.isVisible() and "blocked" in pane.notice.text()
        pane.body.grab()  # lay out and paint: any resource would be requested now
        window.grab()
        assert _Counter.hits == []
        # The server does count requests (the assertion above is not vacuous).
        httpx.get(f"{http_server}/control", timeout=5)
        assert _Counter.hits == ["/control"]
    finally:
        window.detach_workspace()
        workers.wait()
        env.close()
