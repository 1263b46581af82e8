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

DIALOGS = (
    "main",
    "regarding",
    "options",
    "compose",
    "addressbook",
    "queue",
    "conversation",
    "never-track",
    "search",
    "calendar",
)

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
    """The demo's sample message: addressed to CRM contacts, about a renewal, in rich text
    with two attachments (made up here: the shot shows names and sizes, not content)."""
    from core.mail.drafts import DraftAttachment

    compose.to.setText("Jane Doe <jane.doe@fabrikam.example>")
    compose.cc.setText("Mark Chen <mark.chen@fabrikam.example>")
    compose.subject.setText("Renewal quote for 2027")
    compose.body.setHtml(
        "<p>Hi Jane,</p><p>as promised, here is the <b>renewal quote</b> for next year: "
        "25,000 EUR. The price holds until <i>the end of the month</i>.</p>"
        "<ul><li>Quote (PDF)</li><li>Terms and conditions</li></ul>"
        "<p>Best regards,<br>Alex</p>"
    )
    compose.attachment_list.add(
        [
            DraftAttachment("Renewal quote 2027.pdf", bytes(402 * 1024), "application/pdf"),
            DraftAttachment(
                "Terms and conditions.docx",
                bytes(84 * 1024),
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
        ]
    )
    compose.attachment_list.setVisible(True)


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


#: What the never-track shot lists: a private address and an internal mailing-list domain.
NEVER_TRACK_SHOWN = ("dana.private@outlook.example", "lists.contoso.example")


def _stage_never_track(window: MainWindow, _ws: Workspace, settle: Settle) -> None:
    """Options › E-mail tracking once its values are read, with two entries added to the
    "Never track" list as a user adds them (typed, then Add), the first selected."""
    from desktop.options import OptionsDialog

    window.dialogs.open_options()
    options = window.dialogs.opened["options"]
    assert isinstance(options, OptionsDialog)
    options.resize(max(options.width(), 660), max(options.height(), 680))  # the list unclipped

    def loaded() -> None:
        options.tabs.setCurrentIndex(0)
        editor = options.never_track
        for entry in NEVER_TRACK_SHOWN:
            editor.entry.setText(entry)
            editor.add()
        editor.list.setCurrentRow(0)
        settle(options)

    options.loaded.connect(loaded)


#: The search the search shot types: words in mail of several folders.
SEARCH_SHOWN = "invoice"


def _stage_search(window: MainWindow, _ws: Workspace, settle: Settle) -> None:
    """The search bar over all folders with words typed, once every match is listed, the
    first result open in the reading pane."""
    view = window.mail_view
    state = {"done": False}

    def shown(_row_id: int) -> None:
        window.message_shown.disconnect(shown)
        settle(window)

    def results(_request: object, complete: bool) -> None:
        if complete and not state["done"]:
            state["done"] = True
            view.results_shown.disconnect(results)
            if not view.model.rowCount():
                settle(window)
                return
            window.message_shown.connect(shown)
            window.select_rows([])
            window.select_rows([0])

    window.resize(max(window.width(), 1280), max(window.height(), 800))
    view.results_shown.connect(results)
    view.search_bar.set_all_folders(True)
    view.search_bar.focus()
    view.search_bar.edit.setText(SEARCH_SHOWN)


def _stage_calendar(window: MainWindow, _ws: Workspace, settle: Settle) -> None:
    """The calendar's week after the first PIM pass, the tracked appointment selected so
    that its banner shows (issue 20)."""
    nav = window.pim_nav
    calendar = nav.calendar
    state = {"switched": False, "shot": False}

    def loaded() -> None:
        if state["shot"]:
            return
        state["shot"] = True
        found = [o.item for o in calendar.shown if o.item.crm_id and not o.recurring]
        if found:  # one on the week shown
            calendar.select_key(found[0].key)
        settle(window)

    def synced(_outcomes: object = None) -> None:
        if not state["switched"]:
            state["switched"] = True
            calendar.loaded.connect(loaded)
            nav.switch_to(1)  # Calendar; the switch refreshes it

    window.resize(max(window.width(), 1280), max(window.height(), 800))
    nav.synced.connect(synced)
    if nav.passes:
        synced()


_STAGERS: dict[str, Callable[[MainWindow, Workspace, Settle], None]] = {
    "main": _stage_main,
    "regarding": _stage_regarding,
    "options": _stage_options,
    "compose": _stage_compose,
    "addressbook": _stage_addressbook,
    "queue": _stage_queue,
    "conversation": _stage_conversation,
    "never-track": _stage_never_track,
    "search": _stage_search,
    "calendar": _stage_calendar,
}
assert tuple(_STAGERS) == DIALOGS
