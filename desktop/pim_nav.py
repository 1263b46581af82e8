"""Mail, Calendar, Contacts and Tasks (issue 20), Outlook's way: a switcher at the bottom of
the folder pane and Ctrl+1…4; the window's right-hand area swaps between the mail view and
the three PIM views. A PIM pass (``core.workspace.pim.PimService.sync``) runs on the serial
worker after each mail sync (the window connects it); the views refresh after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QMainWindow,
    QMenu,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.domain.model import RecordRef
from desktop.calendar_view import CalendarView
from desktop.contacts_view import ContactsView
from desktop.pim_common import PimViewBase
from desktop.tasks_view import TasksView
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.pim.sync import KindOutcome
    from core.workspace.facade import Workspace
    from core.workspace.pim import PimItem, PimService

log = logging.getLogger(__name__)

MAIL, CALENDAR, CONTACTS, TASKS = range(4)
NAMES = ("Mail", "Calendar", "Contacts", "Tasks")


class PimNavigator(QObject):
    """Owns the switcher, the stack and the three views. ``switched(index)`` after a
    switch; ``synced(outcomes)`` after each PIM pass; ``failed(text)`` on an error."""

    switched = Signal(int)
    synced = Signal(object)
    failed = Signal(str)

    def __init__(
        self, window: QMainWindow, outer: QSplitter, mail_area: QWidget, workers: Workers
    ) -> None:
        super().__init__(window)
        self.window = window
        self.workers = workers
        self.workspace: Workspace | None = None
        self.service: PimService | None = None
        self._syncing = False
        self.passes = 0  # PIM passes finished (tests wait on it)
        self.calendar = CalendarView(workers)
        self.contacts = ContactsView(workers)
        self.tasks = TasksView(workers)
        self.views: tuple[PimViewBase, ...] = (self.calendar, self.contacts, self.tasks)
        sizes = outer.sizes()
        tree = outer.widget(0)
        assert tree is not None
        pane = QWidget()
        pane.setObjectName("folderPane")
        column = QVBoxLayout(pane)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        outer.insertWidget(0, pane)
        column.addWidget(tree, 1)
        column.addWidget(self._switcher())
        self.stack = QStackedWidget()
        self.stack.setObjectName("centralStack")
        outer.insertWidget(1, self.stack)
        self.stack.addWidget(mail_area)
        for view in self.views:
            self.stack.addWidget(view)
            view.edit_requested.connect(lambda item, v=view: self.edit(v, item))
            view.regarding_requested.connect(lambda item, v=view: self.set_regarding(v, item))
            view.failed.connect(self.failed)
        outer.setSizes(sizes)
        say = getattr(window, "say", None)  # the status bar line of the main window
        if callable(say):
            self.failed.connect(lambda text: say(text))

    def _switcher(self) -> QWidget:
        bar = QWidget()
        bar.setObjectName("viewSwitcher")
        grid = QGridLayout(bar)  # two by two: the folder pane stays narrow at 800 pixels
        grid.setContentsMargins(2, 2, 2, 2)
        grid.setSpacing(2)
        self.group = QButtonGroup(self)
        self.buttons: list[QToolButton] = []
        for index, name in enumerate(NAMES):
            button = QToolButton()
            button.setText(name)
            button.setObjectName(f"switch{name}")
            button.setAccessibleName(name)
            button.setToolTip(f"{name} (Ctrl+{index + 1})")
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            self.group.addButton(button, index)
            grid.addWidget(button, index // 2, index % 2)
            self.buttons.append(button)
        self.buttons[MAIL].setChecked(True)
        self.group.idClicked.connect(self.switch_to)
        return bar

    def install_menus(self) -> None:
        """Ctrl+1…4 in a Go menu, and the shown view's item actions in its own menu (before
        Help: the window calls this after its own menus)."""
        self.go_actions: list[QAction] = []
        menu_bar = self.window.menuBar()
        go = QMenu("&Go", menu_bar)
        for index, name in enumerate(NAMES):
            action = QAction(name, self.window)
            action.setObjectName(f"go{name}")
            action.setShortcut(QKeySequence(f"Ctrl+{index + 1}"))
            action.triggered.connect(lambda _c=False, i=index: self.switch_to(i))
            go.addAction(action)
            self.window.addAction(action)
            self.go_actions.append(action)
        self.item_menu = QMenu("&Items", menu_bar)
        help_action = next((a for a in menu_bar.actions() if a.text() == "&Help"), None)
        menu_bar.insertMenu(help_action, go) if help_action else menu_bar.addMenu(go)
        self.item_menu_action = (
            menu_bar.insertMenu(help_action, self.item_menu)
            if help_action
            else menu_bar.addMenu(self.item_menu)
        )
        self.item_menu_action.setVisible(False)

    # -- switching -------------------------------------------------------------------------
    def current(self) -> int:
        return self.stack.currentIndex()

    def current_view(self) -> PimViewBase | None:
        index = self.current()
        return self.views[index - 1] if index > MAIL else None

    def switch_to(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self.buttons[index].setChecked(True)
        view = self.current_view()
        self.item_menu.clear()
        self.item_menu_action.setVisible(view is not None)
        if view is not None:
            self.item_menu.setTitle(f"&{NAMES[index]}")
            for action in view.item_actions():
                self.item_menu.addAction(action)
            view.refresh()
        self.switched.emit(index)

    # -- workspace and sync ------------------------------------------------------------------
    def set_workspace(self, workspace: Workspace | None) -> None:
        from core.workspace.pim import PimService, backend_of

        self.workspace = workspace
        if workspace is None:
            self.service = None
        else:
            profile = workspace.profile
            ws = workspace
            folder = Path(workspace.store_path).parent
            # A saved profile brings its DAV collections (IMAP); the demo has none.
            self.service = (
                PimService.for_profile(profile, folder, lambda: ws.crm, ws.user_id)
                if profile is not None
                else PimService(folder, backend_of(None), lambda: ws.crm, ws.user_id)
            )
        for view in self.views:
            view.set_service(self.service)

    def sync_now(self) -> None:
        """A PIM pass on the serial worker, then every view refreshes."""
        service = self.service
        if service is None or self._syncing:
            return
        self._syncing = True

        def done(outcomes: list[KindOutcome]) -> None:
            self._syncing = False
            self.passes += 1
            if service is not self.service:
                return
            for view in self.views:
                view.refresh()
            problems = [f"{o.kind}: {o.error}" for o in outcomes if o.error is not None]
            if problems:
                self.failed.emit("; ".join(problems))
            self.synced.emit(outcomes)

        def failed(exc: BaseException) -> None:
            self._syncing = False
            self.passes += 1
            from desktop.errors import describe

            self.failed.emit(describe(exc))
            self.synced.emit([])

        self.workers.run(service.sync, done, failed, serial=True, owner=self.window)

    # -- dialogs -----------------------------------------------------------------------------
    def edit(self, view: PimViewBase, item: PimItem | None) -> None:
        """The create/edit dialog; Save writes on the serial worker."""
        from desktop.pim_dialogs import PimItemDialog

        dialog = PimItemDialog(view.kind, item, self.window, self.pick_regarding)
        self.dialog = dialog
        kind, key = view.kind, item.key if item is not None else None

        def saved() -> None:
            fields = dialog.fields()
            view.run_change(lambda s: s.save(kind, key, fields))

        dialog.accepted.connect(saved)
        dialog.open()

    def pick_regarding(self, done: Callable[[RecordRef], None]) -> None:
        """The regarding picker of the mail, for an appointment or task."""
        ws = self.workspace
        if ws is None:
            return
        from core.workspace.regarding import RegardingSearch
        from desktop.regarding import RegardingPicker

        picker = RegardingPicker(
            RegardingSearch(ws.store, ws.crm), self.workers, online=ws.online, parent=self.window
        )
        self.picker = picker

        def chosen() -> None:
            ref = picker.selected()
            if ref is not None:
                done(ref)

        picker.accepted.connect(chosen)
        picker.open()

    def set_regarding(self, view: PimViewBase, item: PimItem) -> None:
        kind, key = view.kind, item.key
        self.pick_regarding(lambda ref: view.run_change(lambda s: s.set_regarding(kind, key, ref)))
