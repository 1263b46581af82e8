"""The CRM verbs on the main window's selection (``CrmVerbs``): Track, Untrack, Set Regarding,
View in CRM, Work offline.

Each verb is an :class:`~desktop.ops.Op` (serial: it writes the store) that queues the work
and shows the messages *pending*, then, when online, a second one that replays the outbox.
Both publish their ``Changes`` on the window's :class:`~desktop.ops.ChangeBus`, where the views
refresh themselves; ``tracking_done(Changes)`` follows, once the verb is over (replayed, or
queued while offline, or failed).

Every verb takes the selected messages' ids at the gesture, before any dialog or worker, and
acts on exactly those: a sync or a sort while a question or the picker is open changes
nothing about what the user chose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

from core.domain.changes import Changes
from core.domain.model import RecordRef, TrackState
from core.sync.problems import problem_of
from core.workspace.feedback import (
    TrackingVerb,
    counted,
    open_link_failed,
    tracking_progress,
    tracking_queued,
)
from core.workspace.feedback import tracking_done as done_text
from desktop.errors import describe, describe_problems
from desktop.host import WindowHost
from desktop.mailview import MailView
from desktop.messages import UNTRACKABLE
from desktop.ops import ChangeBus, Op, QueryOp
from desktop.workers import Workers

if TYPE_CHECKING:
    from desktop.regarding import RegardingPicker


class CrmVerbs(QObject):
    """``tracking_done(Changes)`` when a Track/Untrack/Set Regarding finished;
    ``online_changed(online)`` when Work offline was switched."""

    tracking_done = Signal(object)
    online_changed = Signal(bool)
    #: The CRM did not answer a verb's replay (detail for the status bar's connection label).
    reachability = Signal(str)
    #: View in CRM opened no browser: ``(url, said)`` (the window offers to copy the link).
    link_not_opened = Signal(str, str)
    undoable = Signal(object)  # an UndoStep for Edit › Undo (Untrack)

    def __init__(
        self,
        host: WindowHost,
        mail: MailView,
        workers: Workers,
        bus: ChangeBus,
        window: QWidget,
    ) -> None:
        super().__init__(window)
        self._host = host
        self._mail = mail
        self._workers = workers
        self._bus = bus
        self._window = window  # parent of the questions and the picker
        self.picker: RegardingPicker | None = None  # the last regarding picker opened
        self.link_box: QMessageBox | None = None  # the last "copy the link?" offer

    def _online(self) -> bool:
        ws = self._host.workspace
        return ws is not None and ws.online

    # --- tracking -------------------------------------------------------------------------------
    def run_tracking(
        self, op: Callable[[], Changes], verb: TrackingVerb, ids: list[int], record: str = ""
    ) -> None:
        """Run a tracking verb on ``ids``, then replay the outbox when online; the status bar
        says what happened (``core.workspace.feedback``)."""
        ws = self._host.workspace
        assert ws is not None
        count = len(ids)
        self._host.say(tracking_progress(verb, count, record))

        def failed(exc: BaseException) -> None:
            # The pending state shown at the gesture is dropped: the rows show the store's.
            problem = problem_of(exc, tracking_progress(verb, count, record).rstrip("…").lower())
            changes = Changes(messages=True, row_ids=frozenset(ids), errors=(problem,))
            self._bus.publish(changes)
            self._host.say(f"Tracking failed. {describe(exc)}")
            self.tracking_done.emit(changes)

        def replayed(changes: Changes) -> None:
            if not changes.errors and not self._online():  # the CRM went away meanwhile
                self.reachability.emit("the CRM cannot be reached")
                self._host.say(tracking_queued(count, work_offline=ws.work_offline))
            else:
                self._report(changes, done_text(verb, count, record))
            self.tracking_done.emit(changes)

        def queued(changes: Changes) -> None:
            if self._online():
                Op(ws.replay_outbox, self._bus).success(replayed).failure(failed).run_in_background(
                    self._workers
                )
            else:
                self._host.say(tracking_queued(count, work_offline=ws.work_offline))
                self.tracking_done.emit(changes)

        Op(op, self._bus).success(queued).failure(failed).run_in_background(self._workers)

    def _report(self, changes: Changes, done: str = "Done") -> None:
        if changes.errors:
            self._host.say(describe_problems(changes.errors))
        else:
            self._host.say(done, 5000)

    def _show_pending(self, ids: list[int]) -> None:
        self._mail.model.show_state(ids, TrackState.PENDING)
        self._host.update_actions()  # pending mail can be untracked at once

    def track_selected(self) -> None:
        ws = self._host.workspace
        ids = self._mail.selected_row_ids()  # the highlighted messages, whatever happens next
        if ws is None or not ids:
            return
        self._show_pending(ids)
        self.run_tracking(lambda: ws.enqueue_track(ids), TrackingVerb.TRACK, ids)

    def untrack_selected(self) -> None:
        """Untrack the tracked (or pending) ones among the selection: the others have no CRM
        copy to delete. States the list does not hold (a huge selection) are read on a
        worker before asking."""
        ws = self._host.workspace
        ids = self._mail.selected_row_ids()
        if ws is None or not ids:
            return
        known = self._mail.model.states_of(ids)
        unknown = [rid for rid in ids if rid not in known]
        if not unknown:
            self._confirm_untrack(ids, known)
            return

        def read() -> dict[int, TrackState]:
            store = ws.store()
            rows = ((rid, store.message(rid)) for rid in unknown)
            return {rid: row.track_state for rid, row in rows if row is not None}

        def ask(states: dict[int, TrackState]) -> None:
            if self._host.workspace is ws:
                self._confirm_untrack(ids, {**states, **known})

        self._host.say(f"Reading the state of {counted(len(unknown))}…")
        QueryOp(read, ask).failure(lambda exc: self._host.say(describe(exc))).run_in_background(
            self._workers
        )

    def _confirm_untrack(self, ids: list[int], states: dict[int, TrackState]) -> None:
        """Ask, saying how many of the selection will be untracked, then untrack those."""
        ws = self._host.workspace
        tracked = [rid for rid in ids if states.get(rid) in UNTRACKABLE]
        if ws is None:
            return
        if not tracked:
            self._host.say("None of the selected messages is tracked.", 5000)
            return
        what = (
            counted(len(tracked))
            if len(tracked) == len(ids)
            else f"{len(tracked)} of the {len(ids)} selected messages (the others are not tracked)"
        )
        answer = QMessageBox.question(
            self._window,
            "Untrack",
            f"Stop tracking {what}? Their copies in the CRM will be deleted "
            "(Edit › Undo tracks them again).",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,  # the safe answer is the default
        )
        if answer != QMessageBox.StandardButton.Yes:
            return

        def untrack() -> Changes:
            outcome = ws.untrack_undoable(tracked)
            if outcome.undo is not None:
                self.undoable.emit(outcome.undo)  # the window's undo stack, on the GUI thread
            return outcome.changes

        self.run_tracking(untrack, TrackingVerb.UNTRACK, tracked)

    def set_regarding_selected(self) -> None:
        """Open the picker, then set the chosen record on the selection (core tracks the
        untracked ones regarding it, as the CRM for Outlook did)."""
        ws = self._host.workspace
        ids = self._mail.selected_row_ids()  # now: the picker may stay open through a sync
        if ws is None or not ids:
            return
        from core.workspace.regarding import RegardingSearch
        from desktop.regarding import RegardingPicker

        view = self._mail.shown_view()  # suggestions from the mail being read
        picker = RegardingPicker(
            RegardingSearch(ws.store, ws.crm),
            self._workers,
            online=self._online(),
            parent=self._window,
            suggest_for=view.header if view is not None else None,
        )
        self.picker = picker

        def chosen() -> None:
            ref = picker.selected()
            if ref is not None:
                self.set_regarding(ids, ref)

        picker.accepted.connect(chosen)
        picker.open()

    def set_regarding(self, ids: list[int], ref: RecordRef) -> None:
        """Set ``ref`` as the regarding record of these messages."""
        ws = self._host.workspace
        if ws is None or not ids:
            return
        self._show_pending(ids)
        self.run_tracking(
            lambda: ws.enqueue_set_regarding(ids, ref),
            TrackingVerb.SET_REGARDING,
            ids,
            ref.name or ref.entity,
        )

    def view_in_crm(self) -> None:
        """Open the shown message's CRM activity in the browser; when none opened (no browser,
        no handler), say so and hand the link on (the window offers to copy it)."""
        view = self._mail.shown_view()
        if view is None or not view.activity_url:
            return
        if not QDesktopServices.openUrl(QUrl(view.activity_url)):
            said = open_link_failed()
            self._host.say(said)
            self.offer_link(view.activity_url, said)
            self.link_not_opened.emit(view.activity_url, said)

    def offer_link(self, url: str, said: str) -> None:
        """A non-modal question: copy the record's link to the clipboard, or close."""
        box = QMessageBox(QMessageBox.Icon.Information, "View in CRM", said, parent=self._window)
        box.setObjectName("viewInCrmLink")
        box.setInformativeText(url)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        copy = box.addButton("Copy link", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Close)
        box.setDefaultButton(copy)

        def answered() -> None:
            if box.clickedButton() is copy:
                QGuiApplication.clipboard().setText(url)
                self._host.say("The CRM record's link is on the clipboard.", 5000)

        box.finished.connect(answered)
        self.link_box = box
        box.open()

    # --- offline --------------------------------------------------------------------------------
    def set_work_offline(self, offline: bool) -> None:
        ws = self._host.workspace
        if ws is None:
            return

        def switch() -> Changes:
            ws.set_work_offline(offline)  # online: replays
            return Changes(messages=True, queue=True)

        def done(changes: Changes) -> None:
            self.online_changed.emit(not offline)
            if not offline:
                self._report(changes, "Back online")
                self._host.sync_now()

        Op(switch, self._bus).success(done).failure(
            lambda exc: self._host.say(describe(exc))
        ).run_in_background(self._workers)
