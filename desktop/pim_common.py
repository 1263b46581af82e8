"""What the Calendar, Contacts and Tasks views share (issue 20): the tracking banner, the
Track / Untrack / Set Regarding / New / Open / Delete actions with their toolbar and context
menu, and the worker plumbing — every call to :class:`~core.workspace.pim.PimService` runs
on :class:`~desktop.workers.Workers` (writes on the serial queue), never on the GUI thread.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QTextBrowser,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from core.domain.model import TrackState
from core.pim.sides import PimKind
from desktop.icons import state_icon
from desktop.reader import BANNER_STYLES
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.workspace.pim import PimItem, PimService

#: The banner's states (``core.workspace.pim.Banner.state``) as the mail's tracked states.
BANNER_STATES = {
    "tracked": TrackState.TRACKED,
    "pending": TrackState.PENDING,
    "not_tracked": TrackState.NOT_TRACKED,
}


def item_state(item: PimItem) -> TrackState:
    """The tracked-icon column's state of an item."""
    if item.crm_id is not None:
        return TrackState.TRACKED
    return TrackState.PENDING if item.track_marked else TrackState.NOT_TRACKED


class PimBanner(QFrame):
    """The mail's tracking banner, for a contact, appointment or task: what is tracked and
    why, in core's words (``core.workspace.pim.banner``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pimBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.icon = QLabel()
        self.icon.setFixedSize(18, 18)
        self.text = QLabel()
        self.text.setObjectName("pimBannerText")
        self.text.setWordWrap(True)
        layout.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.text, 1)
        self.setVisible(False)

    def show_item(self, item: PimItem | None) -> None:
        from core.workspace.pim import banner

        if item is None:
            self.setVisible(False)
            return
        said = banner(item)
        state = BANNER_STATES[said.state]
        bg, fg = BANNER_STYLES[state]
        self.setStyleSheet(
            f"#pimBanner {{ background: {bg}; border: 1px solid {fg}; border-radius: 4px; }}"
            f" #pimBannerText {{ color: {fg}; }}"
        )
        self.icon.setPixmap(state_icon(state).pixmap(18, 18))
        self.text.setText(f"<b>{html.escape(said.text)}</b> · {html.escape(said.reason)}")
        self.setVisible(True)


class PimViewBase(QWidget):
    """One kind's view. Subclasses build their list and call :meth:`selected_changed`;
    ``loaded`` fires after each refresh has been shown, ``failed(text)`` on an error."""

    loaded = Signal()
    failed = Signal(str)
    edit_requested = Signal(object)  # PimItem | None (None: a new one)
    regarding_requested = Signal(object)  # PimItem

    kind: PimKind = PimKind.CONTACT

    def __init__(self, workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.service: PimService | None = None
        self.items: list[PimItem] = []
        self.current: PimItem | None = None
        self.banner = PimBanner(self)
        self._make_actions()

    def details_column(self, name: str, label: str) -> QWidget:
        """The right-hand column every view has: the banner over the selected item's details
        (``self.details``, named ``name`` for tests and ``label`` for screen readers)."""
        self.details = QTextBrowser()
        self.details.setObjectName(name)
        self.details.setAccessibleName(label)
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(4, 4, 4, 4)
        column.addWidget(self.banner)
        column.addWidget(self.details, 1)
        return right

    # -- actions -------------------------------------------------------------------------
    def _make_actions(self) -> None:
        noun = {PimKind.CONTACT: "Contact", PimKind.APPOINTMENT: "Appointment"}.get(
            self.kind, "Task"
        )

        def act(text: str, slot: Callable[[], None]) -> QAction:
            action = QAction(text, self)
            action.triggered.connect(slot)
            return action

        self.action_new = act(f"New {noun}", lambda: self.edit_requested.emit(None))
        self.action_open = act("Open", self._open_current)
        self.action_delete = act("Delete", self._delete_current)
        self.action_track = act("Track in CRM", lambda: self._on_current("track"))
        self.action_untrack = act("Untrack", lambda: self._on_current("untrack"))
        self.action_regarding = act("Set Regarding…", self._regarding_current)
        self.action_regarding.setVisible(self.kind is not PimKind.CONTACT)
        self.action_new.setIcon(state_icon(TrackState.NOT_TRACKED))
        self.action_track.setIcon(state_icon(TrackState.TRACKED))
        self.action_untrack.setIcon(state_icon(TrackState.NOT_TRACKED))
        self.menu = QMenu(self)
        for action in self.item_actions():
            self.menu.addAction(action)
        self._update_actions()

    def item_actions(self) -> list[QAction]:
        return [
            self.action_new,
            self.action_open,
            self.action_delete,
            self.action_track,
            self.action_untrack,
            self.action_regarding,
        ]

    def toolbar(self) -> QToolBar:
        bar = QToolBar(self)
        bar.setObjectName(f"{self.kind.value}Toolbar")
        bar.setAccessibleName(f"{self.kind.value.capitalize()} actions")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for action in self.item_actions():
            bar.addAction(action)
        return bar

    def _update_actions(self) -> None:
        item = self.current
        editable = self.service is not None and self.service.editable
        has = item is not None and editable
        self.action_new.setEnabled(editable)
        for action in (self.action_open, self.action_delete):
            action.setEnabled(has)
        self.action_track.setEnabled(has and item is not None and not item.tracked)
        self.action_untrack.setEnabled(has and item is not None and item.tracked)
        self.action_regarding.setEnabled(has)

    def show_menu(self, widget: QWidget, pos: QPoint) -> None:
        self.menu.popup(widget.mapToGlobal(pos))

    # -- data ----------------------------------------------------------------------------
    def set_service(self, service: PimService | None) -> None:
        self.service = service
        self.current = None
        self.items = []
        self.show_items([])
        self.selected_changed(None)
        if service is not None:
            self.refresh()

    def refresh(self) -> None:
        service, kind = self.service, self.kind
        if service is None:
            return

        def shown(items: list[PimItem]) -> None:
            if self.service is not service:
                return
            self.items = items
            key = self.current.key if self.current is not None else None
            self.show_items(items)
            again = next((i for i in items if i.key == key), None)
            if again is not None:
                self.select_key(again.key)  # the list keeps its selection
            self.selected_changed(again)
            self.loaded.emit()

        self.workers.run(lambda: service.items(kind), shown, self._failed, owner=self)

    def run_change(self, change: Callable[[PimService], Any]) -> None:
        """A write on the serial queue, then a refresh."""
        service = self.service
        if service is None:
            return
        self.workers.run(
            lambda: change(service),
            lambda _r: self.refresh(),
            self._failed,
            serial=True,
            owner=self,
        )

    def _failed(self, exc: BaseException) -> None:
        from desktop.errors import describe

        self.failed.emit(describe(exc))

    def selected_changed(self, item: PimItem | None) -> None:
        self.current = item
        self.banner.show_item(item)
        self.show_details(item)
        self._update_actions()

    def _on_current(self, verb: str) -> None:
        item, kind = self.current, self.kind
        if item is None:
            return
        if verb == "track":
            self.run_change(lambda s: s.track(kind, item.key))
        else:
            self.run_change(lambda s: s.untrack(kind, item.key))

    def _open_current(self) -> None:
        if self.current is not None:
            self.edit_requested.emit(self.current)

    def _delete_current(self) -> None:
        item, kind = self.current, self.kind
        if item is not None:
            self.run_change(lambda s: s.delete(kind, item.key))

    def _regarding_current(self) -> None:
        if self.current is not None:
            self.regarding_requested.emit(self.current)

    # -- for subclasses --------------------------------------------------------------------
    def show_items(self, items: list[PimItem]) -> None:
        raise NotImplementedError

    def show_details(self, item: PimItem | None) -> None:
        raise NotImplementedError

    def select_key(self, key: str) -> None:
        raise NotImplementedError


def when_text(value: Any) -> str:
    """A vocabulary time shown in the user's zone (an all-day date as a date)."""
    from datetime import datetime

    from core.workspace.pim import parse_time

    when = parse_time(value)
    if when is None:
        return ""
    if isinstance(when, datetime):
        return when.astimezone().strftime("%a %d %b %Y %H:%M")
    return when.strftime("%a %d %b %Y")


def details_html(item: PimItem | None) -> str:
    """The details pane: the mapped fields with their labels (``core.pim.fields``)."""
    from core.pim.fields import DEFAULT_MAPS

    if item is None:
        return ""
    rows = []
    for name, label, _direction, _locked in DEFAULT_MAPS[item.kind].user_view():
        value = item.fields.get(name)
        if value is None or value is False or value in ("", []):
            continue
        if name in ("scheduledstart", "scheduledend", "birthdate"):
            value = when_text(value)
        elif isinstance(value, bool):
            value = "Yes" if value else "No"
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        rows.append(
            f"<tr><td><b>{html.escape(label)}</b></td><td>{html.escape(str(value))}</td></tr>"
        )
    title = html.escape(item.title)
    return f"<h3>{title}</h3><table cellspacing='4'>{''.join(rows)}</table>"
