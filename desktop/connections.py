"""Track to more than one record, in the window: the "Also linked to: …" line under the
tracking banner (each link with a remove link) and "Link to Another Record…" (Ctrl+Alt+L),
which opens the regarding picker in link mode.

Everything it reads or changes goes through ``core.workspace.connections`` on workers: the
links of the shown mail are read from the store at once and then from the CRM when online;
linking and unlinking queue outbox operations, then replay when online.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QLabel, QWidget

from core.domain.changes import Changes
from core.domain.model import RecordRef
from core.store.connections import REMOVING, MailConnection
from core.workspace.connections import ConnectionsService, banner_text, linkable
from desktop.errors import describe
from desktop.ops import Op, QueryOp

if TYPE_CHECKING:
    from desktop.mainwindow import MainWindow
    from desktop.regarding import RegardingPicker


class ConnectionsBar(QLabel):
    """``Also linked to: Contoso Ltd (account) ✕, Ben Ng (contact) ✕``; hidden without
    links. ``unlink_requested(MailConnection)`` when a ✕ is activated."""

    unlink_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("connectionsBar")
        self.setAccessibleName("Also linked to")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setOpenExternalLinks(False)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.LinksAccessibleByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByKeyboard
        )
        self.setStyleSheet("#connectionsBar { color: #1f7a3f; padding: 0 8px; }")
        self.linkActivated.connect(self._link)
        self.links: list[MailConnection] = []
        self.show_links([])

    @property
    def plain(self) -> str:
        """What the line says, without its links (tests, screen readers)."""
        return banner_text(self.links)

    def show_links(self, links: list[MailConnection]) -> None:
        self.links = [c for c in links if c.state != REMOVING]
        parts = [
            f"{html.escape(c.record.name or c.record.id)} ({html.escape(c.record.entity)})"
            + (" <i>(waiting for the CRM)</i>" if c.connection_id is None else "")
            + f' <a href="unlink:{i}" title="Remove this link">✕</a>'
            for i, c in enumerate(self.links)
        ]
        self.setText(f"Also linked to: {', '.join(parts)}" if parts else "")
        self.setAccessibleDescription(self.plain)
        self.setVisible(bool(parts))

    def _link(self, url: str) -> None:
        index = url.removeprefix("unlink:")
        if index.isdigit() and int(index) < len(self.links):
            self.unlink_requested.emit(self.links[int(index)])


class LinkRecords(QObject):
    """Wires "Link to Another Record…" and the links line to a main window.
    ``links_shown(row_id)`` after the line shows the links of a mail (tests wait for it)."""

    links_shown = Signal(int)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.action = window.window_actions.link_record
        self.bar: ConnectionsBar = window.reading_pane.connections
        self.picker: RegardingPicker | None = None  # the last picker opened (tests)
        self._serial = 0
        self._row: int | None = None  # the mail whose links the line shows
        window.mail_view.message_shown.connect(self.load)
        window.mail_view.selection_changed.connect(self.update_action)
        self.action.triggered.connect(self.link_selected)
        self.bar.unlink_requested.connect(self.unlink)
        self.update_action()

    def _service(self) -> ConnectionsService | None:
        ws = self.window.workspace
        return ConnectionsService(ws) if ws is not None else None

    def update_action(self) -> None:
        """Enabled for one shown mail that is tracked (or being tracked)."""
        view = self.window.mail_view.shown_view()
        usable = self.window.workspace is not None and view is not None
        enabled = usable and view is not None and linkable(view.track_state)
        if self.action.isEnabled() != enabled:
            self.action.setEnabled(enabled)
        tip = self.action.statusTip() if enabled else "Only a tracked mail can be linked."
        if self.action.toolTip() != tip:
            self.action.setToolTip(tip)

    # --- the links line ----------------------------------------------------------------------
    def load(self, row_id: int) -> None:
        """Show the links of the shown mail: kept ones at once, then the CRM's."""
        self._serial += 1
        serial, service = self._serial, self._service()
        view = self.window.reading_pane.view
        if row_id != self._row:  # never another mail's links, even for a moment
            self._row = row_id
            self.bar.show_links([])
        if (
            service is None
            or view is None
            or not linkable(view.track_state)
            or not self.window.reading_pane.banner.enabled_by_user
        ):
            self.bar.show_links([])
            return

        def shown(links: list[MailConnection]) -> None:
            if serial == self._serial:
                self.bar.show_links(links)
                self.links_shown.emit(row_id)

        def cached(links: list[MailConnection]) -> None:
            shown(links)
            ws = self.window.workspace
            if serial == self._serial and ws is not None and ws.online:
                QueryOp(lambda: service.refresh(row_id), shown, owner=self).failure(
                    lambda exc: self.window.say(f"Linked records: {describe(exc)}", 5000)
                ).run_in_background(self.window.workers)

        QueryOp(lambda: service.cached(row_id), cached, owner=self).failure(
            lambda exc: self.window.say(describe(exc))
        ).run_in_background(self.window.workers)

    # --- linking ------------------------------------------------------------------------------
    def link_selected(self) -> None:
        """Pick a record (suggestions first) and link the shown mail to it."""
        ws, view = self.window.workspace, self.window.mail_view.shown_view()
        if ws is None or view is None or not linkable(view.track_state):
            return
        from core.workspace.regarding import RegardingSearch
        from desktop.regarding import RegardingPicker

        row_id = view.row_id
        picker = RegardingPicker(
            RegardingSearch(ws.store, ws.crm),
            self.window.workers,
            online=ws.online,
            title="Link to Another Record",
            parent=self.window,
            suggest_for=view.header,
            ok_text="Link",
        )
        self.picker = picker

        def chosen() -> None:
            ref = picker.selected()
            if ref is not None:
                self.link(row_id, ref)

        picker.accepted.connect(chosen)
        picker.open()

    def link(self, row_id: int, record: RecordRef) -> None:
        service = self._service()
        if service is None:
            return
        self._change(
            lambda: service.enqueue_link(row_id, record),
            row_id,
            f"Linked to {record.name or record.entity}",
            "Linking",
        )

    def unlink(self, link: MailConnection) -> None:
        service, view = self._service(), self.window.reading_pane.view
        if service is None or view is None:
            return
        row_id = view.row_id
        self._change(
            lambda: service.enqueue_unlink(row_id, link),
            row_id,
            f"Link to {link.record.name or link.record.entity} removed",
            "Removing the link",
        )

    def _change(self, queue: Callable[[], Changes], row_id: int, done: str, verb: str) -> None:
        """Queue (the line shows it at once), then replay when online; say what happened."""
        ws = self.window.workspace
        assert ws is not None
        bus, workers = self.window.bus, self.window.workers

        def failed(exc: BaseException) -> None:
            self.window.say(describe(exc), 8000)

        def replayed(changes: Changes) -> None:
            self._reload(row_id)
            if changes.errors:
                self.window.say(f"{verb} failed: see Queued operations.", 8000)
            elif ws.online:
                self.window.say(done, 5000)
            else:
                self.window.say("1 queued: the CRM is offline.", 8000)

        def queued(_changes: Changes) -> None:
            self._reload(row_id)
            if ws.online:
                Op(ws.replay_outbox, bus).success(replayed).failure(failed).run_in_background(
                    workers
                )
            else:
                self.window.say("1 queued: the CRM is offline.", 8000)

        Op(queue, bus).success(queued).failure(failed).run_in_background(workers)

    def _reload(self, row_id: int) -> None:
        view = self.window.reading_pane.view
        if view is not None and view.row_id == row_id:
            self.load(row_id)


__all__ = ["ConnectionsBar", "LinkRecords"]
