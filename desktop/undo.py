"""The mail actions of the main window (read/unread, flag, delete, move, copy, archive, drag
and drop onto the folder tree, mark read on open) and their undo stack (Ctrl+Z).

Each action asks the workspace on a worker (``core.workspace.mail_actions``: the store
changes at once, the queue holds the server's side), publishes its ``Changes`` (the list and
the folder counts follow), then writes the queue to the mail server on a worker
(``Workspace.replay_mail``). Undo steps are the workspace's own inverse operations, queued
like the originals; this module only keeps them in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from core.domain.changes import Changes
from core.workspace.feedback import MailVerb, counted, mail_action_done
from core.workspace.feedback import undone as undone_text
from desktop.errors import describe, describe_problems
from desktop.host import WindowHost
from desktop.move_dialog import FolderChooser
from desktop.ops import ChangeBus, Op, QueryOp
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.domain.model import Folder
    from core.workspace.facade import Workspace
    from core.workspace.mail_actions import ActionOutcome, UndoStep
    from core.workspace.mail_undo import ExtraUndo

    Step = UndoStep | ExtraUndo
    from desktop.mailview import MailView

#: Undo steps kept (Outlook keeps a handful; more is no use after a sync moved things on).
UNDO_DEPTH = 50


class UndoStack(QObject):
    """Undo steps, newest last. ``changed(label)``: the top step's label ('' when empty)."""

    changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._steps: list[Step] = []

    def push(self, step: Step | None) -> None:
        if step is None:
            return
        self._steps = [*self._steps[-(UNDO_DEPTH - 1) :], step]
        self.changed.emit(step.label)

    def pop(self) -> Step | None:
        step = self._steps.pop() if self._steps else None
        self.changed.emit(self._steps[-1].label if self._steps else "")
        return step

    def clear(self) -> None:
        self._steps.clear()
        self.changed.emit("")

    def __len__(self) -> int:
        return len(self._steps)


class MailVerbs(QObject):
    """The mail actions on the list's selection; see the module docstring."""

    def __init__(
        self,
        window: QWidget,
        host: WindowHost,
        mail: MailView,
        workers: Workers,
        bus: ChangeBus,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._window, self._host, self._mail = window, host, mail
        self._workers, self._bus = workers, bus
        self.undo_stack = UndoStack(self)
        self.chooser: FolderChooser | None = None
        self._read_timer = QTimer(self)
        self._read_timer.setSingleShot(True)
        self._read_timer.timeout.connect(self._mark_shown_read)
        self._shown: int | None = None

    # -- the verbs ------------------------------------------------------------------------------

    def mark_read(self, read: bool = True) -> None:
        """Undo gives each message back the state it had (only those that changed)."""
        from core.workspace.mail_undo import read_undo

        self._run(
            lambda ws, ids: ws.mark_read(ids, read),
            MailVerb.READ if read else MailVerb.UNREAD,
            undo=lambda outcome: read_undo(outcome, read),
        )

    def toggle_flag(self) -> None:
        """Flag the selection, or clear the flag when every selected message has it."""
        from core.workspace.mail_actions import is_flagged

        rows = [self._mail.model.row_at(r) for r in self._mail.selected_rows()]
        flagged = not rows or not all(r is not None and is_flagged(r) for r in rows)
        self._run(
            lambda ws, ids: ws.set_flagged(ids, flagged),
            MailVerb.FLAG if flagged else MailVerb.CLEAR_FLAG,
        )

    def delete(self) -> None:
        self._run(lambda ws, ids: ws.delete_mail(ids), MailVerb.DELETE, by_selection=True)

    def delete_permanently(self) -> None:
        ids = self._mail.selected_row_ids()
        if not ids:
            return
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Delete permanently",
            f"Delete {counted(len(ids))} for good? This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self._window,
        )
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        if box.exec() == QMessageBox.StandardButton.Yes:
            self._run(
                lambda ws, i: ws.delete_mail(i, permanently=True),
                MailVerb.DELETE_FOR_GOOD,
                ids,
                by_selection=True,
            )

    def archive(self) -> None:
        from core.workspace.mail_actions import ARCHIVE

        self._run(lambda ws, ids: ws.archive_mail(ids), MailVerb.ARCHIVE, folder=ARCHIVE)

    def move_to(self, copy: bool = False) -> None:
        """Choose a folder (read on a worker), then move or copy the selection there."""
        ws, ids = self._host.workspace, self._mail.selected_row_ids()
        if ws is None or not ids:
            return
        title = "Copy to folder" if copy else "Move to folder"

        def choose(folders: list[Folder]) -> None:
            if self._host.workspace is not ws:
                return
            here = self._current_folder()
            self.chooser = chooser = FolderChooser(title, folders, here, self._window)
            chooser.accepted.connect(lambda: self._moved_to(ids, chooser.chosen(), copy))
            chooser.open()

        QueryOp(lambda: ws.store().folders(), choose).failure(self._failed).run_in_background(
            self._workers
        )

    def _moved_to(self, ids: list[int], folder: str | None, copy: bool) -> None:
        if folder:
            self.drop(ids, folder, copy)

    def drop(self, ids: list[int], folder: str, copy: bool) -> None:
        """Rows dropped on a folder of the tree (with Ctrl: copied)."""
        from core.workspace.mail_undo import copy_undo

        if copy:  # undo deletes the copies
            verb = MailVerb.COPY
            self._run(lambda ws, i: ws.copy_mail(i, folder), verb, ids, folder, undo=copy_undo)
        else:
            self._run(lambda ws, i: ws.move_mail(i, folder), MailVerb.MOVE, ids, folder)

    def undo(self) -> None:
        ws, step = self._host.workspace, self.undo_stack.pop()
        if ws is None or step is None:
            return

        def undone(_changes: Changes) -> None:
            self._replay(ws, undone_text(step.label, work_offline=ws.work_offline))
            if step.retrack and not ws.work_offline:  # tracking again is CRM work
                Op(ws.replay_outbox, self._bus).failure(self._failed).run_in_background(
                    self._workers
                )

        def run() -> Changes:
            from core.workspace.mail_undo import ExtraUndo, undo_extra

            return undo_extra(ws, step) if isinstance(step, ExtraUndo) else ws.undo(step)

        Op(run, self._bus).success(undone).failure(self._failed).run_in_background(self._workers)

    # -- mark read on open ------------------------------------------------------------------------

    def shown(self, row_id: int) -> None:
        """The reading pane shows ``row_id``: read after the option's delay (0: now). The
        same message shown again (reloaded after a change, e.g. marked unread) is left as
        the user set it, as in Outlook."""
        if row_id == self._shown:
            return
        self._shown = row_id
        options = self._host.local_options
        delay = options.mark_read_after_seconds if options is not None else 0
        self._read_timer.start(int(delay * 1000))

    def _mark_shown_read(self) -> None:
        row_id, ws = self._shown, self._host.workspace
        if row_id is None or ws is None or self._mail.shown_row() != row_id:
            return  # another message is shown now: that one has its own timer

        def done(outcome: ActionOutcome) -> None:
            if outcome.row_ids:
                self._replay(ws, "")

        Op(lambda: ws.mark_read([row_id], True), self._bus, changes=_changes).success(done).failure(
            self._failed
        ).run_in_background(self._workers)

    # -- running --------------------------------------------------------------------------------

    def _run(
        self,
        verb: Callable[[Workspace, list[int]], ActionOutcome],
        what: MailVerb | str,
        ids: list[int] | None = None,
        folder: str = "",
        *,
        undo: Callable[[ActionOutcome], Step | None] | None = None,
        by_selection: bool = False,
    ) -> None:
        """Run ``verb`` on ``ids`` (the selection), push its undo step (``undo`` makes one
        for verbs whose outcome has none), then say how many it changed (``by_selection``:
        how many were selected, as a delete removes every one)."""
        ws = self._host.workspace
        ids = self._mail.selected_row_ids() if ids is None else ids
        if ws is None or not ids:
            return

        def done(outcome: ActionOutcome) -> None:
            self.undo_stack.push(undo(outcome) if undo is not None else outcome.undo)
            count = len(ids) if by_selection else len(outcome.row_ids)
            offline = ws.work_offline
            said = (
                mail_action_done(what, count, folder, work_offline=offline)
                if isinstance(what, MailVerb)
                else f"{what}: {counted(count)}"  # a caller's own words
            )
            self._replay(ws, said)

        Op(lambda: verb(ws, ids), self._bus, changes=_changes).success(done).failure(
            self._failed
        ).run_in_background(self._workers)

    def _replay(self, ws: Workspace, said: str) -> None:
        """Write the queued mail actions to the server; say what happened."""
        if said:
            self._host.say(said, 5000)
        if ws.work_offline:  # ``said`` says it is queued
            return

        def done(changes: Changes) -> None:
            if changes.errors:
                self._host.say(describe_problems(changes.errors))

        Op(ws.replay_mail, self._bus).success(done).failure(self._failed).run_in_background(
            self._workers
        )

    def _failed(self, exc: BaseException) -> None:
        self._host.say(describe(exc))

    def _current_folder(self) -> str | None:
        source = self._mail.model.source
        return getattr(source, "folder", None)


def _changes(outcome: ActionOutcome) -> Changes:
    return outcome.changes


__all__ = ["UNDO_DEPTH", "MailVerbs", "UndoStack"]
