"""The compose window (``ComposeWindow``): To/Cc/Bcc with completion from the CRM address
books, rich text or plain text (``desktop/compose_body.py``), attachments
(``desktop/compose_attachments.py``), "Track in CRM" and regarding, a notice that always says
whether the mail will be tracked and why, and drafts (``desktop/compose_drafts.py``).

Whether it will be tracked, and why, is ``workspace.compose_decision(draft)`` (core's rules:
the toggle, a tracking token in the subject, a reply in a tracked thread under the user's
options); it is asked again, debounced, after every edit. Until the user touches the Track
toggle it follows the rules; once set, the user's choice wins both ways (unticked: no rule
tracks the mail), so the toggle and the notice never disagree. Sending is
``workspace.send(draft)`` (through the outbox when offline), after which the draft is deleted.

Drafts: auto-saved every ``autosave_seconds`` (locally at once, then to the mailbox's Drafts
folder when it is reachable, see ``core/workspace/drafts.py``); closing with changes asks Save /
Discard / Cancel; :func:`open_draft` reopens a message of the Drafts folder.
"""

from __future__ import annotations

import email.utils
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.domain.changes import Changes
from core.domain.model import Address, Decision, RecordRef
from core.workspace.drafts import DraftBox, LocalDraft
from desktop import compose_drafts
from desktop.addressbook import AddressCompleter
from desktop.compose_attachments import AttachmentList, read_files
from desktop.compose_body import ComposeBody
from desktop.compose_drafts import AUTOSAVE_SECONDS, CANCEL, SAVE, DraftSaver
from desktop.errors import describe
from desktop.ops import ChangeBus, Op
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.mail.drafts import DraftAttachment
    from core.workspace.compose import Draft
    from core.workspace.facade import Workspace
    from core.workspace.reading import MessageView
    from desktop.regarding import RegardingPicker

NOTICE_STYLE = (
    "background: #e8f4ec; color: #1f7a3f; border: 1px solid #1f7a3f; "
    "border-radius: 4px; padding: 6px;"
)
NOT_TRACKED_STYLE = (
    "background: #f3f3f3; color: #444; border: 1px solid #bbb; border-radius: 4px; padding: 6px;"
)


def parse_addresses(text: str) -> tuple[Address, ...]:
    """``"Jane <jane@x>; bob@y"`` → addresses (entries without an ``@`` are dropped)."""
    pairs = email.utils.getaddresses([text.replace(";", ",")])
    return tuple(Address(addr.strip(), name.strip()) for name, addr in pairs if "@" in addr)


def _joined(addresses: tuple[Address, ...] | list[Address]) -> str:
    return "; ".join(a.display() for a in addresses)


def not_tracked_text(decision: Decision) -> str:
    """ "This message will not be tracked in the CRM: <why>." from the rules' reason."""
    why = decision.reason.text
    for prefix in ("Not tracked: ", "Not tracked"):
        if why.startswith(prefix):
            why = why[len(prefix) :]
            break
    why = why.strip().rstrip(".")
    return (
        f"This message will not be tracked in the CRM: {why}."
        if why
        else ("This message will not be tracked in the CRM.")
    )


class _AddressEdit(QLineEdit):
    """A To/Cc/Bcc box that completes addresses from the cached address books."""

    def __init__(self, workspace: Workspace, workers: Workers) -> None:
        super().__init__()
        self.completer_helper = AddressCompleter(self, workspace.store, workers)


class ComposeWindow(QWidget):
    """``decided(Decision)`` after each tracking decision; ``sent(Changes)`` after sending
    (the change notice went out on ``bus`` first); ``loaded()`` once a reopened draft or a
    forward's attachments are in the window."""

    decided = Signal(object)
    sent = Signal(object)
    loaded = Signal()

    def __init__(
        self,
        workspace: Workspace,
        workers: Workers,
        bus: ChangeBus,
        *,
        online: bool = True,
        warn_tracked: bool = True,
        plain_text: bool = False,
        autosave_seconds: float = AUTOSAVE_SECONDS,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ComposeWindow")
        self.setWindowTitle("New message")
        self.resize(760, 580)
        self.setAcceptDrops(True)
        self.workspace = workspace
        self.workers = workers
        self.bus = bus
        self.online = online
        self.warn_tracked = warn_tracked
        self.regarding: RecordRef | None = None
        self.in_reply_to: int | None = None
        self.decision: Decision | None = None
        self._serial = 0
        self._user_track: bool | None = None  # None: the toggle follows the rules
        self._auto = False  # the window itself is setting the toggle
        self._loading = False  # filling the window: no edit counts as a change
        self._sent = False
        self._explicitly_saved = False
        self._picker: RegardingPicker | None = None
        self._make_fields()
        self._make_controls(plain_text)
        self._lay_out()
        self.saver = DraftSaver(
            DraftBox.of(workspace), workers, self._snapshot, seconds=autosave_seconds, parent=self
        )
        self.saver.saved.connect(lambda _d: self._note_saved("on this computer"))
        self.saver.pushed.connect(lambda _r: self._note_saved("to Drafts"))
        self.saver.push_failed.connect(self._note_offline)
        self.saver.save_failed.connect(
            lambda exc: self.status.setText(f"The draft could not be saved. {describe(exc)}")
        )
        self._connect_edits()
        self._shortcuts()
        if not online:
            self.status.setText("Offline: the message will wait in the outbox.")
        self.refresh_decision()

    def _make_fields(self) -> None:
        """The address, subject fields, and the tracking and plain-text toggles."""
        self.to = self._address_edit("composeTo", "To")
        self.cc = self._address_edit("composeCc", "Cc")
        self.bcc = self._address_edit("composeBcc", "Bcc")
        self.subject = QLineEdit()
        self.subject.setObjectName("composeSubject")
        self.subject.setAccessibleName("Subject")
        self.track = QCheckBox("Track in CRM")
        self.track.setObjectName("composeTrack")
        self.plain = QCheckBox("Plain text")
        self.plain.setObjectName("composePlainText")
        self.plain.setToolTip("Send this message as plain text, without formatting")

    def _make_controls(self, plain_text: bool) -> None:
        """Regarding, the tracking notices, the body, attachments, Send and the status line."""
        self.regarding_button = QPushButton("Regarding: none…")
        self.regarding_button.setObjectName("composeRegarding")
        self.regarding_button.clicked.connect(self.pick_regarding)
        self.notice = QLabel()  # shown when the mail will be tracked
        self.notice.setObjectName("composeNotice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(NOTICE_STYLE)
        self.notice.setVisible(False)
        self.not_tracked = QLabel()  # shown when it will not be, with the reason
        self.not_tracked.setObjectName("composeNotTracked")
        self.not_tracked.setWordWrap(True)
        self.not_tracked.setStyleSheet(NOT_TRACKED_STYLE)
        self.not_tracked.setVisible(False)
        self.editor = ComposeBody(plain_text=plain_text)
        self.plain.setChecked(plain_text)
        self.body = self.editor.edit
        self.editor.edit.files_dropped.connect(self.attach_files)
        self.attach_button = QPushButton("Attach…")
        self.attach_button.setObjectName("composeAttach")
        self.attach_button.clicked.connect(self.choose_attachments)
        self.attachment_list = AttachmentList()
        self.save_button = QPushButton("Save draft")
        self.save_button.setObjectName("composeSaveDraft")
        self.save_button.clicked.connect(self.save_draft)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("composeSend")
        self.send_button.setDefault(True)
        self.send_button.setToolTip("Send (Ctrl+Enter)")
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
        crm_row.addWidget(self.plain)
        crm_row.addWidget(self.attach_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.save_button)
        bottom.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(crm_row)
        layout.addWidget(self.notice)
        layout.addWidget(self.not_tracked)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.attachment_list)
        layout.addLayout(bottom)
        self.attachment_list.setVisible(False)

    def _address_edit(self, name: str, label: str) -> _AddressEdit:
        edit = _AddressEdit(self.workspace, self.workers)
        edit.setObjectName(name)
        edit.setAccessibleName(label)
        edit.setPlaceholderText("name@example.com; …")
        return edit

    def _connect_edits(self) -> None:
        self._debounce = QTimer(self, singleShot=True, interval=200)
        self._debounce.timeout.connect(self.refresh_decision)
        for edit in (self.to, self.cc, self.bcc, self.subject):
            edit.textChanged.connect(lambda _t: self._edited(decide=True))
        self.subject.textChanged.connect(
            lambda text: self.setWindowTitle(text.strip() or "New message")
        )
        self.editor.changed.connect(lambda: self._edited(decide=False))
        self.attachment_list.changed.connect(lambda: self._edited(decide=True))
        self.track.toggled.connect(self._track_toggled)
        self.plain.toggled.connect(self._plain_toggled)

    def _shortcuts(self) -> None:
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, self.send)
        QShortcut(QKeySequence("Ctrl+S"), self, self.save_draft)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close)

    def _edited(self, *, decide: bool) -> None:
        if self._loading:
            return
        self.saver.dirty = True
        if decide:
            self._debounce.start()

    def _track_toggled(self, on: bool) -> None:
        if not self._auto:
            self._user_track = on
            self._edited(decide=True)

    def _plain_toggled(self, plain: bool) -> None:
        self.editor.set_plain_text(plain)
        self._edited(decide=False)

    # --- draft and decision -------------------------------------------------------------------
    def draft(self) -> Draft:
        from core.workspace.compose import Draft

        return Draft(
            to=parse_addresses(self.to.text()),
            cc=parse_addresses(self.cc.text()),
            bcc=parse_addresses(self.bcc.text()),
            subject=self.subject.text(),
            body_text=self.editor.text(),
            body_html=self.editor.html(),
            track=self._user_track is True,
            track_refused=self._user_track is False,
            regarding=self.regarding,
            in_reply_to=self.in_reply_to,
            attachments=self.attachment_list.attachments(),
        )

    def _snapshot(self) -> tuple[Draft, bool]:
        return self.draft(), self.editor.plain_text

    def refresh_decision(self) -> None:
        self._serial += 1
        serial = self._serial
        draft = self.draft()
        ws = self.workspace

        def failed(exc: BaseException) -> None:
            if serial == self._serial:
                self.notice.setVisible(False)
                self.not_tracked.setVisible(False)
                self.status.setText(f"Cannot tell whether this will be tracked. {describe(exc)}")

        self.workers.run(
            lambda: ws.compose_decision(draft),
            lambda d: self._show_decision(d) if serial == self._serial else None,
            failed,
            owner=self,
        )

    def _show_decision(self, decision: Decision) -> None:
        """The notice says what the decision says; the toggle shows it too until the user
        sets it (then the decision follows the toggle, see ``Draft.track_refused``)."""
        self.decision = decision
        if self._user_track is None and self.track.isChecked() != decision.track:
            self._auto = True
            self.track.setChecked(decision.track)
            self._auto = False
        if decision.track:
            text = "This message will be tracked in the CRM"
            reason = decision.reason.text
            self.notice.setText(f"{text}. {reason}" if reason else text + ".")
        else:
            self.not_tracked.setText(not_tracked_text(decision))
        self.notice.setVisible(decision.track)
        self.not_tracked.setVisible(not decision.track)
        self.decided.emit(decision)

    # --- filling the window -------------------------------------------------------------------
    def prefill(self, mode: str, view: MessageView, owner: Address) -> None:
        """Reply, reply all, forward or forward as attachment (``forward_attachment``) ``view``
        (a ``core.workspace.reading.MessageView``). A reply to a message the user sent (from
        Sent Items) goes to that message's recipients, as in Outlook and Thunderbird."""
        h = view.header
        subject = h.subject or ""
        quoted = "\n".join("> " + line for line in (view.body_text or "").splitlines())
        when = h.date.strftime("%Y-%m-%d %H:%M") if h.date else ""
        sender = h.sender.display() if h.sender else ""
        self._loading = True
        try:
            if mode in ("reply", "reply_all"):
                prefix = "RE: "
                self.in_reply_to = view.row_id
                to, cc = reply_addresses(view, owner, everyone=mode == "reply_all")
                self.to.setText(_joined(to))
                self.cc.setText(_joined(cc))
                self.editor.set_content(f"\n\nOn {when}, {sender} wrote:\n{quoted}")
            else:
                prefix = "FW: "
                if mode == "forward":
                    self.editor.set_content(
                        f"\n\n---------- Forwarded message ----------\nFrom: {sender}"
                        f"\nDate: {when}\nSubject: {subject}\n\n{view.body_text}"
                    )
                self._attach_original(view.row_id, whole=mode == "forward_attachment")
            if not subject.upper().startswith(prefix.strip().upper()):
                subject = prefix + subject
            self.subject.setText(subject)
            self.setWindowTitle(subject)
        finally:
            self._loading = False
        if view.regarding is not None:
            self.set_regarding(view.regarding, by_user=False)

    def _attach_original(self, row_id: int, *, whole: bool) -> None:
        """The original's attachments (forward), or the original itself as a message/rfc822
        attachment (forward as attachment), read from the cache or the mailbox on a worker."""
        ws = self.workspace
        box = self.saver.box

        def read() -> list[DraftAttachment]:
            if whole:
                return [box.as_attachment(ws.store(), row_id)]
            return list(box.attachments_of(ws.store(), row_id))

        def done(found: list[DraftAttachment]) -> None:
            self._loading = True
            self.attachment_list.add(found)
            self._loading = False
            self._debounce.start()
            self.loaded.emit()

        def failed(exc: BaseException) -> None:
            self.status.setText(f"The original's attachments could not be read. {describe(exc)}")

        self.status.setText("Reading the original's attachments…")
        self.workers.run(read, done, failed, owner=self)

    def load_draft(self, local: LocalDraft) -> None:
        """Fill the window from a saved draft and continue saving it under its id."""
        d = local.draft
        self._loading = True
        try:
            self.to.setText(_joined(d.to))
            self.cc.setText(_joined(d.cc))
            self.bcc.setText(_joined(d.bcc))
            self.subject.setText(d.subject)
            self.plain.setChecked(local.plain_text or not d.body_html)
            self.editor.set_content(d.body_text, d.body_html)
            self.attachment_list.set_attachments(d.attachments)
            self.attachment_list.setVisible(bool(d.attachments))
            self.in_reply_to = d.in_reply_to
            self._user_track = True if d.track else False if d.track_refused else None
            self._auto = True
            self.track.setChecked(d.track)
            self._auto = False
            self.set_regarding(d.regarding, by_user=False)
        finally:
            self._loading = False
        self.saver.adopt(local)
        self.status.setText("")
        self.refresh_decision()
        self.loaded.emit()

    # --- actions -------------------------------------------------------------------------------
    def choose_attachments(self) -> None:
        names, _filter = QFileDialog.getOpenFileNames(self, "Attach files")
        if names:
            self.attach_files(names)

    def attach_files(self, paths: list[str]) -> None:
        """Read the files on a worker (they may be large or on a network share)."""

        def done(read: list[DraftAttachment]) -> None:
            self.attachment_list.add(read)
            self.attachment_list.setVisible(bool(self.attachment_list.attachments()))

        self.workers.run(
            lambda: read_files(paths),
            done,
            lambda exc: self.status.setText(describe(exc)),
            owner=self,
        )

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt name)
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt name)
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            self.attach_files(files)
            event.acceptProposedAction()

    def set_regarding(self, ref: RecordRef | None, *, by_user: bool = True) -> None:
        self.regarding = ref
        self.regarding_button.setText(
            f"Regarding: {ref.name or ref.entity}…" if ref else "Regarding: none…"
        )
        if by_user:
            self._edited(decide=True)
        else:
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
                self.track.setChecked(True)  # the user's choice: tracked

        picker.accepted.connect(chosen)
        picker.open()

    def save_draft(self) -> None:
        """Save now (Ctrl+S, or Save when closing): locally at once, then to Drafts."""
        self._explicitly_saved = True
        self.saver.save()

    def _note_saved(self, where: str) -> None:
        if not self._sent:
            self.status.setText(f"Draft saved {where} at {datetime.now():%H:%M}.")

    def _note_offline(self, exc: BaseException) -> None:
        if not self._sent:
            self.status.setText(
                "Draft saved on this computer; the mailbox cannot be reached, so Drafts gets "
                f"it when it is back. ({describe(exc)})"
            )

    def send(self) -> None:
        if self._sent or not self.send_button.isEnabled():
            return
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
        ws, box, draft_id = self.workspace, self.saver.box, self.saver.draft_id
        self.saver.stop()
        self.send_button.setEnabled(False)
        self.status.setText("Sending…" if self.online else "Putting it in the outbox…")

        def send_and_forget_draft() -> Changes:
            changes = ws.send(draft)  # queued durably: the draft is no longer needed
            box.discard(draft_id)
            return changes

        def done(changes: Changes) -> None:
            self._sent = True
            self.sent.emit(changes)
            self.close()

        def failed(exc: BaseException) -> None:
            self.send_button.setEnabled(True)
            self.saver.stopped = False
            self.saver.timer.start()
            self.status.setText(f"Not sent. {describe(exc)}")

        Op(send_and_forget_draft, self.bus, owner=self).success(done).failure(
            failed
        ).run_in_background(self.workers)

    # --- closing -------------------------------------------------------------------------------
    def has_unsaved_changes(self) -> bool:
        """Edits since the last save, or a new message only auto-saved so far."""
        s = self.saver
        return not self._sent and (
            s.dirty or (s.saved_once and not s.reopened and not self._explicitly_saved)
        )

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        """Changes: Save (kept in Drafts) / Discard (a new message's auto-saved draft goes;
        a reopened draft stays as last saved) / Cancel (the window stays)."""
        if not self.has_unsaved_changes():
            self.saver.stop()
            event.accept()
            return
        answer = compose_drafts.ask_save_changes(self)
        if answer == CANCEL:
            event.ignore()
            return
        if answer == SAVE:
            self.save_draft()
            self.saver.stop()
        elif self.saver.reopened:
            self.saver.stop()
        else:
            self.saver.discard()
        event.accept()


def reply_addresses(
    view: MessageView, owner: Address, *, everyone: bool
) -> tuple[list[Address], list[Address]]:
    """(To, Cc) of a reply. To a message the user sent: its recipients; else its sender
    (and, replying to all, the other recipients). Never the user's own address."""
    h = view.header
    me = owner.key
    own = h.sender is not None and h.sender.key == me
    to: list[Address] = []
    for a in (list(h.to) if own else [h.sender] if h.sender else []) + (
        list(h.to) if everyone and not own else []
    ):
        if a.key != me and a not in to:
            to.append(a)
    cc = [a for a in h.cc if a.key != me and a not in to] if everyone else []
    if own and not to and h.sender is not None:  # a note to self
        to = [h.sender]
    return to, cc


def open_draft(
    workspace: Workspace,
    workers: Workers,
    bus: ChangeBus,
    row_id: int,
    *,
    online: bool = True,
    warn_tracked: bool = True,
    parent: QWidget | None = None,
) -> ComposeWindow:
    """Reopen message ``row_id`` of the Drafts folder in a compose window (its local draft
    when it is one of ours, which is never older than the server copy); read on a worker."""
    window = ComposeWindow(
        workspace, workers, bus, online=online, warn_tracked=warn_tracked, parent=parent
    )
    window.setWindowTitle("Draft")
    window.status.setText("Opening the draft…")
    box = window.saver.box
    workers.run(
        lambda: box.open_message(workspace.store(), row_id),
        window.load_draft,
        lambda exc: window.status.setText(f"The draft could not be opened. {describe(exc)}"),
        owner=window,
    )
    window.show()
    return window
