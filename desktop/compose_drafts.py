"""Auto-save of the compose window (``DraftSaver``) and the Save / Discard / Cancel question.

Every save writes the local draft first (``core.workspace.drafts.DraftBox.save``, on the
writers' queue, so it is ordered before a send that deletes it) and then tries the server copy
on the pool (``DraftBox.push``). A push the mailbox refuses (offline) leaves the server
"behind"; the next tick pushes again, even without new edits. The callbacks after a save touch
the window only while it lives: a save started by closing the window still completes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from core.workspace.drafts import DraftBox, LocalDraft, new_draft_id
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.domain.model import MailRef
    from core.mail.drafts import Draft

log = logging.getLogger(__name__)

AUTOSAVE_SECONDS = 30.0

#: What the user answered when closing a window with changes.
SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


def ask_save_changes(parent: QWidget) -> str:
    """Save / Discard / Cancel (Save is the default: Enter never loses work)."""
    box = QMessageBox(parent)
    box.setWindowTitle("Save this message?")
    box.setIcon(QMessageBox.Icon.Question)
    box.setText("This message has changes that are not saved.")
    box.setInformativeText("Save it to Drafts?")
    box.setStandardButtons(
        QMessageBox.StandardButton.Save
        | QMessageBox.StandardButton.Discard
        | QMessageBox.StandardButton.Cancel
    )
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    answer = box.exec()
    if answer == QMessageBox.StandardButton.Save:
        return SAVE
    if answer == QMessageBox.StandardButton.Discard:
        return DISCARD
    return CANCEL


class DraftSaver(QObject):
    """Saves ``snapshot()`` (the draft and whether it is plain text) as draft ``draft_id``.

    ``saved(LocalDraft)`` after each local save; ``pushed(MailRef | None)`` after the server
    copy was replaced; ``push_failed(exc)`` when the mailbox refused or was away;
    ``save_failed(exc)`` when even the local save failed (the changes stay "dirty")."""

    saved = Signal(object)
    pushed = Signal(object)
    push_failed = Signal(object)
    save_failed = Signal(object)

    def __init__(
        self,
        box: DraftBox,
        workers: Workers,
        snapshot: Callable[[], tuple[Draft, bool]],
        *,
        seconds: float = AUTOSAVE_SECONDS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.box = box
        self.workers = workers
        self.snapshot = snapshot
        self.draft_id = new_draft_id()
        self.revision = 0
        self.reopened = False  # opened from a saved draft (Discard then keeps that draft)
        self.saved_once = False
        self.dirty = False
        self.server_behind = False
        self.stopped = False
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, int(seconds * 1000)))
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def adopt(self, local: LocalDraft) -> None:
        """Continue a saved draft (reopened): its id and revision, and its server state."""
        self.draft_id = local.draft_id
        self.revision = local.revision
        self.reopened = self.saved_once = True
        self.dirty = False
        self.server_behind = not local.server_current

    def tick(self) -> None:
        """The auto-save timer: save what changed, or retry a server copy that is behind."""
        if self.stopped:
            return
        if self.dirty:
            self.save()
        elif self.server_behind:
            self.push()

    def save(self) -> None:
        """Save now: locally at once (writers' queue), then the server copy (pool)."""
        draft, plain = self.snapshot()
        self.revision += 1
        self.dirty = False
        box, draft_id, revision, workers = self.box, self.draft_id, self.revision, self.workers

        def done(local: LocalDraft) -> None:
            self._run_push(box, draft_id, workers)
            if shiboken6.isValid(self):
                self.saved_once = True
                self.saved.emit(local)

        def failed(exc: BaseException) -> None:
            log.warning("draft %s not saved: %s", draft_id, exc)
            if shiboken6.isValid(self):
                self.dirty = True
                self.save_failed.emit(exc)

        workers.run(
            lambda: box.save(draft_id, draft, plain_text=plain, revision=revision),
            done,
            failed,
            serial=True,
        )

    def push(self) -> None:
        self._run_push(self.box, self.draft_id, self.workers)

    def _run_push(self, box: DraftBox, draft_id: str, workers: Workers) -> None:
        def done(ref: MailRef | None) -> None:
            if shiboken6.isValid(self):
                self.server_behind = False
                self.pushed.emit(ref)

        def failed(exc: BaseException) -> None:
            log.info("draft %s stays local for now: %s", draft_id, exc)
            if shiboken6.isValid(self):
                self.server_behind = True
                self.push_failed.emit(exc)

        workers.run(lambda: box.push(draft_id), done, failed)

    def discard(self) -> None:
        """Throw the draft away (local at once, server best effort), behind any save."""
        self.stop()
        box, draft_id = self.box, self.draft_id
        self.workers.run(lambda: box.discard(draft_id), None, _log_failure, serial=True)

    def stop(self) -> None:
        self.stopped = True
        self.timer.stop()


def _log_failure(exc: BaseException) -> None:
    log.warning("draft not discarded: %s", exc)
