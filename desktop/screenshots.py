"""Stage a dialog of the demo for a screenshot (``trackbox demo --screenshot-dialog NAME``):
open it the way a user would, wait until it shows real data, then hand it back for grabbing.

Used to refresh the README's screenshots; every wait is on a signal, never a sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

DIALOGS = ("main", "regarding", "options", "compose", "addressbook", "queue")


def stage(window: Any, name: str, ready: Callable[[QWidget], None]) -> None:
    """Open dialog ``name`` over ``window`` and call ``ready(widget)`` once it is filled."""
    settle = lambda w: QTimer.singleShot(250, lambda: ready(w))  # noqa: E731  (paint first)
    if name == "main":
        # Track three messages and file one regarding an account, with the real verbs (the
        # picker's search and Set Regarding), then show it.
        from core.workspace.regarding import RegardingSearch

        ws = window.workspace
        model = window.message_model
        state = {"shown": False}

        def shown(_row_id: int) -> None:
            if not state["shown"]:
                state["shown"] = True
                settle(window)

        def regarding_set(_changes: Any) -> None:
            window.tracking_done.disconnect(regarding_set)
            window.message_shown.connect(shown)
            window.select_rows([])
            window.select_rows([3])

        def found(hits: list[Any]) -> None:
            window.tracking_done.connect(regarding_set)
            ids = window.selected_row_ids()
            ref = hits[0].record
            window._run_tracking(
                lambda: ws.enqueue_set_regarding(ids, ref), "Setting regarding on", len(ids)
            )

        def tracked(_changes: Any) -> None:
            window.tracking_done.disconnect(tracked)
            window.select_rows([3])
            search = RegardingSearch(ws.store, ws.crm)
            window.workers.run(
                lambda: search.remote("tailspin"), found, lambda _e: regarding_set(None)
            )

        window.tracking_done.connect(tracked)
        if model.rowCount() > 4:
            window.select_rows([1, 3, 4])
            window.track_selected()
        else:
            settle(window)
    elif name == "regarding":
        window.select_rows([0, 1])
        window.set_regarding_selected()
        picker = window._dialogs["regarding"]
        picker.resize(600, 400)
        state = {"typed": False}

        def changed(source: str) -> None:
            if source == "crm" and not state["typed"]:
                state["typed"] = True
                names = [h.record.name for h in picker.model.hits()]
                if "Jane Doe" in names:  # show a contact with its account and open work
                    for _ in range(names.index("Jane Doe")):
                        picker.move(1)
                else:
                    settle(picker)
            elif source == "related" or (source == "crm" and state["typed"]):
                settle(picker)
            elif source in ("local", "error") and not picker._online and picker.edit.text():
                settle(picker)  # offline: the cache is all there is

        picker.results_changed.connect(changed)
        picker.edit.setText("fabrikam")
    elif name == "options":
        window.open_options()
        dialog = window._dialogs["options"]
        dialog.loaded.connect(lambda: settle(dialog))
    elif name == "compose":
        window.open_compose("new")
        compose = window._dialogs["compose"]
        compose.to.setText("Jane Doe <jane.doe@fabrikam.example>")
        compose.cc.setText("Mark Chen <mark.chen@fabrikam.example>")
        compose.subject.setText("Renewal quote for 2027")
        compose.body.setPlainText(
            "Hi Jane,\n\nas promised, here is the renewal quote for next year: 25,000 EUR. "
            "The price holds until the end of the month.\n\nBest regards,\nAlex"
        )
        done = {"shot": False}

        def decided(decision: Any) -> None:
            if decision.track and not done["shot"]:
                done["shot"] = True
                settle(compose)

        def found(hits: list[Any]) -> None:
            opportunities = [h for h in hits if h.record.entity == "opportunity"]
            if opportunities:
                compose.set_regarding(opportunities[0].record)
            compose.decided.connect(decided)
            compose.track.setChecked(True)

        from core.workspace.regarding import RegardingSearch

        search = RegardingSearch(window.workspace.store, window.workspace.crm)
        window.workers.run(lambda: search.remote("renewal"), found, lambda _e: found([]))
    elif name == "addressbook":
        window.open_address_book("")
        dialog = window._dialogs["addressbook"]
        dialog.results_changed.connect(lambda _n: settle(dialog))
    elif name == "queue":
        window.open_queue()
        view = window._dialogs["queue"]
        settle(view)
    else:
        raise ValueError(f"no dialog named {name!r}; choose one of {', '.join(DIALOGS)}")
