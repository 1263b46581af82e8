"""Opening the main window's dialogs: Options, Compose (new, reply, reply all, forward),
Address book, the queue view. A mixin of :class:`desktop.mainwindow.MainWindow`."""

from __future__ import annotations

from typing import Any


class DialogOpeners:
    """Each dialog is kept in ``_dialogs`` (tests and screenshots find it there)."""

    workspace: Any
    workers: Any
    reading_pane: Any
    local_options: Any
    _dialogs: dict[str, Any]

    # --- dialogs --------------------------------------------------------------------------------
    def open_options(self) -> None:
        from desktop.options import OptionsDialog

        if self.workspace is None:
            return
        dialog = OptionsDialog(self.workspace, self.workers, parent=self)
        self._dialogs["options"] = dialog
        dialog.saved.connect(self.apply_local_options)
        dialog.connection_saved.connect(self._connection_saved)
        dialog.open()

    def _connection_saved(self, profile: str) -> None:
        """The account changed: say so, and ask whoever opened the profile to reconnect."""
        self.statusBar().showMessage(  # type: ignore[attr-defined]
            "The account settings were saved; Trackbox reconnects with them now."
        )
        self.reconnect_requested.emit(profile)  # type: ignore[attr-defined]

    def open_compose(self, mode: str) -> None:
        from desktop.compose import ComposeWindow

        if self.workspace is None:
            return
        view = self.reading_pane.view if mode != "new" else None
        window = ComposeWindow(
            self.workspace,
            self.workers,
            online=self._online(),
            warn_tracked=bool(getattr(self.local_options, "warn_before_sending_tracked", True)),
        )
        if view is not None:
            window.prefill(mode, view, self.workspace.owner)
        window.sent.connect(self.apply_changes)
        self._dialogs["compose"] = window
        window.show()

    def open_address_book(self, text: str = "") -> None:
        from desktop.addressbook import AddressBookDialog

        if self.workspace is None:
            return
        dialog = AddressBookDialog(self.workspace.store, self.workers, parent=self)
        self._dialogs["addressbook"] = dialog
        if text:
            dialog.search.setText(text)
        dialog.open()

    def open_queue(self, kinds: tuple[str, ...] | None = None) -> None:
        from desktop.queueview import QueueView

        ws = self.workspace
        if ws is None:
            return
        view = QueueView(ws, self.workers, kinds=kinds, parent=self)
        view.changed.connect(self.apply_changes)
        self._dialogs["queue"] = view
        view.open()
        self.refresh_queue()
