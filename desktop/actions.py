"""The main window's actions (toolbar, menus, context menu, shortcuts), with stable
objectNames for tests and accessibility tools."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar

from core.domain.model import TrackState
from desktop.icons import named_icon, state_icon


@dataclass
class Actions:
    track: QAction
    untrack: QAction
    set_regarding: QAction
    view_in_crm: QAction
    sync_now: QAction
    work_offline: QAction
    options: QAction
    new_mail: QAction
    reply: QAction
    reply_all: QAction
    forward: QAction
    forward_attachment: QAction
    address_book: QAction
    queue: QAction
    quit: QAction
    mark_read: QAction
    mark_unread: QAction
    flag: QAction
    delete: QAction
    delete_permanently: QAction
    move: QAction
    copy: QAction
    archive: QAction
    undo: QAction
    next_pane: QAction
    previous_pane: QAction
    shortcuts: QAction
    about: QAction
    group_conversations: QAction
    link_record: QAction


@dataclass(frozen=True)
class ActionSpec:
    """One row of the action table: what the user sees, and the objectName tests and
    accessibility tools find the action by. The slots are connected by the main window."""

    field: str  # the attribute of :class:`Actions`
    name: str
    text: str
    tip: str
    shortcut: str | None = None
    icon: str | None = None
    state: TrackState | None = None  # a tracked-state icon instead of a named one
    checkable: bool = False


ACTION_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "track",
        "actionTrack",
        "&Track in CRM",
        "Track the selected messages in the CRM",
        shortcut="Ctrl+T",
        state=TrackState.TRACKED,
    ),
    ActionSpec(
        "untrack",
        "actionUntrack",
        "&Untrack",
        "Stop tracking the selected messages and delete their CRM copies",
        shortcut="Ctrl+Shift+T",
        state=TrackState.NOT_TRACKED,
    ),
    ActionSpec(
        "set_regarding",
        "actionSetRegarding",
        "Set &Regarding…",
        "Choose the CRM record the selected messages are about",
        shortcut="Ctrl+Alt+R",  # Ctrl+Shift+R is Reply all, as in Outlook and Thunderbird
        icon="regarding",
    ),
    ActionSpec(
        "view_in_crm",
        "actionViewInCrm",
        "&View in CRM",
        "Open the tracked message in the CRM's web pages",
        shortcut="Ctrl+Alt+V",  # Ctrl+Shift+V is Move to Folder, as in Outlook
        icon="open_crm",
    ),
    ActionSpec(
        "sync_now",
        "actionSyncNow",
        "&Sync now",
        "Synchronise mail, address books and the CRM now",
        shortcut="F9",
        icon="sync",
    ),
    ActionSpec(
        "work_offline",
        "actionWorkOffline",
        "Work &offline",
        "Stop using the network; actions are queued until you go online",
        icon="offline",
        checkable=True,
    ),
    ActionSpec(
        "options",
        "actionOptions",
        "&Options…",
        "Tracking, address book, synchronisation and privacy options",
        shortcut="Ctrl+,",
        icon="options",
    ),
    ActionSpec(
        "new_mail",
        "actionNewMail",
        "&New mail",
        "Write a new message",
        shortcut="Ctrl+N",
        icon="compose",
    ),
    ActionSpec(
        "reply", "actionReply", "&Reply", "Reply to the sender", shortcut="Ctrl+R", icon="reply"
    ),
    ActionSpec(
        "reply_all",
        "actionReplyAll",
        "Reply &all",
        "Reply to everyone",
        shortcut="Ctrl+Shift+R",
        icon="reply_all",
    ),
    ActionSpec(
        "forward",
        "actionForward",
        "&Forward",
        "Forward the message",
        shortcut="Ctrl+L",
        icon="forward",
    ),
    ActionSpec(
        "forward_attachment",
        "actionForwardAsAttachment",
        "Forward as a&ttachment",
        "Forward the message as an attachment (the original, unchanged)",
    ),
    ActionSpec(
        "address_book",
        "actionAddressBook",
        "&Address book…",
        "Browse and search the CRM address books cached on this computer",
        shortcut="Ctrl+Shift+B",
        icon="address_book",
    ),
    ActionSpec(
        "queue",
        "actionQueue",
        "&Queued operations…",
        "Operations waiting for the CRM: retry or discard them",
        icon="pending",
    ),
    # Ctrl+Q is Mark as read, as in Outlook; Quit keeps the window manager's Alt+F4.
    ActionSpec("quit", "actionQuit", "&Quit", "Quit Trackbox"),
    # The mail actions, with Outlook's keys (Thunderbird's M toggle is not used).
    ActionSpec("mark_read", "actionMarkRead", "Mark as &read", "Mark as read", shortcut="Ctrl+Q"),
    ActionSpec(
        "mark_unread", "actionMarkUnread", "Mark as u&nread", "Mark as unread", shortcut="Ctrl+U"
    ),
    ActionSpec(
        "flag",
        "actionFlag",
        "&Flag for follow-up",
        "Flag the selected messages for follow-up, or clear the flag",
        shortcut="Insert",
    ),
    ActionSpec(
        "delete",
        "actionDelete",
        "&Delete",
        "Move to Deleted Items",
        shortcut="Delete",
    ),
    ActionSpec(
        "delete_permanently",
        "actionDeletePermanently",
        "Delete &permanently…",
        "Delete for good, without Deleted Items (asks first)",
        shortcut="Shift+Delete",
    ),
    ActionSpec(
        "move",
        "actionMove",
        "&Move to folder…",
        "Move the selected messages to another folder",
        shortcut="Ctrl+Shift+V",
    ),
    ActionSpec(
        "copy",
        "actionCopy",
        "&Copy to folder…",
        "Copy the selected messages to another folder",
        shortcut="Ctrl+Shift+Y",
    ),
    ActionSpec(
        "archive",
        "actionArchive",
        "&Archive",
        "Move to the Archive folder (made when missing)",
        shortcut="Backspace",
    ),
    ActionSpec("undo", "actionUndo", "&Undo", "Undo the last action", shortcut="Ctrl+Z"),
    # F6 / Shift+F6 go round the panes, as in Outlook and Thunderbird.
    ActionSpec(
        "next_pane",
        "actionNextPane",
        "Next &pane",
        "Move the focus to the next pane",
        shortcut="F6",
    ),
    ActionSpec(
        "previous_pane",
        "actionPreviousPane",
        "Pre&vious pane",
        "Move the focus to the previous pane",
        shortcut="Shift+F6",
    ),
    ActionSpec(
        "shortcuts",
        "actionShortcuts",
        "&Keyboard shortcuts…",
        "Every action and its key",
        shortcut="F1",
    ),
    ActionSpec("about", "actionAbout", "&About Trackbox…", "Version, licence and links"),
    ActionSpec(
        "group_conversations",
        "actionGroupByConversation",
        "Group by &Conversation",
        "List the folder's mail by conversation (remembered per folder)",
        checkable=True,
    ),
    ActionSpec(
        "link_record",
        "actionLinkRecord",
        "&Link to Another Record…",
        "Link the tracked message to one more CRM record, besides its regarding",
        shortcut="Ctrl+Alt+L",
        icon="regarding",
    ),
)

#: Toolbar actions that drop their text first when the window is narrow; Sync and
#: Work offline keep theirs (and stay on the toolbar) at 800 pixels.
LOW_PRIORITY_FIELDS = ("reply", "reply_all", "forward", "track", "untrack", "set_regarding")

#: The mail actions on the selection (Message menu and context menu, in this order).
MAIL_ACTION_FIELDS = (
    "mark_read",
    "mark_unread",
    "flag",
    None,
    "move",
    "copy",
    "archive",
    "delete",
    "delete_permanently",
)


def _action(window: QMainWindow, spec: ActionSpec) -> QAction:
    """A QAction owned by ``window``, built from one row of :data:`ACTION_SPECS`."""
    action = QAction(spec.text, window)
    action.setObjectName(spec.name)
    if spec.state is not None:
        action.setIcon(state_icon(spec.state))
    elif spec.icon:
        action.setIcon(named_icon(spec.icon))
    if spec.shortcut:
        action.setShortcut(QKeySequence(spec.shortcut))
    action.setToolTip(spec.tip)
    action.setStatusTip(spec.tip)
    if spec.checkable:
        action.setCheckable(True)
    if spec.field in LOW_PRIORITY_FIELDS:
        action.setPriority(QAction.Priority.LowPriority)
    return action


def make_actions(window: QMainWindow) -> Actions:
    """Every action of the main window, in the table's order, owned by ``window``."""
    return Actions(**{spec.field: _action(window, spec) for spec in ACTION_SPECS})


def install(window: QMainWindow, a: Actions) -> QMenu:
    """Toolbar and menus; returns the message list's context menu."""
    toolbar = QToolBar("Main")
    toolbar.setObjectName("crmToolBar")
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    toolbar.setMovable(False)
    for action in (
        a.new_mail,
        a.reply,
        a.reply_all,
        a.forward,
        None,
        a.track,
        a.untrack,
        a.set_regarding,
        None,
        a.sync_now,
        a.work_offline,
    ):
        if action is None:
            toolbar.addSeparator()
        else:
            toolbar.addAction(action)
    window.addToolBar(toolbar)

    menu = window.menuBar()
    file_menu = menu.addMenu("&File")
    for action in (a.new_mail, a.address_book, None, a.work_offline, a.options, None, a.quit):
        file_menu.addSeparator() if action is None else file_menu.addAction(action)
    edit_menu = menu.addMenu("&Edit")
    edit_menu.addAction(a.undo)
    message_menu = menu.addMenu("&Message")
    for action in (a.reply, a.reply_all, a.forward, a.forward_attachment):
        message_menu.addAction(action)
    _add_mail_actions(message_menu, a)
    crm_menu = menu.addMenu("&CRM")
    for action in (a.track, a.untrack, a.set_regarding, a.view_in_crm, None, a.sync_now, a.queue):
        crm_menu.addSeparator() if action is None else crm_menu.addAction(action)
    crm_menu.insertAction(a.view_in_crm, a.link_record)  # after Set Regarding
    view_menu = menu.addMenu("&View")
    view_menu.addActions([a.next_pane, a.previous_pane])
    view_menu.addSeparator()
    view_menu.addAction(a.group_conversations)
    help_menu = menu.addMenu("&Help")
    help_menu.addActions([a.shortcuts, a.about])

    context = QMenu(window)
    context.setObjectName("messageContextMenu")
    for action in (
        a.reply,
        a.reply_all,
        a.forward,
        None,
        a.track,
        a.untrack,
        a.set_regarding,
        a.link_record,
        a.view_in_crm,
    ):
        context.addSeparator() if action is None else context.addAction(action)
    _add_mail_actions(context, a)
    context.addSeparator()
    context.addAction(a.group_conversations)
    return context


def _add_mail_actions(menu: QMenu, a: Actions) -> None:
    menu.addSeparator()
    for name in MAIL_ACTION_FIELDS:
        menu.addSeparator() if name is None else menu.addAction(getattr(a, name))
