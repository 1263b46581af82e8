"""Opening the main window's dialogs (``Dialogs``): Options, Compose (new, reply, reply all,
forward), Address book, the queue view.

Each dialog is kept in ``opened`` under its name (tests and screenshots find it there). What a
dialog changes reaches the views through the change bus: the compose window and the Options
dialog run their saves as :class:`~desktop.ops.Op`; the queue view's ``changed(Changes)`` after
a retry or discard is published on the bus here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from core.sync.report import QueuedOperation
from desktop.host import WindowHost
from desktop.mailview import MailView
from desktop.ops import ChangeBus
from desktop.statusbar import QueueWatch
from desktop.workers import Workers

if TYPE_CHECKING:
    from desktop.queueview import QueueView


class Dialogs(QObject):
    """Opens the dialogs over ``window``; ``opened`` holds the last one of each kind."""

    def __init__(
        self,
        host: WindowHost,
        mail: MailView,
        queue: QueueWatch,
        workers: Workers,
        bus: ChangeBus,
        window: QWidget,
    ) -> None:
        super().__init__(window)
        self._host = host
        self._mail = mail
        self._queue = queue
        self._workers = workers
        self._bus = bus
        self._window = window
        self.opened: dict[str, QWidget] = {}
        self._queue_view: QueueView | None = None
        queue.read.connect(self._show_queue)
        mail.message_opened.connect(self.open_message)

    def open_options(self) -> None:
        from desktop.options import OptionsDialog

        ws = self._host.workspace
        if ws is None:
            return
        dialog = OptionsDialog(ws, self._workers, self._bus, parent=self._window)
        self.opened["options"] = dialog
        dialog.saved.connect(self._host.apply_local_options)
        dialog.connection_saved.connect(self._host.connection_saved)
        dialog.accounts.signin.changed.connect(
            lambda status: self._host.sign_in_changed(status.username is not None)
        )
        dialog.open()

    def open_compose(self, mode: str) -> None:
        from core.config.local_options import LocalOptions
        from desktop.compose import ComposeWindow

        ws = self._host.workspace
        if ws is None:
            return
        view = self._mail.shown_view() if mode != "new" else None
        options = self._host.local_options or LocalOptions()
        # A reply or forward quotes the original: in its format (plain text stays plain).
        quotes = view is not None and mode in ("reply", "reply_all", "forward")
        original_is_html = (view.body_html is not None) if quotes and view else None
        window = ComposeWindow(
            ws,
            self._workers,
            self._bus,
            online=ws.online,
            warn_tracked=options.warn_before_sending_tracked,
            plain_text=options.compose_in_plain_text(original_is_html),
        )
        if view is not None:
            window.prefill(mode, view, ws.owner)
        self.opened["compose"] = window
        window.show()

    def open_message(self, row_id: int, is_draft: bool) -> None:
        """A double-clicked message: a draft reopens in a compose window (its local copy
        when Trackbox saved it); other mail is read in the pane, where it already is."""
        from desktop.compose import open_draft

        ws = self._host.workspace
        if ws is None or not is_draft:
            return
        options = self._host.local_options
        window = open_draft(
            ws,
            self._workers,
            self._bus,
            row_id,
            online=ws.online,
            warn_tracked=options.warn_before_sending_tracked if options is not None else True,
        )
        self.opened["compose"] = window
        window.show()

    def open_address_book(self, text: str = "") -> None:
        from desktop.addressbook import AddressBookDialog

        ws = self._host.workspace
        if ws is None:
            return
        dialog = AddressBookDialog(
            ws.store, self._workers, parent=self._window, workspace=ws, bus=self._bus
        )
        self.opened["addressbook"] = dialog
        if text:
            dialog.search.setText(text)
        dialog.open()

    def open_queue(self, kinds: tuple[str, ...] | None = None) -> None:
        from desktop.queueview import QueueView

        ws = self._host.workspace
        if ws is None:
            return
        view = QueueView(ws, self._workers, kinds=kinds, parent=self._window)
        view.changed.connect(self._bus.publish)  # a retry or discard: the views refresh
        self.opened["queue"] = view
        self._queue_view = view
        view.open()
        self._queue.refresh()

    def _show_queue(self, ops: Sequence[QueuedOperation]) -> None:
        """Fresh queue reads go to the open queue view."""
        view = self._queue_view
        if view is not None:
            view.show_operations(list(ops))
