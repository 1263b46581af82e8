"""The main window: folder tree | message list over the reading pane, CRM actions, status bar.

No business rule lives here: every decision comes from ``core`` (through the workspace), and
every call that touches the mailbox, the CRM or the disk heavily runs on :class:`Workers`.

The window composes small parts with typed dependencies (it is their :class:`WindowHost`):

- the views, each subscribed to the :class:`~desktop.ops.ChangeBus` and refreshing what
  concerns it: :class:`FolderPane` (folder tree), :class:`MailView` (message list and reading
  pane), :class:`QueueWatch` (the status bar's queue count, the queue view, "Pending Send");
- the verbs, which run as typed operations (:mod:`desktop.ops`) and publish their ``Changes``
  on the bus: :class:`CrmVerbs` (Track, Untrack, Set Regarding, View in CRM, Work offline),
  :class:`SyncController` (the sync cycle), and the dialogs :class:`Dialogs` opens;
- the actions (:mod:`desktop.actions`), enabled for the selection by :meth:`update_actions`.

The window never refreshes a view itself (after anki's ``operation_did_execute``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QSettings, Qt, Signal
from PySide6.QtGui import QCloseEvent, QResizeEvent
from PySide6.QtWidgets import QAbstractItemView, QMainWindow, QSplitter, QVBoxLayout, QWidget

from core.domain.changes import Changes
from core.domain.problems import SyncProblem
from core.sync.problems import problem_of
from core.sync.report import QueuedOperation, SyncReport
from core.workspace.feedback import sync_done
from core.workspace.signin import needs_sign_in_again
from desktop import actions as actions_mod
from desktop.connections import LinkRecords
from desktop.dialogs import Dialogs
from desktop.errors import SIGN_IN_AGAIN, describe, describe_problems
from desktop.folders import PENDING_SEND_KINDS, FolderPane, view_states
from desktop.help_dialogs import AboutDialog, ShortcutsDialog
from desktop.icons import named_icon
from desktop.layout_memory import LayoutMemory, app_settings
from desktop.mailview import MailView
from desktop.messages import Column
from desktop.never_track import ConversationTracking
from desktop.operations import CrmVerbs
from desktop.ops import ChangeBus, QueryOp
from desktop.pim_nav import PimNavigator
from desktop.roles import FolderPathRole, ViewRole
from desktop.signin import SignInBanner
from desktop.statusbar import QueueWatch, StatusPanel
from desktop.syncing import SyncController
from desktop.undo import MailVerbs
from desktop.workers import Workers

if TYPE_CHECKING:  # the workspace (and all of core behind it) loads on a worker
    from core.config.local_options import LocalOptions
    from core.workspace.facade import Workspace

log = logging.getLogger(__name__)

__all__ = ["PENDING_SEND_KINDS", "MainWindow"]

MIN_SUBJECT_WIDTH = 160


class MainWindow(QMainWindow):
    """Emits ``message_shown(row_id)`` when the reading pane shows a message,
    ``tracking_done(Changes)`` when a Track/Untrack/Set Regarding finished (replayed, or
    queued while offline), ``mail_synced`` after each sync and ``queue_updated(count)`` when
    the queue count was read."""

    message_shown = Signal(int)
    tracking_done = Signal(object)
    mail_synced = Signal()
    queue_updated = Signal(int)
    online_changed = Signal(bool)
    reconnect_requested = Signal(str)  # profile whose connection changed (Options › Accounts)

    def __init__(
        self, workers: Workers, parent: QWidget | None = None, settings: QSettings | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("Trackbox")
        self.setWindowIcon(named_icon("trackbox"))
        self.resize(1280, 800)
        self.workers = workers
        self.workspace: Workspace | None = None
        self.local_options: LocalOptions | None = None
        self.bus = ChangeBus(self)

        # --- the views (each subscribes to the bus) ---
        self.folder_pane = FolderPane(self, workers, self.bus, self)
        self.folder_model, self.folder_tree = self.folder_pane.model, self.folder_pane.tree
        self.mail_view = MailView(self, workers, self.bus, self)
        self.message_model = self.mail_view.model
        self.message_list = self.mail_view.list
        self.reading_pane = self.mail_view.pane
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.mail_view.panel)  # the search bar over the list
        right.addWidget(self.reading_pane)
        right.setSizes([330, 470])
        outer = QSplitter(Qt.Orientation.Horizontal)
        self.folder_tree.setMinimumWidth(120)  # else its size hint: 800 pixels would not fit
        outer.addWidget(self.folder_tree)
        outer.addWidget(right)
        outer.setSizes([220, 1060])
        # Mail, Calendar, Contacts, Tasks (issue 20): a switcher under the folder tree, Ctrl+1…4.
        self.pim_nav = PimNavigator(self, outer, right, workers)
        self.mail_synced.connect(self.pim_nav.sync_now)  # a PIM pass after each mail sync
        # An expired Microsoft / AD FS sign-in: a strip over the panes, never a dialog.
        self.signin_banner = SignInBanner(workers, self)
        central = QWidget(self)
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.signin_banner)
        column.addWidget(outer, 1)
        self.setCentralWidget(central)
        self.splitters = (outer, right)
        self.layout_memory = LayoutMemory(
            self,
            self.message_list.horizontalHeader(),
            self.splitters,
            settings if settings is not None else app_settings(),
            stretch=Column.SUBJECT,
        )
        self.mail_view.grouping.settings = self.layout_memory.settings  # grouped, per folder
        self.status = StatusPanel(self.statusBar())
        self.status_connection = self.status.connection
        self.queue_watch = QueueWatch(self, self.status, workers, self.bus, self)

        # --- the verbs ---
        self.sync = SyncController(workers, self.bus, self)
        self.verbs = CrmVerbs(self, self.mail_view, workers, self.bus, self)
        self.dialogs = Dialogs(self, self.mail_view, self.queue_watch, workers, self.bus, self)
        self.mail_verbs = MailVerbs(self, self, self.mail_view, workers, self.bus, self)
        self.verbs.undoable.connect(self.mail_verbs.undo_stack.push)  # Untrack is undoable

        # --- the actions ---
        self.window_actions = actions_mod.make_actions(self)
        self.context_menu = actions_mod.install(self, self.window_actions)
        self.pim_nav.install_menus()  # Go (Ctrl+1…4) and the shown PIM view's items
        # "Stop / Resume tracking this conversation" on the one selected message
        self.conversation_tracking = ConversationTracking(
            lambda: self.workspace, workers, self.bus, self.say, self
        )
        self.context_menu.addAction(self.conversation_tracking.action)
        self._conversation_ids: tuple[int, ...] = ()
        a = self.window_actions
        # Names kept from the walking skeleton (tests use them).
        self.action_track, self.action_untrack = a.track, a.untrack
        self.action_set_regarding, self.action_sync_now = a.set_regarding, a.sync_now
        self.action_work_offline, self.action_options = a.work_offline, a.options
        self.action_quit = a.quit

        self._connect()
        self.link_records = LinkRecords(self)
        self._keyboard()
        self.layout_memory.restore_window()
        self.update_actions()

    def _keyboard(self) -> None:
        """Tab and Shift+Tab go tree → search → list → reading pane and back; F6 and
        Shift+F6 jump pane to pane; arrows stay inside a pane (the list's Tab leaves it)."""
        self.message_list.setTabKeyNavigation(False)
        bar = self.mail_view.search_bar
        chain = [self.folder_tree, bar.edit, bar.scope, *bar.buttons.values()]
        chain += [self.message_list, self.reading_pane.body]
        for splitter in self.splitters:
            splitter.splitterMoved.connect(lambda *_: self.fit_columns())
        for first, second in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(first, second)
        a = self.window_actions
        a.next_pane.triggered.connect(lambda: self.focus_pane(1))
        a.previous_pane.triggered.connect(lambda: self.focus_pane(-1))
        a.shortcuts.triggered.connect(lambda: self._help(ShortcutsDialog(self)))
        a.about.triggered.connect(lambda: self._help(AboutDialog(self)))

    def fit_columns(self) -> None:
        """Subject keeps at least a readable width: the Folder column shows only where it
        has content, and Size leaves when the list is too narrow for it (800 pixels)."""
        header = self.message_list.horizontalHeader()
        folder_hidden = not self.message_model.shows_folder
        if header.isSectionHidden(Column.FOLDER) != folder_hidden:
            header.setSectionHidden(Column.FOLDER, folder_hidden)
        fixed = sum(
            header.sectionSize(c)
            for c in range(header.count())
            if c not in (Column.SUBJECT, Column.SIZE) and not header.isSectionHidden(c)
        )
        spare = self.message_list.viewport().width() - fixed
        size_hidden = spare - header.sectionSize(Column.SIZE) < MIN_SUBJECT_WIDTH
        if header.isSectionHidden(Column.SIZE) != size_hidden:
            header.setSectionHidden(Column.SIZE, size_hidden)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.fit_columns()

    def panes(self) -> list[tuple[QWidget, QWidget]]:
        """(area, widget to focus) for each pane, in F6 order."""
        bar = self.mail_view.search_bar
        return [
            (self.folder_tree, self.folder_tree),
            (bar, bar.edit),
            (self.message_list, self.message_list),
            (self.reading_pane, self.reading_pane.body),
        ]

    def focus_pane(self, step: int) -> None:
        """Focus the pane ``step`` away from the one holding the focus (F6 / Shift+F6)."""
        panes = self.panes()
        focused = self.focusWidget()
        here = next(
            (
                i
                for i, (area, _w) in enumerate(panes)
                if focused is area or area.isAncestorOf(focused)
            ),
            -1 if step > 0 else 0,
        )
        reason = Qt.FocusReason.TabFocusReason if step > 0 else Qt.FocusReason.BacktabFocusReason
        panes[(here + step) % len(panes)][1].setFocus(reason)

    def _resolve_address(self, email: str) -> None:
        """The banner's "resolve…": create a contact or lead, or link to a record."""
        from desktop.resolve_dialog import open_resolve

        ws = self.workspace
        if ws is None:
            return
        view = self.mail_view.shown_view() or self.reading_pane.view
        dialog = open_resolve(ws, self.workers, self.bus, email, view, parent=self)
        dialog.outcome_ready.connect(lambda outcome: self.say(outcome.message()))
        self.dialogs.opened["resolve"] = dialog

    def _help(self, dialog: QWidget) -> None:
        self.dialogs.opened[dialog.objectName()] = dialog
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def _connect(self) -> None:
        a, verbs, dialogs = self.window_actions, self.verbs, self.dialogs
        a.track.triggered.connect(verbs.track_selected)
        a.untrack.triggered.connect(verbs.untrack_selected)
        a.set_regarding.triggered.connect(verbs.set_regarding_selected)
        a.view_in_crm.triggered.connect(verbs.view_in_crm)
        a.sync_now.triggered.connect(self.sync_now)
        a.work_offline.toggled.connect(verbs.set_work_offline)
        a.options.triggered.connect(dialogs.open_options)
        a.new_mail.triggered.connect(lambda: dialogs.open_compose("new"))
        a.reply.triggered.connect(lambda: dialogs.open_compose("reply"))
        a.reply_all.triggered.connect(lambda: dialogs.open_compose("reply_all"))
        a.forward.triggered.connect(lambda: dialogs.open_compose("forward"))
        a.forward_attachment.triggered.connect(lambda: dialogs.open_compose("forward_attachment"))
        a.address_book.triggered.connect(lambda: dialogs.open_address_book(""))
        a.queue.triggered.connect(lambda: dialogs.open_queue())
        a.quit.triggered.connect(self.close)
        a.group_conversations.triggered.connect(self.mail_view.set_grouped)
        self.mail_view.grouping_changed.connect(a.group_conversations.setChecked)
        self._connect_mail_actions()
        self.status.queue_clicked.connect(lambda: dialogs.open_queue())
        self.reading_pane.banner.resolve_requested.connect(self._resolve_address)

        verbs.tracking_done.connect(self.tracking_done)
        verbs.online_changed.connect(self._online_switched)  # the status bar first
        verbs.online_changed.connect(self.online_changed)
        verbs.reachability.connect(self._show_connection)  # the CRM went away during a verb
        self.queue_watch.read.connect(self._queue_read)
        self.queue_watch.read.connect(self.folder_pane.show_queue)
        self.sync.started.connect(lambda: self.status.set_progress("Synchronising…", 0, None))
        self.sync.progress.connect(self.status.set_progress)
        self.sync.finished.connect(self._synced)
        self.sync.failed.connect(self._sync_failed)
        self.bus.changes_applied.connect(self._watch_sign_in)
        self.signin_banner.signed_in.connect(self._signed_in_again)

        self.folder_tree.selectionModel().currentChanged.connect(self._folder_changed)
        self.mail_view.selection_changed.connect(self.update_actions)
        self.mail_view.message_shown.connect(self.message_shown)
        self.message_list.customContextMenuRequested.connect(self._context_menu)

    def _connect_mail_actions(self) -> None:
        a, mail = self.window_actions, self.mail_verbs
        a.mark_read.triggered.connect(lambda: mail.mark_read(True))
        a.mark_unread.triggered.connect(lambda: mail.mark_read(False))
        a.flag.triggered.connect(mail.toggle_flag)
        a.delete.triggered.connect(mail.delete)
        a.delete_permanently.triggered.connect(mail.delete_permanently)
        a.move.triggered.connect(lambda: mail.move_to(copy=False))
        a.copy.triggered.connect(lambda: mail.move_to(copy=True))
        a.archive.triggered.connect(mail.archive)
        a.undo.triggered.connect(mail.undo)
        mail.undo_stack.changed.connect(self._undo_changed)
        self.mail_view.message_shown.connect(mail.shown)
        self.folder_model.messages_dropped.connect(mail.drop)
        # Keys that edit text (Delete, Backspace, Insert) act only where the list has focus.
        for action in (a.delete, a.delete_permanently, a.archive, a.flag):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.message_list.addAction(action)
        self.message_list.setDragEnabled(True)
        self.message_list.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)

    def _undo_changed(self, label: str) -> None:
        a = self.window_actions
        a.undo.setText(f"&Undo {label}" if label else "&Undo")
        self.update_actions()

    def _context_menu(self, pos: QPoint) -> None:
        self.context_menu.exec(self.message_list.viewport().mapToGlobal(pos))

    # --- workspace ----------------------------------------------------------------------
    def set_workspace(self, workspace: Workspace) -> None:
        """Attach the user's workspace, read its options, and start the first sync."""
        self.workspace = workspace
        self.sync.set_workspace(workspace)
        self.signin_banner.set_workspace(workspace)
        self.pim_nav.set_workspace(workspace)
        self.setWindowTitle(f"Trackbox — {workspace.owner.display()}")
        self._show_connection()
        self.update_actions()

        def shown_last(report: SyncReport | None) -> None:
            if report is not None and self.workspace is workspace:
                self.status.set_last_sync(report.finished, ok=report.ok)

        QueryOp(workspace.last_sync, shown_last).failure(lambda _e: None).run_in_background(
            self.workers
        )
        QueryOp(workspace.local_options, self.apply_local_options).failure(
            lambda exc: self.say(describe(exc))
        ).run_in_background(self.workers)
        self.sync_now()

    def detach_workspace(self) -> None:
        """Forget the workspace (before it is closed): late results are then ignored."""
        self.sync.set_interval(0)
        self.sync.cancel()
        self.workers.wait()
        self.workspace = None
        self.mail_verbs.undo_stack.clear()
        self.sync.set_workspace(None)
        self.signin_banner.set_workspace(None)
        self.pim_nav.set_workspace(None)
        self.mail_view.detach()

    def apply_local_options(self, options: LocalOptions) -> None:
        """Interval, colour coding and banner visibility from the profile's local options."""
        self.local_options = options
        self.sync.set_interval(options.sync_interval_minutes)
        self.message_model.set_colour_tracked(options.colour_tracked)
        self.reading_pane.set_banner_enabled(options.show_tracking_banner)

    def connection_saved(self, profile: str) -> None:
        """The account changed: say so, and ask whoever opened the profile to reconnect."""
        self.say("The account settings were saved; Trackbox reconnects with them now.")
        self.reconnect_requested.emit(profile)

    def _show_connection(self, detail: str = "") -> None:
        ws = self.workspace
        if ws is not None:
            expired = self.signin_banner.expired  # signed out: nothing reaches the CRM
            online = ws.online and not expired
            self.status.set_connection(
                online, ws.crm.base_url, SIGN_IN_AGAIN if expired else detail
            )

    def _online_switched(self, online: bool) -> None:
        self._show_connection("" if online else "working offline")

    def say(self, text: str, msecs: int = 0) -> None:
        self.statusBar().showMessage(text, msecs)

    # --- sync -----------------------------------------------------------------------------
    def sync_now(self) -> None:
        if self.sync.sync_now():
            self.action_sync_now.setEnabled(False)
            self.say("Synchronising…")

    def _synced(self, report: SyncReport) -> None:
        """After a cycle (the views refreshed from its change notice already)."""
        if self.workspace is None:
            return
        self.status.clear_progress()
        self.action_sync_now.setEnabled(True)
        self._show_connection("" if report.online else "the CRM cannot be reached")
        self.status.set_last_sync(report.finished, ok=report.ok)
        errors = report.errors or report.changes.errors
        ws_offline = self.workspace.work_offline
        said = sync_done(
            crm_online=report.online, mail_online=report.mail_online, work_offline=ws_offline
        )
        self.say(describe_problems(errors) if errors else said, 0 if errors else 3000)
        if not self._sign_in_expired(errors) and report.online:
            self.signin_banner.hide_banner()
            self._show_connection()
        self.mail_synced.emit()

    def _sync_failed(self, exc: BaseException) -> None:
        self.status.clear_progress()
        self.action_sync_now.setEnabled(True)
        self.say(f"Sync failed. {describe(exc)}")
        self._sign_in_expired((problem_of(exc),))
        self._show_connection(describe(exc))
        self.mail_synced.emit()

    # --- sign-in ------------------------------------------------------------------------
    def _sign_in_expired(self, problems: tuple[SyncProblem, ...] | list[SyncProblem]) -> bool:
        """Show the banner when only a new sign-in helps; True then."""
        ws = self.workspace
        profile = ws.profile if ws is not None else None
        oauth = profile is not None and profile.config.uses_oauth
        if not needs_sign_in_again(problems, oauth):
            return False
        self.signin_banner.show_expired()
        self._show_connection()
        return True

    def _watch_sign_in(self, changes: Changes) -> None:
        """Any operation's problems (a Track, a retry, a sync) may say the sign-in expired."""
        if changes.errors:
            self._sign_in_expired(changes.errors)

    def sign_in_changed(self, signed_in: bool) -> None:
        """Signed in from Options › Accounts: the banner's work is done there too."""
        if signed_in and self.signin_banner.expired:
            self.signin_banner.hide_banner()
            self._signed_in_again()

    def _signed_in_again(self) -> None:
        """Signed in again: the queued operations go on the next sync, started now."""
        self.say("Signed in again; synchronising…", 5000)
        self._show_connection()
        self.sync_now()

    def _queue_read(self, ops: list[QueuedOperation]) -> None:
        self.queue_updated.emit(len(ops))

    # --- folders ------------------------------------------------------------------------
    def _folder_changed(
        self, current: QModelIndex | QPersistentModelIndex, _previous: object = None
    ) -> None:
        """Open what the user picked in the tree: a folder, a CRM view, or (Pending Send)
        the queue view of the mails waiting to go out."""
        if self.workspace is None or not current.isValid():
            return
        if current.data(ViewRole) == "pending_send":
            self.dialogs.open_queue(kinds=PENDING_SEND_KINDS)
            return
        path = current.data(FolderPathRole)
        if path:
            self.mail_view.show_folder(path, self.folder_pane.take_size_hint(path))
            self.layout_memory.show(f"folder:{path}")
            self.fit_columns()
        elif states := view_states(current):
            self.mail_view.show_states(states)
            self.layout_memory.show("view:" + ",".join(sorted(str(s) for s in states)))
            self.fit_columns()

    # --- selection ----------------------------------------------------------------------
    def selected_row_ids(self) -> list[int]:
        """The ids of exactly the highlighted messages."""
        return self.mail_view.selected_row_ids()

    def select_rows(self, rows: list[int]) -> None:
        """Select these list rows (tests and keyboard helpers)."""
        self.mail_view.select_rows(rows)

    def update_actions(self) -> None:
        ws = self.workspace
        a = self.window_actions
        rows = self.mail_view.selected_rows()
        count = len(rows)
        # Reply, Forward and View in CRM use the reading pane's message: only once it shows
        # the selected one (not while it loads it, nor a message the list no longer selects).
        view = self.mail_view.shown_view()
        shown = view is not None

        def offline_tip(what: str) -> str | None:
            """None when attached to a workspace; else why ``what`` is disabled."""
            return None if ws is not None else f"{what}: not connected to a mailbox yet."

        gates = {
            a.track: (count > 0, offline_tip("Track")),
            a.untrack: (count > 0 and self.mail_view.untrack_usable(rows), offline_tip("Untrack")),
            a.set_regarding: (count > 0, offline_tip("Set Regarding")),
            a.view_in_crm: (view is not None and bool(view.activity_url), None),
            a.sync_now: (not self.sync.running, offline_tip("Sync")),
            a.work_offline: (True, offline_tip("Work offline")),
            a.options: (True, offline_tip("Options")),
            a.new_mail: (True, offline_tip("Writing mail")),
            a.reply: (shown, offline_tip("Reply")),
            a.reply_all: (shown, offline_tip("Reply all")),
            a.forward: (shown, offline_tip("Forward")),
            a.forward_attachment: (shown, offline_tip("Forward")),
            a.address_book: (True, offline_tip("Address book")),
            a.queue: (True, offline_tip("Queue")),
            a.group_conversations: (self.mail_view.can_group(), offline_tip("Conversations")),
            a.undo: (len(self.mail_verbs.undo_stack) > 0, offline_tip("Undo")),
        }
        for name in actions_mod.MAIL_ACTION_FIELDS:
            if name is not None:
                gates[getattr(a, name)] = (count > 0, offline_tip("Mail actions"))
        # Only what changed is set: this runs on every selection and layout change, and
        # PySide6 6.12 on CPython 3.11 drops a reference to None on each void call.
        for action, (usable, tip) in gates.items():
            enabled = usable and tip is None
            if action.isEnabled() != enabled:
                action.setEnabled(enabled)
            text = tip or action.statusTip()
            if action.toolTip() != text:
                action.setToolTip(text)
        ids = tuple(self.selected_row_ids()) if ws is not None else ()
        if ids != self._conversation_ids:  # its state is read on a worker: only on a change
            self._conversation_ids = ids
            self.conversation_tracking.selection_changed(ids)

    # --- shutdown -----------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.say("Finishing background work…")
        self.layout_memory.save_window()
        self.sync.cancel()
        self.sync.set_interval(0)
        self.workers.wait(10_000)
        super().closeEvent(event)
