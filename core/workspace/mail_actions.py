"""The user's mail actions: read/unread, flag, move, copy, delete, archive, and their undo.

Each verb changes the store at once (the list shows it: optimistic) and queues the server's
side in the outbox (``core.outbox.kinds`` mail actions), in the transaction that changes the
store; ``Workspace.replay_mail`` writes them to the mail server (``core.workspace.replay``).
No verb here touches the network, so they work offline and the GUI may call them from a
worker without waiting for anything.

A moved or copied row gets a placeholder uid (``pending:…``) until the server says its ref;
its row id, Message-ID and tracked state stay (tracking is keyed by Message-ID), so a tracked
mail stays tracked wherever it goes.

Undo: the verbs that can be undone return an :class:`UndoStep`, the inverse operations;
:meth:`MailActions.undo` queues them like the originals.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.domain.changes import Changes
from core.domain.model import Folder, FolderRole, MailRef, RecordRef
from core.mail.base import FLAGGED_KEYWORD
from core.outbox.kinds import CopyMail, DeleteMail, FlagMail, MarkRead, MoveMail
from core.outbox.operations import PENDING_UID
from core.store import Store
from core.store.rows import MessageRow
from core.workspace.stores import StorePool

#: The folder Archive moves to (created when missing, as Outlook does).
ARCHIVE = "Archive"


class MailActionError(Exception):
    """A mail action that cannot be done as asked (no Deleted Items folder, an unknown
    folder). ``message`` is for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class UndoStep:
    """What undoes one action: rows to move back (row id, folder), flags to restore (row
    id, flagged), mail to track again (row id, regarding). ``label`` names the action."""

    label: str
    moves: tuple[tuple[int, str], ...] = ()
    flags: tuple[tuple[int, bool], ...] = ()
    retrack: tuple[tuple[int, RecordRef | None], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.moves or self.flags or self.retrack)


@dataclass(frozen=True)
class ActionOutcome:
    """What a verb changed, and how to undo it (None: it cannot be undone)."""

    changes: Changes
    undo: UndoStep | None = None
    row_ids: tuple[int, ...] = field(default=())


def is_flagged(row: MessageRow) -> bool:
    return FLAGGED_KEYWORD in row.header.keywords


class MailActions:
    """The verbs; see the module docstring."""

    def __init__(self, stores: StorePool) -> None:
        self._stores = stores

    # -- read and flag ------------------------------------------------------------------------

    def mark_read(self, row_ids: Sequence[int], read: bool) -> ActionOutcome:
        store, outbox = self._stores.store(), self._stores.outbox()
        done: list[int] = []
        for row in self._rows(store, row_ids):
            if row.header.is_read == read:
                continue
            ref = row.header.ref
            with store.transaction():
                outbox.enqueue(MarkRead(row.header.message_id, ref.folder, ref.uid, read))
                store.set_read_rows([row.id], read)
            done.append(row.id)
        return self._outcome(done, folders=True, flags_only=True)

    def set_flagged(self, row_ids: Sequence[int], flagged: bool) -> ActionOutcome:
        store, outbox = self._stores.store(), self._stores.outbox()
        undo: list[tuple[int, bool]] = []
        for row in self._rows(store, row_ids):
            if is_flagged(row) == flagged:
                continue
            ref = row.header.ref
            with store.transaction():
                outbox.enqueue(FlagMail(row.header.message_id, ref.folder, ref.uid, flagged))
                store.set_keyword_rows([row.id], FLAGGED_KEYWORD, flagged)
            undo.append((row.id, not flagged))
        label = "Flag" if flagged else "Clear flag"
        step = UndoStep(label, flags=tuple(undo))
        return self._outcome([r for r, _ in undo], step, flags_only=True)

    # -- move, copy, delete, archive -----------------------------------------------------------

    def move(self, row_ids: Sequence[int], target: str, *, label: str = "Move") -> ActionOutcome:
        return self._move(row_ids, target, label=label, create=False)

    def archive(self, row_ids: Sequence[int]) -> ActionOutcome:
        """To the Archive folder, made (in the store now, on the server by the queue) when
        the mailbox has none."""
        store = self._stores.store()
        target = _archive_folder(store.folders())
        create = target is None
        if target is None:
            store.upsert_folders([Folder(ARCHIVE, ARCHIVE)])
            target = ARCHIVE
        return self._move(row_ids, target, label="Archive", create=create)

    def delete(self, row_ids: Sequence[int]) -> ActionOutcome:
        """To Deleted Items (undoable); mail already there is deleted for good (the GUI asks
        first, as Outlook does)."""
        store = self._stores.store()
        trash = next((f.path for f in store.folders() if f.role is FolderRole.DELETED), None)
        if trash is None:
            raise MailActionError("This mailbox has no Deleted Items folder.")
        rows = self._rows(store, row_ids)
        in_trash = [r.id for r in rows if r.header.ref.folder == trash]
        keep = [r.id for r in rows if r.id not in in_trash]
        moved = self._move(keep, trash, label="Delete", create=False)
        if not in_trash:
            return moved
        gone = self.delete_permanently(in_trash)
        return ActionOutcome(moved.changes.merge(gone.changes), moved.undo, moved.row_ids)

    def delete_permanently(self, row_ids: Sequence[int]) -> ActionOutcome:
        """Deleted for good on the server (Shift+Delete); cannot be undone."""
        store, outbox = self._stores.store(), self._stores.outbox()
        done: list[int] = []
        for row in self._rows(store, row_ids):
            ref = row.header.ref
            with store.transaction():
                outbox.enqueue(DeleteMail(row.header.message_id, ref.folder, ref.uid))
                store.delete_rows([row.id])
            done.append(row.id)
        return self._outcome(done, folders=True, flags_only=True)

    def copy(self, row_ids: Sequence[int], target: str) -> ActionOutcome:
        store, outbox = self._stores.store(), self._stores.outbox()
        made: list[int] = []
        for row in self._rows(store, row_ids):
            ref, local = row.header.ref, _placeholder()
            with store.transaction():
                outbox.enqueue(CopyMail(row.header.message_id, ref.folder, ref.uid, target, local))
                new_id = store.copy_row(row.id, MailRef(target, local))
            if new_id is not None:
                made.append(new_id)
        return self._outcome(made, folders=True)

    def _move(
        self, row_ids: Sequence[int], target: str, *, label: str, create: bool
    ) -> ActionOutcome:
        store, outbox = self._stores.store(), self._stores.outbox()
        undo: list[tuple[int, str]] = []
        for row in self._rows(store, row_ids):
            ref, local = row.header.ref, _placeholder()
            if ref.folder == target:
                continue
            with store.transaction():
                outbox.enqueue(
                    MoveMail(row.header.message_id, ref.folder, ref.uid, target, local, create)
                )
                store.move_row(row.id, MailRef(target, local))
            undo.append((row.id, ref.folder))
        step = UndoStep(label, moves=tuple(undo))
        return self._outcome([r for r, _ in undo], step, folders=True)

    # -- undo -----------------------------------------------------------------------------------

    def undo(self, step: UndoStep) -> ActionOutcome:
        """Queue the inverse operations of ``step`` (moves back, flags restored); mail to
        track again is the caller's (the tracking verbs)."""
        changes = Changes()
        by_folder: dict[str, list[int]] = {}
        for row_id, folder in step.moves:
            by_folder.setdefault(folder, []).append(row_id)
        for folder, rows in by_folder.items():
            changes = changes.merge(self.move(rows, folder).changes)
        for flagged in (True, False):
            rows = [r for r, f in step.flags if f is flagged]
            if rows:
                changes = changes.merge(self.set_flagged(rows, flagged).changes)
        return ActionOutcome(changes)

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _rows(store: Store, row_ids: Sequence[int]) -> list[MessageRow]:
        return [r for r in map(store.message, row_ids) if r is not None]

    @staticmethod
    def _outcome(
        row_ids: list[int],
        undo: UndoStep | None = None,
        *,
        folders: bool = False,
        flags_only: bool = False,
    ) -> ActionOutcome:
        changes = Changes(
            folders=folders,
            messages=True,
            row_ids=frozenset(row_ids),
            queue=bool(row_ids),
            flags_only=flags_only,
        )
        return ActionOutcome(changes, undo if undo and not undo.empty else None, tuple(row_ids))


def _placeholder() -> str:
    return f"{PENDING_UID}{uuid.uuid4().hex}"


def _archive_folder(folders: list[Folder]) -> str | None:
    """The mailbox's Archive: a top-level folder of that name (any case)."""
    for f in folders:
        if f.parent is None and f.name.casefold() == ARCHIVE.casefold():
            return f.path
    return None


__all__ = ["ARCHIVE", "ActionOutcome", "MailActionError", "MailActions", "UndoStep", "is_flagged"]
