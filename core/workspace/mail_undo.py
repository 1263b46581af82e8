"""Undo for the mail actions that ``core.workspace.mail_actions.UndoStep`` cannot express:
Copy (undo deletes the copies, as Outlook does) and Mark read / unread (undo gives each
message back the state it had).

An :class:`ExtraUndo` is built from the verb's :class:`ActionOutcome` (which rows it really
changed) and carried out with the workspace's own verbs, so the inverse is queued through
the outbox like the original and works offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from core.domain.changes import Changes
from core.domain.model import RecordRef
from core.workspace.mail_actions import ActionOutcome


class _MailVerbs(Protocol):
    """What undoing needs of the workspace."""

    def mark_read(self, row_ids: Sequence[int], read: bool = True) -> ActionOutcome: ...

    def delete_mail(
        self, row_ids: Sequence[int], *, permanently: bool = False
    ) -> ActionOutcome: ...


@dataclass(frozen=True)
class ExtraUndo:
    """Copies to delete (their row ids) and read states to restore (row id, was read).
    ``retrack`` is always empty (kept so that every undo step answers the same question)."""

    label: str
    copies: tuple[int, ...] = ()
    reads: tuple[tuple[int, bool], ...] = ()
    retrack: tuple[tuple[int, RecordRef | None], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.copies or self.reads)


def copy_undo(outcome: ActionOutcome) -> ExtraUndo | None:
    """Undoing a copy deletes the copies it made (``outcome.row_ids`` are the new rows)."""
    step = ExtraUndo("Copy", copies=tuple(outcome.row_ids))
    return None if step.empty else step


def read_undo(outcome: ActionOutcome, read: bool) -> ExtraUndo | None:
    """Mark read/unread changed only the messages that were not so already
    (``outcome.row_ids``): each of them had the other state before."""
    label = "Mark as read" if read else "Mark as unread"
    step = ExtraUndo(label, reads=tuple((rid, not read) for rid in outcome.row_ids))
    return None if step.empty else step


def undo_extra(verbs: _MailVerbs, step: ExtraUndo) -> Changes:
    """Queue the inverse of ``step`` (no network: the replay writes it to the server)."""
    changes = Changes()
    if step.copies:
        changes = changes.merge(verbs.delete_mail(list(step.copies), permanently=True).changes)
    for was_read in (True, False):
        rows = [rid for rid, r in step.reads if r is was_read]
        if rows:
            changes = changes.merge(verbs.mark_read(rows, was_read).changes)
    return changes


__all__ = ["ExtraUndo", "copy_undo", "read_undo", "undo_extra"]
