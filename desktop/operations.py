"""The main window's CRM verbs on a selection: Track, Untrack, Set Regarding, View in CRM,
Work offline. Each runs a workspace verb on a worker (serial: they write the store), then
replays the outbox when online, and refreshes through ``apply_changes``.

A mixin of :class:`desktop.mainwindow.MainWindow` (kept apart so the window stays small); it
uses the window's ``workspace``, ``workers``, ``message_model`` and signals.

Every verb takes the selected messages' ids at the gesture, before any dialog or worker, and
acts on exactly those: a sync or a sort while a question or the picker is open changes
nothing about what the user chose.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

from core.domain.model import TrackState
from core.sync.report import Changes
from desktop.errors import describe
from desktop.messages import UNTRACKABLE


class TrackingOperations:
    """Track / Untrack / Set Regarding / View in CRM / Work offline."""

    workspace: Any
    workers: Any
    message_model: Any
    reading_pane: Any
    tracking_done: Any
    online_changed: Any
    _dialogs: dict[str, Any]
    # provided by MainWindow
    apply_changes: Any
    selected_row_ids: Any
    sync_now: Any
    _update_actions: Any
    _say: Any
    _online: Any
    _show_connection: Any

    # --- CRM actions --------------------------------------------------------------------
    def _run_tracking(self, op: Any, what: str, count: int) -> None:
        """Run a tracking verb (serial: it writes the store), then replay the outbox when
        online."""
        ws = self.workspace
        assert ws is not None
        self._say(f"{what} {count} message(s)…")

        def done(changes: Changes) -> None:
            self.apply_changes(changes)
            if self._online():
                self.workers.run(ws.replay_outbox, replayed, self._tracking_failed, serial=True)
            else:
                self._say(f"{count} operation(s) queued; they run when you are online.")
                self.tracking_done.emit(changes)

        def replayed(changes: Changes) -> None:
            self.apply_changes(changes)
            self._report(changes)
            self.tracking_done.emit(changes)

        self.workers.run(op, done, self._tracking_failed, serial=True)

    def _report(self, changes: Changes) -> None:
        if changes.errors:
            self._say("; ".join(changes.errors))
        else:
            self._say("Done", 3000)

    def track_selected(self) -> None:
        ws = self.workspace
        ids = self.selected_row_ids()  # the highlighted messages, whatever happens next
        if ws is None or not ids:
            return
        self.message_model.show_state(ids, TrackState.PENDING)
        self._update_actions()  # pending mail can be untracked at once
        self._run_tracking(lambda: ws.enqueue_track(ids), "Tracking", len(ids))

    def untrack_selected(self) -> None:
        """Untrack the tracked (or pending) ones among the selection: the others have no CRM
        copy to delete. States the list does not hold (a huge selection) are read on a
        worker before asking."""
        ws = self.workspace
        ids = self.selected_row_ids()
        if ws is None or not ids:
            return
        known = self.message_model.states_of(ids)
        unknown = [rid for rid in ids if rid not in known]
        if not unknown:
            self._confirm_untrack(ids, known)
            return

        def read() -> dict[int, TrackState]:
            store = ws.store()
            rows = ((rid, store.message(rid)) for rid in unknown)
            return {rid: row.track_state for rid, row in rows if row is not None}

        def ask(states: dict[int, TrackState]) -> None:
            if self.workspace is ws:
                self._confirm_untrack(ids, {**states, **known})

        self._say(f"Reading the state of {len(unknown)} message(s)…")
        self.workers.run(read, ask, lambda exc: self._say(describe(exc)))

    def _confirm_untrack(self, ids: list[int], states: dict[int, TrackState]) -> None:
        """Ask, saying how many of the selection will be untracked, then untrack those."""
        ws = self.workspace
        tracked = [rid for rid in ids if states.get(rid) in UNTRACKABLE]
        if ws is None:
            return
        if not tracked:
            self._say("None of the selected messages is tracked.", 5000)
            return
        what = (
            f"{len(tracked)} message(s)"
            if len(tracked) == len(ids)
            else f"{len(tracked)} of the {len(ids)} selected messages (the others are not tracked)"
        )
        answer = QMessageBox.question(
            self,
            "Untrack",
            f"Stop tracking {what}? Their copies in the CRM will be deleted.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._run_tracking(lambda: ws.enqueue_untrack(tracked), "Untracking", len(tracked))

    def set_regarding_selected(self) -> None:
        """Open the picker, then set the chosen record on the selection (core tracks the
        untracked ones regarding it, as the CRM for Outlook did)."""
        ws = self.workspace
        ids = self.selected_row_ids()  # now: the picker may stay open through a sync
        if ws is None or not ids:
            return
        from core.workspace.regarding import RegardingSearch
        from desktop.regarding import RegardingPicker

        picker = RegardingPicker(
            RegardingSearch(ws.store, ws.crm), self.workers, online=self._online(), parent=self
        )
        self._dialogs["regarding"] = picker

        def chosen() -> None:
            ref = picker.selected()
            if ref is None:
                return
            self.message_model.show_state(ids, TrackState.PENDING)
            self._update_actions()
            self._run_tracking(
                lambda: ws.enqueue_set_regarding(ids, ref),
                f"Setting regarding {ref.name or ref.entity} on",
                len(ids),
            )

        picker.accepted.connect(chosen)
        picker.open()

    def view_in_crm(self) -> None:
        view = self.reading_pane.view
        if view is not None and view.activity_url:
            QDesktopServices.openUrl(QUrl(view.activity_url))

    def _tracking_failed(self, exc: BaseException) -> None:
        self.message_model.refresh()
        self._say(f"Tracking failed. {describe(exc)}")
        self.tracking_done.emit(Changes(messages=True, errors=(describe(exc),)))

    # --- offline ------------------------------------------------------------------------------
    def set_work_offline(self, offline: bool) -> None:
        ws = self.workspace
        if ws is None:
            return

        def op() -> Changes:
            ws.set_work_offline(offline)  # online: replays
            return Changes(messages=True, queue=True)

        def done(changes: Changes) -> None:
            self._show_connection("working offline" if offline else "")
            self.online_changed.emit(not offline)
            self.apply_changes(changes)
            if not offline:
                self._report(changes)
                self.sync_now()

        self.workers.run(op, done, lambda exc: self._say(describe(exc)), serial=True)
