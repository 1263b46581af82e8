"""The fake Graph server's mailboxes: folders with ids and well-known names, messages kept as
their MIME bytes, and a change log per mailbox that per-folder delta rounds read.

Every change bumps the mailbox's sequence number; a message remembers the sequence of its last
change, and a folder keeps tombstones (``deleted`` or ``changed``: moved out) with theirs, so
a delta round that starts from a sequence sees exactly what happened since.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: Well-known name -> display name of the folders every mailbox has.
WELL_KNOWN = {
    "inbox": "Inbox",
    "sentitems": "Sent Items",
    "drafts": "Drafts",
    "deleteditems": "Deleted Items",
    "junkemail": "Junk Email",
    "archive": "Archive",
}
#: Well-known folders a mailbox gets only when asked (``outbox``): every Exchange mailbox has
#: an Outbox, but most tests read listings without it.
OPTIONAL_WELL_KNOWN = {"outbox": "Outbox"}
ROOT = "msgfolderroot"


def new_id(kind: bytes = b"M") -> str:
    """An opaque id shaped like Exchange's (URL-safe base64 of binary, ``AAMk…``)."""
    return "AAMk" + base64.urlsafe_b64encode(kind + secrets.token_bytes(44)).decode()


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GraphError(Exception):
    """An answer in Graph's error shape: ``status``, ``code``, ``message``; ``unknown``:
    a request the fake does not understand (recorded, fails the test)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        unknown: bool = False,
        headers: dict[str, str] | None = None,
        inner: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.unknown = unknown
        self.headers = headers or {}
        self.inner = inner


def not_found(what: str = "The specified object was not found in the store.") -> GraphError:
    return GraphError(404, "ErrorItemNotFound", what)


@dataclass
class Folder:
    id: str
    name: str
    parent_id: str
    well_known: str | None = None
    tombstones: list[tuple[int, str, str]] = field(default_factory=list)  # seq, id, reason


@dataclass
class Message:
    id: str
    folder_id: str
    mime: bytes
    received: str
    is_read: bool = False
    is_draft: bool = False
    flag: str = "notFlagged"
    categories: list[str] = field(default_factory=list)
    properties: dict[str, tuple[str, str]] = field(default_factory=dict)  # lower id -> (id, v)
    created: str = field(default_factory=now_iso)
    modified: str = field(default_factory=now_iso)
    change_key: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    seq: int = 0


class Mailbox:
    """One user's or shared mailbox: its folders, its messages and its change sequence."""

    def __init__(self, address: str, optional: tuple[str, ...] = ()) -> None:
        self.address = address
        self.lock = threading.RLock()
        self.seq = 0
        self.folders: dict[str, Folder] = {}
        self.messages: dict[str, Message] = {}
        self.root = Folder(new_id(b"F"), "Top of Information Store", "", ROOT)
        self.folders[self.root.id] = self.root
        for name, display in WELL_KNOWN.items():
            self.create_folder(self.root.id, display, well_known=name)
        for name in optional:
            self.create_folder(self.root.id, OPTIONAL_WELL_KNOWN[name], well_known=name)

    # -- folders --

    def folder(self, ref: str) -> Folder:
        """A folder by id or well-known name (case-insensitive, as Graph reads them)."""
        found = self.folders.get(ref)
        if found is not None:
            return found
        lowered = ref.lower()
        for folder in self.folders.values():
            if folder.well_known == lowered:
                return folder
        raise not_found()

    def children(self, folder_id: str) -> list[Folder]:
        return [f for f in self.folders.values() if f.parent_id == folder_id]

    def create_folder(self, parent_id: str, name: str, well_known: str | None = None) -> Folder:
        if any(f.name.lower() == name.lower() for f in self.children(parent_id)):
            raise GraphError(
                409,
                "ErrorFolderExists",
                "A folder with the specified name already exists.",
            )
        made = Folder(new_id(b"F"), name, parent_id, well_known)
        self.folders[made.id] = made
        return made

    def path_folder(self, path: str) -> Folder:
        """A folder by a ``/``-separated path of display names from the top (``Inbox/Sub``),
        or by well-known name; created as needed (for seeding)."""
        try:
            return self.folder(path)
        except GraphError:
            pass
        current = self.root
        for part in [p for p in path.split("/") if p]:
            found = next(
                (f for f in self.children(current.id) if f.name.lower() == part.lower()), None
            )
            current = found or self.create_folder(current.id, part)
        return current

    def delete_folder(self, folder: Folder) -> None:
        if folder.well_known:
            raise GraphError(403, "ErrorDeleteDistinguishedFolder", "Cannot delete this folder.")
        for child in self.children(folder.id):
            self.delete_folder(child)
        for message in [m for m in self.messages.values() if m.folder_id == folder.id]:
            del self.messages[message.id]
        del self.folders[folder.id]

    def subtree(self, folder: Folder) -> set[str]:
        ids = {folder.id}
        for child in self.children(folder.id):
            ids |= self.subtree(child)
        return ids

    # -- messages --

    def bump(self) -> int:
        self.seq += 1
        return self.seq

    def message(self, message_id: str) -> Message:
        found = self.messages.get(message_id)
        if found is None:
            raise not_found()
        return found

    def add(self, folder: Folder, mime: bytes, **state: object) -> Message:
        message = Message(new_id(), folder.id, mime, now_iso(), **state)  # type: ignore[arg-type]
        message.seq = self.bump()
        self.messages[message.id] = message
        return message

    def touch(self, message: Message) -> None:
        """A change other rounds must see: a new sequence, change key and modified time."""
        message.seq = self.bump()
        message.modified = now_iso()
        message.change_key = secrets.token_urlsafe(12)

    def remove(self, message: Message, reason: str) -> None:
        """Take a message out of its folder; its folder's delta reports ``@removed``."""
        del self.messages[message.id]
        folder = self.folders.get(message.folder_id)
        if folder is not None:
            folder.tombstones.append((self.bump(), message.id, reason))

    def move(self, message: Message, destination: Folder) -> Message:
        """Graph gives a moved message a new id (ids are not immutable by default)."""
        self.remove(message, "changed")
        moved = Message(
            new_id(),
            destination.id,
            message.mime,
            message.received,
            message.is_read,
            message.is_draft,
            message.flag,
            list(message.categories),
            dict(message.properties),
            message.created,
        )
        self.touch(moved)
        self.messages[moved.id] = moved
        return moved

    def copy(self, message: Message, destination: Folder) -> Message:
        made = self.add(
            destination,
            message.mime,
            is_read=message.is_read,
            is_draft=message.is_draft,
            flag=message.flag,
            categories=list(message.categories),
            properties=dict(message.properties),
        )
        made.received = message.received
        return made

    def in_folder(self, folder_id: str) -> list[Message]:
        return [m for m in self.messages.values() if m.folder_id == folder_id]
