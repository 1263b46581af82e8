"""Undo steps for Copy and Mark read / unread (core.workspace.mail_undo), built from what the
verb really changed. Carrying them out runs end to end against a real mailbox in
tests/desktop/test_undo_more.py."""

from __future__ import annotations

from core.domain.changes import Changes
from core.workspace.mail_actions import ActionOutcome
from core.workspace.mail_undo import copy_undo, read_undo


def _outcome(*row_ids: int) -> ActionOutcome:
    return ActionOutcome(Changes(messages=True, row_ids=frozenset(row_ids)), None, row_ids)


def test_nothing_changed_means_nothing_to_undo() -> None:
    assert copy_undo(_outcome()) is None
    assert read_undo(_outcome(), True) is None


def test_undo_copy_names_the_copies() -> None:
    step = copy_undo(_outcome(41, 42))
    assert step is not None
    assert (step.label, step.copies, step.reads, step.retrack) == ("Copy", (41, 42), (), ())


def test_undo_mark_read_restores_the_previous_state() -> None:
    step = read_undo(_outcome(7, 9), True)  # only 7 and 9 changed: they were unread
    assert step is not None
    assert (step.label, step.reads, step.copies) == ("Mark as read", ((7, False), (9, False)), ())
    back = read_undo(_outcome(3), False)
    assert back is not None and back.reads == ((3, True),) and back.label == "Mark as unread"
