"""Stage a dialog of the demo for a screenshot (``trackbox demo --screenshot-dialog NAME``):
open it the way a user would, wait until it shows real data, then hand it back for grabbing.

Used to refresh the README's screenshots; every wait is on a signal, never a sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

from core.domain.changes import Changes
from core.domain.model import Decision

if TYPE_CHECKING:
    from core.workspace.facade import Workspace
    from core.workspace.regarding import RegardingHit
    from desktop.compose import ComposeWindow
    from desktop.mainwindow import MainWindow

DIALOGS = ("main", "regarding", "options", "compose", "addressbook", "queue", "conversation")

#: Hands a filled widget on for grabbing (after a paint).
Settle = Callable[[QWidget], None]


def stage(window: MainWindow, name: str, ready: Callable[[QWidget], None]) -> None:
    """Open dialog ``name`` over ``window`` and call ``ready(widget)`` once it is filled."""

    def settle(widget: QWidget) -> None:
        QTimer.singleShot(250, lambda: ready(widget))  # paint first

    ws = window.workspace
    assert ws is not None, "the demo's workspace is attached first"
    stager = _STAGERS.get(name)
    if stager is None:
        raise ValueError(f"no dialog named {name!r}; choose one of {', '.join(DIALOGS)}")
    stager(window, ws, settle)


def _stage_main(window: MainWindow, ws: Workspace, settle: Settle) -> None:
    """Track three messages and file one regarding an account, with the real verbs (the
    picker's search and Set Regarding), then show it."""
    from core.workspace.regarding import RegardingSearch

    state = {"shown": False}

    def shown(_row_id: int) -> None:
        if not state["shown"]:
            state["shown"] = True
            settle(window)

    def regarding_set(_changes: Changes | None) -> None:
        window.tracking_done.disconnect(regarding_set)
        window.message_shown.connect(shown)
        window.select_rows([])
        window.select_rows([3])

    def found(hits: list[RegardingHit]) -> None:
        window.tracking_done.connect(regarding_set)
        window.verbs.set_regarding(window.selected_row_ids(), hits[0].record)

    def tracked(_changes: Changes) -> None:
        window.tracking_done.disconnect(tracked)
        window.select_rows([3])
        search = RegardingSearch(ws.store, ws.crm)
        window.workers.run(lambda: search.remote("tailspin"), found, lambda _e: regarding_set(None))

    window.tracking_done.connect(tracked)
    if window.message_model.rowCount() > 4:
        window.select_rows([1, 3, 4])
        window.verbs.track_selected()
    else:
        settle(window)


def _stage_regarding(window: MainWindow, _ws: Workspace, settle: Settle) -> None:
    """The picker on two messages, searched for "fabrikam", with a contact current so that
    its account and open work show under it."""
    window.select_rows([0, 1])
    window.verbs.set_regarding_selected()
    picker = window.verbs.picker
    assert picker is not None
    picker.resize(600, 400)
    state = {"typed": False}

    def changed(source: str) -> None:
        if source == "crm" and not state["typed"]:
            state["typed"] = True
            names = [h.record.name for h in picker.model.hits()]
            if "Jane Doe" in names:  # show a contact with its account and open work
                for _ in range(names.index("Jane Doe")):
                    picker.move_current(1)
            else:
                settle(picker)
        elif source == "related" or (source == "crm" and state["typed"]):
            settle(picker)
        elif source in ("local", "error") and not picker.online and picker.edit.text():
            settle(picker)  # offline: the cache is all there is

    picker.results_changed.connect(changed)
    picker.edit.setText("fabrikam")


def _stage_options(window: MainWindow, _ws: Workspace, settle: Settle) -> None:
    """Options, once its values are read (on a worker)."""
    from desktop.options import OptionsDialog

    window.dialogs.open_options()
    options = window.dialogs.opened["options"]
    assert isinstance(options, OptionsDialog)
    options.loaded.connect(lambda: settle(options))


def _stage_compose(window: MainWindow, ws: Workspace, settle: Settle) -> None:
    """A new message to a CRM contact, regarding an opportunity found by a real search,
    shown once Compose has decided to track it."""
    from core.workspace.regarding import RegardingSearch
    from desktop.compose import ComposeWindow

    window.dialogs.open_compose("new")
    compose = window.dialogs.opened["compose"]
    assert isinstance(compose, ComposeWindow)
    _fill_renewal_quote(compose)
    done = {"shot": False}

    def decided(decision: Decision) -> None:
        if decision.track and not done["shot"]:
            done["shot"] = True
            settle(compose)

    def found_renewal(hits: list[RegardingHit]) -> None:
        opportunities = [h for h in hits if h.record.entity == "opportunity"]
        if opportunities:
            compose.set_regarding(opportunities[0].record)
        compose.decided.connect(decided)
        compose.track.setChecked(True)

    search = RegardingSearch(ws.store, ws.crm)
    window.workers.run(
        lambda: search.remote("renewal"), found_renewal, lambda _e: found_renewal([])
    )


def _fill_renewal_quote(compose: ComposeWindow) -> None:
    """The demo's sample message: addressed to CRM contacts, about a renewal."""
    compose.to.setText("Jane Doe <jane.doe@fabrikam.example>")
    compose.cc.setText("Mark Chen <mark.chen@fabrikam.example>")
    compose.subject.setText("Renewal quote for 2027")
    compose.body.setPlainText(
        "Hi Jane,\n\nas promised, here is the renewal quote for next year: 25,000 EUR. "
        "The price holds until the end of the month.\n\nBest regards,\nAlex"
    )


def _stage_addressbook(window: MainWindow, _ws: Workspace, settle: Settle) -> None:
    """The address book, once its first results are listed."""
    from desktop.addressbook import AddressBookDialog

    window.dialogs.open_address_book("")
    book = window.dialogs.opened["addressbook"]
    assert isinstance(book, AddressBookDialog)
    book.results_changed.connect(lambda _n: settle(book))


def _stage_queue(window: MainWindow, _ws: Workspace, settle: Settle) -> None:
    """The queue dialog; it shows what it has at once."""
    window.dialogs.open_queue()
    settle(window.dialogs.opened["queue"])


def _stage_conversation(window: MainWindow, _ws: Workspace, settle: Settle) -> None:
    """The folder grouped by conversation, a partly tracked conversation unfolded and its row
    selected: the banner says which of its mails are tracked, regarding what."""
    from core.domain.conversations import Coverage

    view, model = window.mail_view, window.mail_view.conversations
    state = {"grouped": False}

    def shown(_row_id: int) -> None:
        window.message_shown.disconnect(shown)
        settle(window)

    def grouped() -> None:
        if state["grouped"]:
            return
        state["grouped"] = True
        rows = [r for r in range(model.rowCount()) if model.is_expandable(r)]
        if not rows:
            settle(window)
            return
        partly = [
            r for r in rows if (c := model.conversation_at(r)) and c.coverage == Coverage.PARTLY
        ]
        row = (partly or rows)[0]
        model.set_expanded(row, True)
        window.message_shown.connect(shown)
        window.select_rows([])
        window.select_rows([row])

    window.resize(max(window.width(), 1280), max(window.height(), 800))  # room for topics
    view.conversations_shown.connect(grouped)
    view.set_grouped(True)


_STAGERS: dict[str, Callable[[MainWindow, Workspace, Settle], None]] = {
    "main": _stage_main,
    "regarding": _stage_regarding,
    "options": _stage_options,
    "compose": _stage_compose,
    "addressbook": _stage_addressbook,
    "queue": _stage_queue,
    "conversation": _stage_conversation,
}
assert tuple(_STAGERS) == DIALOGS
