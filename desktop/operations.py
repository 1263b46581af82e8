"""The main window's CRM verbs on a selection: Track, Untrack, Set Regarding, View in CRM,
Work offline. Each runs a workspace verb on a worker (serial: they write the store), then
replays the outbox when online, and refreshes through ``apply_changes``.

A mixin of :class:`desktop.mainwindow.MainWindow` (kept apart so the window stays small); it
uses the window's ``workspace``, ``workers``, ``message_model`` and signals.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

from core.model import TrackState
from core.sync.report import Changes
from desktop.errors import describe


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
                self.workers.run(ws.replay_outbox, replayed, self._tracking_failed,
                                 serial=True)
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
        ids = self.selected_row_ids()
        if ws is None or not ids:
            return
        self.message_model.show_state(ids, TrackState.PENDING)
        self._run_tracking(lambda: ws.enqueue_track(ids), "Tracking", len(ids))

    def untrack_selected(self) -> None:
        ws = self.workspace
        ids = self.selected_row_ids()
        if ws is None or not ids:
            return
        answer = QMessageBox.question(
            self, "Untrack",
            f"Stop tracking {len(ids)} message(s)? Their copies in the CRM will be deleted.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._run_tracking(lambda: ws.enqueue_untrack(ids), "Untracking", len(ids))

    def set_regarding_selected(self) -> None:
        """Open the picker, then set the chosen record on the selection (core tracks the
        untracked ones regarding it, as the CRM for Outlook did)."""
        ws = self.workspace
        ids = self.selected_row_ids()
        if ws is None or not ids:
            return
        from core.regarding import RegardingSearch
        from desktop.regarding import RegardingPicker

        picker = RegardingPicker(RegardingSearch(ws.store, ws.crm), self.workers,
                                 online=self._online(), parent=self)
        self._dialogs["regarding"] = picker

        def chosen() -> None:
            ref = picker.selected()
            if ref is None:
                return
            self.message_model.show_state(ids, TrackState.PENDING)
            self._run_tracking(lambda: ws.enqueue_set_regarding(ids, ref),
                               f"Setting regarding {ref.name or ref.entity} on", len(ids))

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
