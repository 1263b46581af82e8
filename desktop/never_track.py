"""The user's exclusions from automatic tracking in the window (issue 17): the "Never track"
section of the Options dialog (:class:`NeverTrackEditor`) and the "Stop / Resume tracking
this conversation" action (:class:`ConversationTracking`). The rules are
``core.domain.never_track``'s; this module only shows and asks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.domain.changes import Changes
from core.domain.never_track import InvalidEntry, normalise_entry
from desktop.errors import describe
from desktop.ops import ChangeBus, Op, QueryOp
from desktop.workers import Workers

STOP_TEXT = "Stop tracking this conversation"
RESUME_TEXT = "Resume tracking this conversation"
STOP_TIP = (
    "Later replies in this conversation are not tracked automatically "
    "(mail already tracked stays tracked; you can still track a message yourself)"
)
RESUME_TIP = "Later replies in this conversation follow your tracking options again"


class NeverTrackEditor(QWidget):
    """A list of addresses and domains with Add and Remove; invalid entries are refused
    with the reason under the field. ``entries()`` is what the dialog saves."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("neverTrackEditor")
        intro = QLabel(
            "Mail to or from these addresses and domains is never tracked automatically, "
            "by any of your options or by replies to tracked mail. A domain (example.com) "
            "includes its subdomains. You can still track such mail yourself. The list is "
            "kept on this computer, not in the CRM."
        )
        intro.setWordWrap(True)
        self.intro = intro
        self.entry = QLineEdit()
        self.entry.setObjectName("neverTrackEntry")
        self.entry.setAccessibleName("Address or domain to never track")
        self.entry.setPlaceholderText("alice@example.com or example.com")
        self.add_button = QPushButton("Add")
        self.add_button.setObjectName("neverTrackAdd")
        self.add_button.setAccessibleName("Add to the never-track list")
        self.list = QListWidget()
        self.list.setObjectName("neverTrackList")
        self.list.setAccessibleName("Never track")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("neverTrackRemove")
        self.remove_button.setAccessibleName("Remove from the never-track list")
        self.remove_button.setEnabled(False)
        self.problem = QLabel()
        self.problem.setObjectName("neverTrackProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b00020;")
        row = QHBoxLayout()
        row.addWidget(self.entry, 1)
        row.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(row)
        layout.addWidget(self.problem)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.remove_button)
        self.add_button.clicked.connect(self.add)
        self.entry.returnPressed.connect(self.add)
        self.remove_button.clicked.connect(self.remove_selected)
        self.list.itemSelectionChanged.connect(
            lambda: self.remove_button.setEnabled(bool(self.list.selectedItems()))
        )

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        """The intro's wrapped lines are its minimum height: a tab page does not ask a
        wrapped label's height for its width, and the Options dialog at its first size cut
        the text off mid-line."""
        super().resizeEvent(event)
        need = self.intro.heightForWidth(self.intro.width())
        if need > 0 and need != self.intro.minimumHeight():
            self.intro.setMinimumHeight(need)

    def set_entries(self, entries: Sequence[str]) -> None:
        self.list.clear()
        self.list.addItems([e.removeprefix("@") if e.startswith("@") else e for e in entries])

    def entries(self) -> tuple[str, ...]:
        """The stored form of each entry shown (they were valid when added)."""
        return tuple(normalise_entry(self.list.item(i).text()) for i in range(self.list.count()))

    def add(self) -> bool:
        """Add what the field holds; False (and the reason shown) when it is refused."""
        try:
            entry = normalise_entry(self.entry.text())
        except InvalidEntry as exc:
            self.problem.setText(str(exc))
            return False
        shown = entry.removeprefix("@")
        if entry in self.entries():
            self.problem.setText(f"{shown} is already on the list.")
            return False
        self.list.addItem(shown)
        self.entry.clear()
        self.problem.setText("")
        return True

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))


class ConversationVerbs(Protocol):
    """What the action needs of the workspace (``core.workspace.never_track``)."""

    def conversation_stopped(self, row_id: int) -> bool: ...

    def stop_tracking_conversation(self, row_id: int) -> Changes: ...

    def resume_tracking_conversation(self, row_id: int) -> Changes: ...


class ConversationTracking(QObject):
    """The action "Stop tracking this conversation" (or "Resume…" when it is stopped) on the
    one selected message. ``verbs`` returns the workspace, or None when there is none;
    ``say`` writes the status bar. Call :meth:`selection_changed` with the selected rows."""

    def __init__(
        self,
        verbs: Callable[[], ConversationVerbs | None],
        workers: Workers,
        bus: ChangeBus,
        say: Callable[[str], None],
        parent: QObject,
    ) -> None:
        super().__init__(parent)
        self._verbs, self._workers, self._bus, self._say = verbs, workers, bus, say
        self.row_id: int | None = None
        self.stopped = False
        self.action = QAction(STOP_TEXT, parent)
        self.action.setObjectName("stopTrackingConversation")
        self.action.setToolTip(STOP_TIP)
        self.action.setStatusTip(STOP_TIP)
        self.action.setEnabled(False)
        self.action.triggered.connect(self.toggle)

    def selection_changed(self, row_ids: Sequence[int]) -> None:
        """Enabled for one message; its text says Stop or Resume once the state is read."""
        verbs = self._verbs()
        self.row_id = row_ids[0] if len(row_ids) == 1 and verbs is not None else None
        self.action.setEnabled(False)
        if self.row_id is None or verbs is None:
            return
        row = self.row_id

        def show(stopped: bool) -> None:
            if self.row_id == row:
                self._show(stopped)

        QueryOp(lambda: verbs.conversation_stopped(row), show, owner=self).failure(
            lambda exc: self._say(describe(exc))
        ).run_in_background(self._workers)

    def _show(self, stopped: bool) -> None:
        self.stopped = stopped
        self.action.setText(RESUME_TEXT if stopped else STOP_TEXT)
        tip = RESUME_TIP if stopped else STOP_TIP
        self.action.setToolTip(tip)
        self.action.setStatusTip(tip)
        self.action.setEnabled(True)

    def toggle(self) -> None:
        verbs, row = self._verbs(), self.row_id
        if verbs is None or row is None:
            return
        resume = self.stopped
        verb = verbs.resume_tracking_conversation if resume else verbs.stop_tracking_conversation
        said = (
            "Later replies in this conversation follow your tracking options again."
            if resume
            else "Later replies in this conversation will not be tracked automatically; "
            "mail already tracked stays tracked."
        )

        def done(_changes: Changes) -> None:
            if self.row_id == row:
                self._show(not resume)
            self._say(said)

        Op(lambda: verb(row), self._bus, owner=self).success(done).failure(
            lambda exc: self._say(describe(exc))
        ).run_in_background(self._workers)


__all__ = [
    "RESUME_TEXT",
    "STOP_TEXT",
    "ConversationTracking",
    "ConversationVerbs",
    "NeverTrackEditor",
]
