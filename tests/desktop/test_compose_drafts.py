"""Compose (issue 17, Writing) on real servers: drafts auto-saved to a local file and to the
Dovecot Drafts folder (one copy, ``\\Draft``), Save / Discard / Cancel on close, reopening from
the store, Ctrl+Enter, sanitised rich text, forwards with attachments, replies from Sent Items,
the tracking notice against the toggle, the mailbox away and back, the GUI thread free of I/O,
and a draft landing in Drafts on the fake Graph server."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from core.domain import demo_data
from core.domain.model import Address
from core.mail import MailBackend, open_backend
from core.mail.drafts import DRAFT_ID_HEADER, build_mime, sanitized
from core.workspace.drafts import DraftBox
from crmserver import RunningServer
from desktop import compose_drafts
from desktop.compose import ComposeWindow, open_draft
from desktop.compose_drafts import CANCEL, DISCARD, SAVE
from desktop.ops import ChangeBus
from desktop.workers import Workers
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer
from tests.sync.env import ME, Env

JANE = Address("jane.doe@fabrikam.example", "Jane Doe")
MARK = Address("mark.chen@fabrikam.example", "Mark Chen")


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    yield Env(fresh_crm, dovecot, smtp_server, tmp_path)


class Setup:
    def __init__(self, env: Env, qtbot: Any) -> None:
        self.env = env
        self.qtbot = qtbot
        self.ws, self.user = env.workspace("compose")
        self.workers = Workers()
        self.bus = ChangeBus()
        self.windows: list[ComposeWindow] = []

    def compose(self, **kw: Any) -> ComposeWindow:
        window = ComposeWindow(self.ws, self.workers, self.bus, autosave_seconds=3600, **kw)
        self.qtbot.addWidget(window)
        self.windows.append(window)
        window.show()
        self.qtbot.waitUntil(lambda: window.decision is not None, timeout=20_000)
        return window

    def imap(self) -> IMAPClient:
        imap = IMAPClient(self.env.dovecot.host, self.env.dovecot.imap_port, ssl=False)
        imap.login(self.user, PASSWORD)
        return imap

    def drafts_on_server(self) -> list[tuple[tuple[bytes, ...], bytes]]:
        """(flags, raw) of each message in the Dovecot Drafts folder."""
        with self.imap() as imap:
            imap.select_folder("Drafts", readonly=True)
            uids = imap.search(["ALL"])
            data = imap.fetch(uids, ["FLAGS", "RFC822"]) if uids else {}
            return [(tuple(d[b"FLAGS"]), bytes(d[b"RFC822"])) for d in data.values()]

    def local_drafts(self) -> list[Path]:
        return sorted(DraftBox.of(self.ws).folder.glob("*.eml"))

    def close(self) -> None:
        for w in self.windows:
            w.saver.stop()
            w._sent = True  # teardown closes without asking
        QApplication.processEvents()
        self.workers.wait()
        self.ws.close()


@pytest.fixture
def s(env: Env, qtbot: Any, monkeypatch: Any) -> Iterator[Setup]:
    # pytest-qt closes the windows before fixtures end: never a modal question then.
    monkeypatch.setattr(compose_drafts, "ask_save_changes", lambda _p: DISCARD)
    setup = Setup(env, qtbot)
    yield setup
    setup.close()


def fill(w: ComposeWindow, subject: str = "Quote", body: str = "Hello Jane") -> None:
    w.to.setText(JANE.display())
    w.subject.setText(subject)
    w.body.setPlainText(body)


def save_and_push(s: Setup, w: ComposeWindow) -> None:
    with s.qtbot.waitSignal(w.saver.pushed, timeout=30_000):
        w.save_draft()


def test_autosave_writes_local_and_one_server_draft(s: Setup, tmp_path: Path) -> None:
    w = s.compose()
    fill(w)
    attached = tmp_path / "quote.pdf"
    attached.write_bytes(b"%PDF-1.4 quote")
    w.attach_files([str(attached)])
    s.qtbot.waitUntil(lambda: len(w.attachment_list.attachments()) == 1, timeout=10_000)
    assert w.saver.dirty
    for n in range(3):  # the auto-save tick, three times with an edit in between
        w.subject.setText(f"Quote v{n}")
        with s.qtbot.waitSignal(w.saver.pushed, timeout=30_000):
            w.saver.tick()
    assert not w.saver.dirty
    (local,) = s.local_drafts()
    assert b"Quote v2" in local.read_bytes()
    on_server = s.drafts_on_server()
    assert len(on_server) == 1, "a re-save replaces the server copy"
    flags, raw = on_server[0]
    assert b"\\Draft" in flags
    assert f"{DRAFT_ID_HEADER}: {w.saver.draft_id}".encode() in raw
    assert b"Quote v2" in raw and b"quote.pdf" in raw
    w.saver.tick()  # nothing changed: no new server copy
    s.workers.wait()
    assert len(s.drafts_on_server()) == 1


@pytest.mark.parametrize("answer", [SAVE, DISCARD, CANCEL])
def test_closing_with_changes_asks(s: Setup, monkeypatch: Any, answer: str) -> None:
    asked: list[str] = []
    monkeypatch.setattr(
        compose_drafts, "ask_save_changes", lambda _p: asked.append(answer) or answer
    )
    w = s.compose()
    fill(w, subject=f"Close {answer}")
    w.close()
    assert asked == [answer]
    s.workers.wait()
    QApplication.processEvents()
    s.workers.wait()
    if answer == CANCEL:
        assert w.isVisible() and w.subject.text() == "Close cancel"
        assert s.local_drafts() == [] and s.drafts_on_server() == []
    elif answer == SAVE:
        assert not w.isVisible()
        (local,) = s.local_drafts()
        assert b"Close save" in local.read_bytes()
        s.qtbot.waitUntil(lambda: len(s.drafts_on_server()) == 1, timeout=30_000)
    else:
        assert not w.isVisible()
        assert s.local_drafts() == [] and s.drafts_on_server() == []
    # Unchanged: closing asks nothing.
    asked.clear()
    quiet = s.compose()
    quiet.close()
    assert asked == [] and not quiet.isVisible()


def test_discarding_a_new_message_removes_its_auto_saved_draft(s: Setup, monkeypatch) -> None:
    monkeypatch.setattr(compose_drafts, "ask_save_changes", lambda _p: DISCARD)
    w = s.compose()
    fill(w, subject="Auto-saved, then discarded")
    with s.qtbot.waitSignal(w.saver.pushed, timeout=30_000):
        w.saver.tick()
    assert len(s.drafts_on_server()) == 1
    w.close()
    s.workers.wait()
    assert s.local_drafts() == [] and s.drafts_on_server() == []


def test_a_draft_reopens_from_the_store_with_fields_and_attachments(
    s: Setup, tmp_path: Path
) -> None:
    w = s.compose(plain_text=False)
    fill(w, subject="Reopen me")
    w.cc.setText(MARK.display())
    w.body.setHtml("<p>Hello <b>Jane</b></p>")
    (tmp_path / "a.txt").write_bytes(b"first")
    w.attach_files([str(tmp_path / "a.txt")])
    s.qtbot.waitUntil(lambda: len(w.attachment_list.attachments()) == 1, timeout=10_000)
    with s.qtbot.waitSignal(w.decided, timeout=10_000):
        w.track.setChecked(True)
    save_and_push(s, w)
    draft_id = w.saver.draft_id
    w.close()
    assert s.ws.sync_mail().errors == ()
    (row,) = list(s.ws.store().message_rows("Drafts", 0, 50))
    again = open_draft(s.ws, s.workers, s.bus, row.id)
    s.qtbot.addWidget(again)
    s.windows.append(again)
    s.qtbot.waitUntil(lambda: again.saver.draft_id == draft_id, timeout=20_000)
    assert again.subject.text() == "Reopen me"
    assert JANE.email in again.to.text() and MARK.email in again.cc.text()
    assert again.track.isChecked() and again.draft().track
    assert not again.plain.isChecked()
    html = again.draft().body_html or ""
    assert "<b>Jane</b>" in html
    assert [(a.filename, a.content) for a in again.attachment_list.attachments()] == [
        ("a.txt", b"first")
    ]
    assert not again.has_unsaved_changes()
    again.subject.setText("Reopened and changed")
    save_and_push(s, again)
    (_flags, raw), *rest = s.drafts_on_server()
    assert rest == [] and b"Reopened and changed" in raw


def test_ctrl_enter_sends_and_removes_the_draft(s: Setup) -> None:
    w = s.compose()
    fill(w, subject="Sent by keyboard")
    save_and_push(s, w)
    assert len(s.drafts_on_server()) == 1 and len(s.local_drafts()) == 1
    before = len(s.env.smtp.received)
    with s.qtbot.waitSignal(w.sent, timeout=30_000):
        s.qtbot.keyClick(w.body, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    s.workers.wait()
    assert len(s.env.smtp.received) == before + 1
    assert not w.isVisible()
    assert s.local_drafts() == [] and s.drafts_on_server() == []
    assert list(DraftBox.of(s.ws).folder.glob("*.json")) == []


def test_rich_text_output_is_sanitised(s: Setup) -> None:
    w = s.compose()
    fill(w, subject="Rich")
    w.body.setHtml(
        '<p onclick="steal()">Dear <b>Jane</b>, <i>see</i> <u>this</u> '
        '<a href="https://contoso.example/q">quote</a>'
        '<a href="javascript:alert(1)">x</a></p><script>alert(2)</script>'
        "<ul><li>one</li><li>two</li></ul>"
    )
    html = w.draft().body_html or ""
    for tag in ("<b>Jane</b>", "<i>see</i>", "<u>this</u>", "<li>one</li>"):
        assert tag in html
    before = len(s.env.smtp.received)
    with s.qtbot.waitSignal(w.sent, timeout=30_000):
        w.send()
    s.workers.wait()
    assert len(s.env.smtp.received) == before + 1
    raw = s.env.smtp.received[-1][2]
    lowered = raw.lower()
    assert b"<script" not in lowered and b"onclick" not in lowered
    assert b"javascript:" not in lowered
    assert b"text/plain" in lowered and b"text/html" in lowered
    from core.mail import parse_message

    assert 'href="https://contoso.example/q"' in (parse_message(raw).html or "")


def _original_with_attachment() -> bytes:
    msg = EmailMessage()
    msg["From"] = JANE.display()
    msg["To"] = ME.display()
    msg["Subject"] = "Contract"
    msg["Message-ID"] = "<contract@fabrikam.example>"
    msg.set_content("See the contract.")
    msg.add_attachment(b"%PDF contract", maintype="application", subtype="pdf", filename="c.pdf")
    return msg.as_bytes()


def _row(s: Setup, folder: str, subject: str) -> int:
    assert s.ws.sync_mail().errors == ()
    rows = [r for r in s.ws.store().message_rows(folder, 0, 100) if r.header.subject == subject]
    assert rows, f"no {subject!r} in {folder}"
    return rows[0].id


def test_forward_keeps_the_attachments_and_forward_as_attachment(s: Setup) -> None:
    s.env.dovecot.deliver(s.user, _original_with_attachment())
    row_id = _row(s, "Inbox", "Contract")
    view = s.ws.load_message(row_id)
    w = s.compose()
    with s.qtbot.waitSignal(w.loaded, timeout=20_000):
        w.prefill("forward", view, s.ws.owner)
    assert w.subject.text() == "FW: Contract"
    assert [(a.filename, a.content) for a in w.attachment_list.attachments()] == [
        ("c.pdf", b"%PDF contract")
    ]
    assert "c.pdf" in w.attachment_list.text()
    w.to.setText(MARK.display())
    # The MIME the send path builds (core.workspace.compose: sanitised, then build_mime).
    sent_raw = build_mime(sanitized(w.draft()), s.ws.owner)
    assert b"%PDF contract" in _decoded_attachments(sent_raw)

    whole = s.compose()
    with s.qtbot.waitSignal(whole.loaded, timeout=20_000):
        whole.prefill("forward_attachment", view, s.ws.owner)
    (att,) = whole.attachment_list.attachments()
    assert att.mimetype == "message/rfc822" and att.filename == "Contract.eml"
    assert b"<contract@fabrikam.example>" in att.content


def _decoded_attachments(raw: bytes) -> bytes:
    from core.mail import parse_message

    return b"".join(a.payload() for a in parse_message(raw).attachments)


def test_reply_from_sent_items_goes_to_the_original_recipients(s: Setup) -> None:
    msg = EmailMessage()
    msg["From"] = ME.display()
    msg["To"] = f"{JANE.display()}, {ME.display()}"
    msg["Cc"] = MARK.display()
    msg["Subject"] = "Our offer"
    msg["Message-ID"] = "<offer@contoso.example>"
    msg.set_content("Offer attached.")
    with _backend(s) as b:
        b.append("Sent Items", msg.as_bytes(), is_read=True)
    view = s.ws.load_message(_row(s, "Sent Items", "Our offer"))
    w = s.compose()
    w.prefill("reply", view, s.ws.owner)
    assert JANE.email in w.to.text() and ME.email not in w.to.text()
    assert w.cc.text() == ""
    everyone = s.compose()
    everyone.prefill("reply_all", view, s.ws.owner)
    assert JANE.email in everyone.to.text() and MARK.email in everyone.cc.text()
    assert ME.email not in everyone.to.text() + everyone.cc.text()


def _backend(s: Setup) -> MailBackend:
    return s.ws.open_mailbox()


def test_the_notice_follows_the_track_toggle(s: Setup) -> None:
    w = s.compose()
    fill(w)
    assert w.not_tracked.isVisible() and not w.notice.isVisible()
    assert "will not be tracked" in w.not_tracked.text()
    with s.qtbot.waitSignal(w.decided, timeout=10_000):
        w.track.setChecked(True)
    assert w.notice.isVisible() and not w.not_tracked.isVisible()
    assert "will be tracked in the CRM" in w.notice.text()
    with s.qtbot.waitSignal(w.decided, timeout=10_000) as decided:
        w.track.setChecked(False)
    assert not decided.args[0].track
    assert w.not_tracked.isVisible() and not w.notice.isVisible()
    assert "you turned Track in CRM off" in w.not_tracked.text()
    assert w.draft().track_refused


def test_a_tracked_thread_ticks_the_toggle_and_unticking_wins(s: Setup) -> None:
    """A reply that the rules would track shows the toggle ticked; the user unticks it:
    the notice says not tracked, and so does the decision the send uses."""
    from core.domain.model import Decision, Reason

    w = s.compose()
    fill(w)
    w._show_decision(Decision(True, Reason("reply_to_tracked", "Reply to a tracked e-mail")))
    assert w.track.isChecked() and w.notice.isVisible()
    assert not w.draft().track  # still the rules' call, not the user's
    with s.qtbot.waitSignal(w.decided, timeout=10_000) as decided:
        w.track.setChecked(False)
    assert not decided.args[0].track and w.not_tracked.isVisible()
    assert s.ws.compose_decision(w.draft()).track is False


def test_offline_the_draft_is_kept_locally_and_reaches_drafts_when_back(s: Setup) -> None:
    w = s.compose()
    working = s.ws.open_mailbox
    s.ws.open_mailbox = lambda: open_backend(  # type: ignore[method-assign]
        "imap+insecure://127.0.0.1:9", user="x", password="y"
    )
    fill(w, subject="Written on the train")
    with s.qtbot.waitSignal(w.saver.push_failed, timeout=30_000):
        w.save_draft()
    (local,) = s.local_drafts()
    assert b"Written on the train" in local.read_bytes()
    assert w.saver.server_behind and "cannot be reached" in w.status.text()
    s.ws.open_mailbox = working  # type: ignore[method-assign]
    assert s.drafts_on_server() == []
    with s.qtbot.waitSignal(w.saver.pushed, timeout=30_000):
        w.saver.tick()  # nothing new typed: the tick still catches the server up
    assert len(s.drafts_on_server()) == 1 and not w.saver.server_behind

    # A window closed while away: the sync's push_pending catches up later.
    s.ws.open_mailbox = lambda: open_backend(  # type: ignore[method-assign]
        "imap+insecure://127.0.0.1:9", user="x", password="y"
    )
    w.subject.setText("Changed on the train")
    with s.qtbot.waitSignal(w.saver.push_failed, timeout=30_000):
        w.save_draft()
    w.close()
    box = DraftBox.of(s.ws)
    assert box.push_pending() == 1
    s.ws.open_mailbox = working  # type: ignore[method-assign]
    assert box.push_pending() == 0
    ((_f, raw),) = s.drafts_on_server()
    assert b"Changed on the train" in raw


class GapMeter:
    """A 50 ms timer on the GUI thread; ``longest``: the longest time between two ticks."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self._tick)
        self.last = time.monotonic()
        self.longest = 0.0
        self.timer.start()

    def _tick(self) -> None:
        now = time.monotonic()
        self.longest = max(self.longest, now - self.last)
        self.last = now

    def stop(self) -> float:
        self._tick()
        self.timer.stop()
        return self.longest


SLOW = 2.5  # seconds each mailbox open takes in the I/O test
MAX_GAP = 2.0  # a generous hang-guard: the GUI thread never waits for the slow mailbox


def test_draft_and_forward_io_stays_off_the_gui_thread(s: Setup, tmp_path: Path) -> None:
    s.env.dovecot.deliver(s.user, _original_with_attachment())
    row_id = _row(s, "Inbox", "Contract")
    view = s.ws.load_message(row_id)
    working = s.ws.open_mailbox
    on_gui: list[str] = []
    watching = [True]

    def slow() -> MailBackend:
        if watching[0] and threading.current_thread() is threading.main_thread():
            on_gui.append("open_mailbox")
        time.sleep(SLOW)
        return working()

    s.ws.open_mailbox = slow  # type: ignore[method-assign]
    (tmp_path / "big.bin").write_bytes(b"x" * 3_000_000)
    meter = GapMeter()
    w = s.compose()
    with s.qtbot.waitSignal(w.loaded, timeout=60_000):
        w.prefill("forward", view, s.ws.owner)
    w.to.setText(MARK.display())
    w.attach_files([str(tmp_path / "big.bin")])
    s.qtbot.waitUntil(lambda: len(w.attachment_list.attachments()) == 2, timeout=20_000)
    with s.qtbot.waitSignal(w.saver.pushed, timeout=60_000):
        w.save_draft()
    w.close()
    first = meter.stop()
    watching[0] = False  # the test's own sync, on this thread: not measured
    assert s.ws.sync_mail().errors == ()
    watching[0] = True
    meter = GapMeter()
    (row,) = s.ws.store().message_rows("Drafts", 0, 10)
    again = open_draft(s.ws, s.workers, s.bus, row.id)
    s.qtbot.addWidget(again)
    s.windows.append(again)
    s.qtbot.waitUntil(lambda: len(again.attachment_list.attachments()) == 2, timeout=60_000)
    gap = max(first, meter.stop())
    assert on_gui == []
    assert gap < MAX_GAP, f"the GUI thread was blocked for {gap:.1f} s"


# --- Microsoft Graph -------------------------------------------------------------------------


def test_a_draft_lands_in_the_graph_drafts_folder(
    graph_server: Any, graph_authority: Any, tmp_path: Path
) -> None:
    from tests.plugins.graph import MAIL_SCOPES

    me = demo_data.ME.email
    graph_server.add_mailbox(me, outbox=True)
    token = graph_authority.graph(me, MAIL_SCOPES)
    verify = ssl.create_default_context(cafile=graph_server.ca_file)

    def opener() -> MailBackend:
        return open_backend("graph:", base_url=graph_server.url, token=lambda: token, verify=verify)

    from core.mail.drafts import Draft

    box = DraftBox(tmp_path / "drafts", opener, ME)
    box.save("g1", Draft(to=(JANE,), subject="Graph draft", body_text="v1"), revision=1)
    box.push("g1")
    box.save("g1", Draft(to=(JANE,), subject="Graph draft v2", body_text="v2"), revision=2)
    ref = box.push("g1")
    assert ref is not None
    in_drafts = graph_server.messages(me, "drafts")
    assert len(in_drafts) == 1
    (msg,) = in_drafts
    assert msg.is_draft and b"Graph draft v2" in msg.mime
    box.discard("g1")
    assert graph_server.messages(me, "drafts") == []
