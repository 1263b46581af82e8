"""Attachments in the real window (demo Maildir, sync, worker load, reading pane): listed with
icon, safe name and size; saved one by one and all together into a folder with hostile names
(``../x``, ``CON.txt``, duplicates) — files land only in that folder, nothing is overwritten
without asking; opened through a copy in a private temporary folder and the system's handler,
an executable only after asking; an invitation shows its summary. Files are read and written
on workers only, and the GUI thread keeps ticking meanwhile."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl

import core.workspace.mailbox_reading as mailbox_reading
import desktop.attachments as attachments
from desktop.mainwindow import MainWindow
from desktop.messages import Column
from tests.desktop.conftest import demo_window_with
from tests.desktop.test_reader_bounds import MAX_GAP, GapMeter

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nMETHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\nUID:42@fabrikam.example\r\nDTSTART:20380105T130000Z\r\n"
    "DTEND:20380105T140000Z\r\nSUMMARY:Quarterly review\r\nLOCATION:Room 4\r\n"
    "ORGANIZER;CN=Jane Doe:mailto:jane@fabrikam.example\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
HOSTILE = [
    ("../x", b"one"),
    ("CON.txt", b"two"),
    ("report.pdf", b"%PDF-first"),
    ("report.pdf", b"%PDF-second"),
    ("setup.exe", b"MZ-program"),
]
SAFE = ["x", "_CON.txt", "report.pdf", "report (2).pdf", "setup.exe", "invite.ics"]


def message(subject: str, parts: list[tuple[str, bytes]], ics: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jane Doe <jane@fabrikam.example>"
    msg["To"] = "alex.morgan@contoso.example"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{abs(hash(subject))}@fabrikam.example>"
    msg["Date"] = "Fri, 01 Jan 2038 10:00:00 +0000"
    msg.set_content("Please see the attachments.")
    for name, data in parts:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    if ics:
        msg.add_attachment(
            ICS.encode(), maintype="text", subtype="calendar", filename="invite.ics",
            params={"method": "REQUEST"},
        )  # fmt: skip
    return msg.as_bytes()


@pytest.fixture
def window(qtbot, tmp_path: Path) -> Iterator[MainWindow]:
    def add(mailbox: Path) -> None:
        new = mailbox / "new"
        hostile = message("Hostile attachments", HOSTILE, True)
        (new / "9999999990.hostile.local").write_bytes(hostile)
        many = [(f"f{i}.txt", b"x") for i in range(500)]
        (new / "9999999991.many.local").write_bytes(message("Five hundred attachments", many))

    with demo_window_with(qtbot, tmp_path, add) as win:
        yield win


def show(qtbot, window: MainWindow, subject: str) -> attachments.AttachmentsPanel:
    model = window.message_model
    rows = [r for r in range(model.rowCount()) if model.data(model.index(r, Column.SUBJECT))]
    row = next(r for r in rows if model.data(model.index(r, Column.SUBJECT)) == subject)
    if window.reading_pane.subject.text() != subject:
        with qtbot.waitSignal(window.message_shown, timeout=60_000):
            window.mail_view.select_rows([row])
    return window.reading_pane.attachments


@pytest.fixture
def io_threads(monkeypatch) -> list[bool]:
    """For every file the pane writes: whether it was written on the GUI thread."""
    seen: list[bool] = []

    def spy(real: Callable[[Path, bytes], None]) -> Callable[[Path, bytes], None]:
        def write(path: Path, data: bytes) -> None:
            seen.append(threading.current_thread() is threading.main_thread())
            real(path, data)

        return write

    monkeypatch.setattr(mailbox_reading, "_write_new", spy(mailbox_reading._write_new))
    monkeypatch.setattr(mailbox_reading, "_write_replacing", spy(mailbox_reading._write_replacing))
    return seen


class Answers:
    """Answers :func:`desktop.attachments.ask` with ``choice``, remembering the questions."""

    def __init__(self, monkeypatch, choice: int) -> None:
        self.choice = choice
        self.asked: list[tuple[str, list[str], int]] = []
        monkeypatch.setattr(attachments, "ask", self)

    def __call__(self, parent, title: str, text: str, buttons, default: int) -> int:
        self.asked.append((text, list(buttons), default))
        return self.choice


def test_attachments_are_listed_with_safe_names_sizes_and_the_invitation(qtbot, window) -> None:
    panel = show(qtbot, window, "Hostile attachments")
    texts = [panel.list.item(i).text() for i in range(panel.list.count())]
    assert texts[:5] == ["x (3 B)", "_CON.txt (3 B)", "report.pdf (10 B)", "report.pdf (11 B)",
                         "setup.exe (10 B)"]  # fmt: skip
    assert texts[5].startswith("invite.ics (")
    assert panel.list.item(0).toolTip().startswith("../x")
    assert not panel.list.item(0).icon().isNull()
    invitation = window.reading_pane.invitation
    assert invitation.isVisible()
    assert "Meeting request: Quarterly review" in invitation.text()
    assert "Room 4 · organiser Jane Doe" in invitation.text()
    assert "2038" in invitation.text()
    for w in (panel.list, panel.open_button, panel.save_button, panel.save_all_button):
        assert w.accessibleName()
    assert "x (3 B)" in panel.list.accessibleDescription()


def test_many_attachments_list_the_first_two_hundred(qtbot, window) -> None:
    panel = show(qtbot, window, "Five hundred attachments")
    assert panel.list.count() == attachments.LISTED
    assert panel.more.text() == "300 more not shown"


@pytest.mark.parametrize(("choice", "pdf"), [(0, b"%PDF-first"), (1, b"mine"), (2, b"mine")])
def test_save_all_lands_in_the_folder_and_asks_before_overwriting(
    qtbot, window, tmp_path, monkeypatch, io_threads, choice: int, pdf: bytes
) -> None:
    panel = show(qtbot, window, "Hostile attachments")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.pdf").write_bytes(b"mine")
    answers = Answers(monkeypatch, choice)
    monkeypatch.setattr(attachments, "ask_folder", lambda parent: str(out))
    before = {p for p in tmp_path.rglob("*") if "demo" not in p.parts}
    meter = GapMeter()
    meter.start()
    qtbot.mouseClick(panel.save_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.status.text().startswith("Saved"), timeout=60_000)
    assert meter.stop() < MAX_GAP
    (text, buttons, default), *more = answers.asked
    assert not more and "report.pdf" in text and buttons == ["Replace", "Keep both", "Skip"]
    assert default == 2  # skipping is the default
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    assert files["report.pdf"] == pdf
    assert files["x"] == b"one" and files["_CON.txt"] == b"two"
    assert files["report (2).pdf"] == b"%PDF-second" and files["setup.exe"] == b"MZ-program"
    if choice == 1:
        assert files["report (3).pdf"] == b"%PDF-first"
    saved = {1: 6, 0: 6, 2: 5}[choice]
    assert panel.status.text().startswith(f"Saved {saved} attachments to {out}")
    after = {p for p in tmp_path.rglob("*") if "demo" not in p.parts}
    assert {p.parent for p in after - before} == {out}  # nothing outside the folder
    assert io_threads and not any(io_threads)


def test_save_one_asks_before_replacing(qtbot, window, tmp_path, monkeypatch, io_threads) -> None:
    panel = show(qtbot, window, "Hostile attachments")
    panel.list.setCurrentRow(1)  # CON.txt
    target = tmp_path / "chosen.txt"
    target.write_bytes(b"mine")
    monkeypatch.setattr(attachments, "ask_save_path", lambda parent, name: str(target))
    answers = Answers(monkeypatch, 1)  # Cancel
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(answers.asked), timeout=60_000)
    assert "chosen.txt already exists" in answers.asked[0][0]
    assert target.read_bytes() == b"mine"
    answers.choice = 0  # Replace
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.status.text().startswith("Saved"), timeout=60_000)
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["chosen.txt"]
    assert io_threads and not any(io_threads)


def test_open_hands_a_private_copy_to_the_system(qtbot, window, monkeypatch, io_threads) -> None:
    panel = show(qtbot, window, "Hostile attachments")
    opened: list[QUrl] = []
    monkeypatch.setattr(attachments, "open_url", lambda url: opened.append(url) or True)
    answers = Answers(monkeypatch, 1)
    panel.list.setCurrentRow(2)  # report.pdf
    panel.list.setFocus()
    qtbot.keyClick(panel.list, Qt.Key.Key_Return)  # Enter opens
    qtbot.waitUntil(lambda: bool(opened), timeout=60_000)
    assert not answers.asked
    path = Path(opened[0].toLocalFile())
    assert path.name == "report.pdf" and path.read_bytes() == b"%PDF-first"
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    assert not path.stat().st_mode & 0o077
    assert io_threads and not any(io_threads)


def test_an_executable_is_opened_only_after_asking(qtbot, window, monkeypatch) -> None:
    panel = show(qtbot, window, "Hostile attachments")
    opened: list[QUrl] = []
    monkeypatch.setattr(attachments, "open_url", lambda url: opened.append(url) or True)
    answers = Answers(monkeypatch, 1)  # Cancel
    panel.list.setCurrentRow(4)  # setup.exe
    panel.open_current()
    assert answers.asked and attachments.HARMFUL in answers.asked[0][0]
    assert answers.asked[0][2] == 1  # Cancel is the default
    qtbot.wait(200)
    assert not opened
    answers.choice = 0
    panel.open_current()
    qtbot.waitUntil(lambda: bool(opened), timeout=60_000)
    assert Path(opened[0].toLocalFile()).read_bytes() == b"MZ-program"
