"""The compose window (``ComposeWindow``): To/Cc/Bcc with completion from the CRM address
books, "Track in CRM" and regarding, and a visible notice whenever the mail will be tracked.

Whether it will be tracked, and why, is ``workspace.compose_decision(draft)`` (core's rules:
the toggle, a tracking token in the subject, a reply in a tracked thread under the user's
options); it is asked again, debounced, after every edit. Sending is ``workspace.send(draft)``
(through the outbox when offline).
"""

from __future__ import annotations

import email.utils
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from core.domain.changes import Changes
from core.domain.model import Address, Decision, RecordRef
from desktop.addressbook import AddressCompleter
from desktop.errors import describe
from desktop.ops import ChangeBus, Op
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.workspace.compose import Draft, DraftAttachment
    from core.workspace.facade import Workspace
    from core.workspace.reading import MessageView
    from desktop.regarding import RegardingPicker

NOTICE_STYLE = (
    "background: #e8f4ec; color: #1f7a3f; border: 1px solid #1f7a3f; "
    "border-radius: 4px; padding: 6px;"
)


def parse_addresses(text: str) -> tuple[Address, ...]:
    """``"Jane <jane@x>; bob@y"`` → addresses (entries without an ``@`` are dropped)."""
    pairs = email.utils.getaddresses([text.replace(";", ",")])
    return tuple(Address(addr.strip(), name.strip()) for name, addr in pairs if "@" in addr)


class _AddressEdit(QLineEdit):
    """A To/Cc/Bcc box that completes addresses from the cached address books."""

    def __init__(self, workspace: Workspace, workers: Workers) -> None:
        super().__init__()
        self.completer_helper = AddressCompleter(self, workspace.store, workers)


class ComposeWindow(QWidget):
    """``decided(Decision)`` after each tracking decision; ``sent(Changes)`` after sending
    (the change notice went out on ``bus`` first)."""

    decided = Signal(object)
    sent = Signal(object)

    def __init__(
        self,
        workspace: Workspace,
        workers: Workers,
        bus: ChangeBus,
        *,
        online: bool = True,
        warn_tracked: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ComposeWindow")
        self.setWindowTitle("New message")
        self.resize(760, 580)
        self.workspace = workspace
        self.workers = workers
        self.bus = bus
        self.online = online
        self.warn_tracked = warn_tracked
        self.regarding: RecordRef | None = None
        self.in_reply_to: int | None = None
        self.decision: Decision | None = None
        self._serial = 0

        self.attachments: list[DraftAttachment] = []
        self._picker: RegardingPicker | None = None
        self._make_fields()
        self._make_controls()
        self._lay_out()
        self._debounce = QTimer(self, singleShot=True, interval=200)
        self._debounce.timeout.connect(self.refresh_decision)
        for edit in (self.to, self.cc, self.bcc, self.subject):
            edit.textChanged.connect(lambda _t: self._debounce.start())
        self.track.toggled.connect(lambda _on: self._debounce.start())
        if not online:
            self.status.setText("Offline: the message will wait in the outbox.")
        self.refresh_decision()

    def _make_fields(self) -> None:
        """The address, subject and body fields, and the tracking toggle."""
        self.to = self._address_edit("composeTo")
        self.cc = self._address_edit("composeCc")
        self.bcc = self._address_edit("composeBcc")
        self.subject = QLineEdit()
        self.subject.setObjectName("composeSubject")
        self.track = QCheckBox("Track in CRM")
        self.track.setObjectName("composeTrack")

    def _make_controls(self) -> None:
        """Regarding, the tracking notice, the body, attachments, Send and the status line."""
        self.regarding_button = QPushButton("Regarding: none…")
        self.regarding_button.setObjectName("composeRegarding")
        self.regarding_button.clicked.connect(self.pick_regarding)
        self.notice = QLabel()
        self.notice.setObjectName("composeNotice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(NOTICE_STYLE)
        self.notice.setVisible(False)
        self.body = QTextEdit()
        self.body.setObjectName("composeBody")
        self.body.setAcceptRichText(False)
        self.attach_button = QPushButton("Attach…")
        self.attach_button.setObjectName("composeAttach")
        self.attach_button.clicked.connect(self.choose_attachments)
        self.attachment_list = QLabel()
        self.attachment_list.setObjectName("composeAttachments")
        self.attachment_list.setWordWrap(True)
        self.attachment_list.setVisible(False)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("composeSend")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.send)
        self.status = QLabel()
        self.status.setObjectName("composeStatus")

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow("To:", self.to)
        form.addRow("Cc:", self.cc)
        form.addRow("Bcc:", self.bcc)
        form.addRow("Subject:", self.subject)
        crm_row = QHBoxLayout()
        crm_row.addWidget(self.track)
        crm_row.addWidget(self.regarding_button)
        crm_row.addStretch(1)
        crm_row.addWidget(self.attach_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(crm_row)
        layout.addWidget(self.notice)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.attachment_list)
        layout.addLayout(bottom)

    def _address_edit(self, name: str) -> _AddressEdit:
        edit = _AddressEdit(self.workspace, self.workers)
        edit.setObjectName(name)
        edit.setPlaceholderText("name@example.com; …")
        return edit

    # --- draft and decision -------------------------------------------------------------------
    def draft(self) -> Draft:
        from core.workspace.compose import Draft

        return Draft(
            to=parse_addresses(self.to.text()),
            cc=parse_addresses(self.cc.text()),
            bcc=parse_addresses(self.bcc.text()),
            subject=self.subject.text(),
            body_text=self.body.toPlainText(),
            track=self.track.isChecked(),
            regarding=self.regarding,
            in_reply_to=self.in_reply_to,
            attachments=tuple(self.attachments),
        )

    def refresh_decision(self) -> None:
        self._serial += 1
        serial = self._serial
        draft = self.draft()
        ws = self.workspace

        def done(decision: Decision) -> None:
            if serial != self._serial:
                return
            self.decision = decision
            if decision.track:
                text = "This message will be tracked in the CRM"
                reason = decision.reason.text
                self.notice.setText(f"{text}. {reason}" if reason else text + ".")
            self.notice.setVisible(bool(decision.track))
            self.decided.emit(decision)

        def failed(exc: BaseException) -> None:
            if serial == self._serial:
                self.notice.setVisible(False)
                self.status.setText(f"Cannot tell whether this will be tracked. {describe(exc)}")

        self.workers.run(lambda: ws.compose_decision(draft), done, failed, owner=self)

    # --- actions -------------------------------------------------------------------------------
    def prefill(self, mode: str, view: MessageView, owner: Address) -> None:
        """Reply, reply all or forward ``view`` (a ``core.workspace.reading.MessageView``)."""
        h = view.header
        subject = h.subject or ""
        quoted = "\n".join("> " + line for line in (view.body_text or "").splitlines())
        when = h.date.strftime("%Y-%m-%d %H:%M") if h.date else ""
        sender = h.sender.display() if h.sender else ""
        if mode in ("reply", "reply_all"):
            prefix = "RE: "
            self.in_reply_to = view.row_id
            to = [h.sender] if h.sender else []
            cc: list[Address] = []
            if mode == "reply_all":
                me = owner.key
                to += [a for a in h.to if a.key != me and a not in to]
                cc = [a for a in h.cc if a.key != me]
            self.to.setText("; ".join(a.display() for a in to))
            self.cc.setText("; ".join(a.display() for a in cc))
            self.body.setPlainText(f"\n\nOn {when}, {sender} wrote:\n{quoted}")
        else:
            prefix = "FW: "
            self.body.setPlainText(
                f"\n\n---------- Forwarded message ----------\nFrom: {sender}"
                f"\nDate: {when}\nSubject: {subject}\n\n{view.body_text}"
            )
        if not subject.upper().startswith(prefix.strip().upper()):
            subject = prefix + subject
        self.subject.setText(subject)
        self.setWindowTitle(subject)
        if view.regarding is not None:
            self.set_regarding(view.regarding)

    def choose_attachments(self) -> None:
        names, _filter = QFileDialog.getOpenFileNames(self, "Attach files")
        if names:
            self.attach_files(names)

    def attach_files(self, paths: list[str]) -> None:
        """Read the files on a worker (they may be large or on a network share)."""

        def read() -> list[DraftAttachment]:
            from core.workspace.compose import DraftAttachment

            out = []
            for path in paths:
                p = Path(path)
                kind = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
                out.append(DraftAttachment(p.name, p.read_bytes(), kind))
            return out

        def done(read_files: list[DraftAttachment]) -> None:
            self.attachments.extend(read_files)
            self.attachment_list.setText(
                "📎 "
                + ", ".join(
                    f"{a.filename} ({len(a.content) // 1024 + 1} KB)" for a in self.attachments
                )
            )
            self.attachment_list.setVisible(True)
            self._debounce.start()  # the size limit is part of the decision

        self.workers.run(read, done, lambda exc: self.status.setText(describe(exc)), owner=self)

    def set_regarding(self, ref: RecordRef | None) -> None:
        self.regarding = ref
        self.regarding_button.setText(
            f"Regarding: {ref.name or ref.entity}…" if ref else "Regarding: none…"
        )
        self._debounce.start()

    def pick_regarding(self) -> None:
        from core.workspace.regarding import RegardingSearch
        from desktop.regarding import RegardingPicker

        ws = self.workspace
        picker = RegardingPicker(
            RegardingSearch(ws.store, ws.crm),
            self.workers,
            online=self.online,
            title="Regarding",
            parent=self,
        )
        self._picker = picker

        def chosen() -> None:
            ref = picker.selected()
            if ref is not None:
                self.set_regarding(ref)
                self.track.setChecked(True)

        picker.accepted.connect(chosen)
        picker.open()

    def send(self) -> None:
        draft = self.draft()
        if not (draft.to or draft.cc or draft.bcc):
            self.status.setText("Add at least one recipient.")
            return
        if self.decision is not None and self.decision.track and self.warn_tracked:
            answer = QMessageBox.question(
                self,
                "Send tracked message",
                "This message will be tracked in the CRM: its copy will be visible to your "
                "colleagues. Send it?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        ws = self.workspace
        self.send_button.setEnabled(False)
        self.status.setText("Sending…" if self.online else "Putting it in the outbox…")

        def done(changes: Changes) -> None:
            self.sent.emit(changes)
            self.close()

        def failed(exc: BaseException) -> None:
            self.send_button.setEnabled(True)
            self.status.setText(f"Not sent. {describe(exc)}")

        Op(lambda: ws.send(draft), self.bus, owner=self).success(done).failure(
            failed
        ).run_in_background(self.workers)
