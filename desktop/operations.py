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

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

from core.domain.changes import Changes
from core.domain.model import RecordRef, TrackState
from core.sync.problems import problem_of
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

    def _online(self) -> bool:
        ws = self._host.workspace
        return ws is not None and ws.online

    # --- tracking -------------------------------------------------------------------------------
    def run_tracking(self, op: Callable[[], Changes], what: str, ids: list[int]) -> None:
        """Run a tracking verb on ``ids``, then replay the outbox when online."""
        ws = self._host.workspace
        assert ws is not None
        count = len(ids)
        self._host.say(f"{what} {count} message(s)…")

        def failed(exc: BaseException) -> None:
            # The pending state shown at the gesture is dropped: the rows show the store's.
            problem = problem_of(exc, what.lower())
            changes = Changes(messages=True, row_ids=frozenset(ids), errors=(problem,))
            self._bus.publish(changes)
            self._host.say(f"Tracking failed. {describe(exc)}")
            self.tracking_done.emit(changes)

        def replayed(changes: Changes) -> None:
            self._report(changes)
            self.tracking_done.emit(changes)

        def queued(changes: Changes) -> None:
            if self._online():
                Op(ws.replay_outbox, self._bus).success(replayed).failure(failed).run_in_background(
                    self._workers
                )
            else:
                self._host.say(f"{count} operation(s) queued; they run when you are online.")
                self.tracking_done.emit(changes)

        Op(op, self._bus).success(queued).failure(failed).run_in_background(self._workers)

    def _report(self, changes: Changes) -> None:
        if changes.errors:
            self._host.say(describe_problems(changes.errors))
        else:
            self._host.say("Done", 3000)

    def _show_pending(self, ids: list[int]) -> None:
        self._mail.model.show_state(ids, TrackState.PENDING)
        self._host.update_actions()  # pending mail can be untracked at once

    def track_selected(self) -> None:
        ws = self._host.workspace
        ids = self._mail.selected_row_ids()  # the highlighted messages, whatever happens next
        if ws is None or not ids:
            return
        self._show_pending(ids)
        self.run_tracking(lambda: ws.enqueue_track(ids), "Tracking", ids)

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

        self._host.say(f"Reading the state of {len(unknown)} message(s)…")
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
            f"{len(tracked)} message(s)"
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

        self.run_tracking(untrack, "Untracking", tracked)

    def set_regarding_selected(self) -> None:
        """Open the picker, then set the chosen record on the selection (core tracks the
        untracked ones regarding it, as the CRM for Outlook did)."""
        ws = self._host.workspace
        ids = self._mail.selected_row_ids()  # now: the picker may stay open through a sync
        if ws is None or not ids:
            return
        from core.workspace.regarding import RegardingSearch
        from desktop.regarding import RegardingPicker

        picker = RegardingPicker(
            RegardingSearch(ws.store, ws.crm),
            self._workers,
            online=self._online(),
            parent=self._window,
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
            f"Setting regarding {ref.name or ref.entity} on",
            ids,
        )

    def view_in_crm(self) -> None:
        view = self._mail.shown_view()
        if view is not None and view.activity_url:
            QDesktopServices.openUrl(QUrl(view.activity_url))

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
                self._report(changes)
                self._host.sync_now()

        Op(switch, self._bus).success(done).failure(
            lambda exc: self._host.say(describe(exc))
        ).run_in_background(self._workers)
