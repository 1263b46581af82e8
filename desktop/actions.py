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
    address_book: QAction
    queue: QAction
    quit: QAction


def _action(
    window: QMainWindow,
    name: str,
    text: str,
    tip: str,
    *,
    shortcut: str | None = None,
    icon: str | None = None,
    state: TrackState | None = None,
) -> QAction:
    action = QAction(text, window)
    action.setObjectName(name)
    if state is not None:
        action.setIcon(state_icon(state))
    elif icon:
        action.setIcon(named_icon(icon))
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    action.setToolTip(tip)
    action.setStatusTip(tip)
    return action


def make_actions(window: QMainWindow) -> Actions:
    a = Actions(
        track=_action(
            window,
            "actionTrack",
            "&Track in CRM",
            "Track the selected messages in the CRM",
            shortcut="Ctrl+T",
            state=TrackState.TRACKED,
        ),
        untrack=_action(
            window,
            "actionUntrack",
            "&Untrack",
            "Stop tracking the selected messages and delete their CRM copies",
            shortcut="Ctrl+Shift+T",
            state=TrackState.NOT_TRACKED,
        ),
        set_regarding=_action(
            window,
            "actionSetRegarding",
            "Set &Regarding…",
            "Choose the CRM record the selected messages are about",
            shortcut="Ctrl+Shift+R",
            icon="regarding",
        ),
        view_in_crm=_action(
            window,
            "actionViewInCrm",
            "&View in CRM",
            "Open the tracked message in the CRM's web pages",
            shortcut="Ctrl+Shift+V",
            icon="open_crm",
        ),
        sync_now=_action(
            window,
            "actionSyncNow",
            "&Sync now",
            "Synchronise mail, address books and the CRM now",
            shortcut="F9",
            icon="sync",
        ),
        work_offline=_action(
            window,
            "actionWorkOffline",
            "Work &offline",
            "Stop using the network; actions are queued until you go online",
            icon="offline",
        ),
        options=_action(
            window,
            "actionOptions",
            "&Options…",
            "Tracking, address book, synchronisation and privacy options",
            shortcut="Ctrl+,",
            icon="options",
        ),
        new_mail=_action(
            window,
            "actionNewMail",
            "&New mail",
            "Write a new message",
            shortcut="Ctrl+N",
            icon="compose",
        ),
        reply=_action(
            window, "actionReply", "&Reply", "Reply to the sender", shortcut="Ctrl+R", icon="reply"
        ),
        reply_all=_action(
            window,
            "actionReplyAll",
            "Reply &all",
            "Reply to everyone",
            shortcut="Ctrl+Shift+A",
            icon="reply_all",
        ),
        forward=_action(
            window,
            "actionForward",
            "&Forward",
            "Forward the message",
            shortcut="Ctrl+L",
            icon="forward",
        ),
        address_book=_action(
            window,
            "actionAddressBook",
            "&Address book…",
            "Browse and search the CRM address books cached on this computer",
            shortcut="Ctrl+Shift+B",
            icon="address_book",
        ),
        queue=_action(
            window,
            "actionQueue",
            "&Queued operations…",
            "Operations waiting for the CRM: retry or discard them",
            icon="pending",
        ),
        quit=_action(window, "actionQuit", "&Quit", "Quit Trackbox", shortcut="Ctrl+Q"),
    )
    a.work_offline.setCheckable(True)
    return a


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
    message_menu = menu.addMenu("&Message")
    for action in (a.reply, a.reply_all, a.forward):
        message_menu.addAction(action)
    crm_menu = menu.addMenu("&CRM")
    for action in (a.track, a.untrack, a.set_regarding, a.view_in_crm, None, a.sync_now, a.queue):
        crm_menu.addSeparator() if action is None else crm_menu.addAction(action)

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
        a.view_in_crm,
    ):
        context.addSeparator() if action is None else context.addAction(action)
    return context
