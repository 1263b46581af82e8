"""The fake EWS server's mailboxes: one Maildir per user (via the Maildir backend) plus what a
Maildir cannot hold (categories, the ``crmid`` extended property) in memory.

Ids are opaque to clients, as in Exchange: an ItemId is base64 of ``folder path NUL maildir
key`` (so it changes on move, as Exchange's do), a FolderId base64 of ``F NUL path``.
A SyncState is a compressed snapshot ``{item id: version}``, so paging and "what changed since"
are plain comparisons (the real server's state is just as opaque).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from core.domain.model import MailRef
from core.mail.maildir import MaildirBackend

#: EWS distinguished folder id -> Maildir folder path.
DISTINGUISHED = {
    "inbox": "Inbox",
    "sentitems": "Sent Items",
    "drafts": "Drafts",
    "outbox": "Outbox",
    "deleteditems": "Deleted Items",
    "junkemail": "Junk",
    "msgfolderroot": "",
    "root": "\x00root",
}
PATH_TO_DISTINGUISHED = {v: k for k, v in DISTINGUISHED.items()}


class FakeEwsError(Exception):
    """A per-item error the server reports in its response message (``ResponseCode``)."""

    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text or code


def folder_id(path: str) -> str:
    return base64.b64encode(b"F\x00" + path.encode()).decode()


def path_of_folder_id(fid: str) -> str:
    try:
        raw = base64.b64decode(fid, validate=True)
    except ValueError as exc:
        raise FakeEwsError("ErrorInvalidIdMalformed", f"bad folder id {fid!r}") from exc
    if not raw.startswith(b"F\x00"):
        raise FakeEwsError("ErrorInvalidIdMalformed", f"bad folder id {fid!r}")
    return raw[2:].decode()


def item_id(ref: MailRef) -> str:
    return base64.b64encode(f"{ref.folder}\x00{ref.uid}".encode()).decode()


def ref_of_item_id(iid: str) -> MailRef:
    try:
        folder, sep, key = base64.b64decode(iid, validate=True).decode().partition("\x00")
    except (ValueError, UnicodeDecodeError) as exc:
        raise FakeEwsError("ErrorInvalidIdMalformed", f"bad item id {iid!r}") from exc
    if not sep:
        raise FakeEwsError("ErrorInvalidIdMalformed", f"bad item id {iid!r}")
    return MailRef(folder, key)


@dataclass
class Props:
    """What Exchange keeps on an item besides the MIME: categories and extended properties."""

    categories: list[str] = field(default_factory=list)
    crmid: str | None = None
    flag_status: int | None = None  # PR_FLAG_STATUS (0x1090): 2 flagged, 1 complete


@dataclass
class Item:
    ref: MailRef
    is_read: bool
    props: Props
    path: Path  # the Maildir file

    @property
    def id(self) -> str:
        return item_id(self.ref)

    @property
    def version(self) -> str:
        """Changes when anything a sync reports changes (the ChangeKey)."""
        props = [self.props.categories, self.props.crmid, self.props.flag_status]
        h = hashlib.sha1(json.dumps(props).encode())
        return ("R" if self.is_read else "U") + h.hexdigest()[:10]


class UserMailbox:
    """One user's mailbox. All access goes through one lock: the server is threaded."""

    def __init__(self, root: Path) -> None:
        self.box = MaildirBackend(root)
        self.props: dict[MailRef, Props] = {}
        self.lock = threading.RLock()

    # -- folders --

    def folder_paths(self) -> list[str]:
        return [f.path for f in self.box.folders()]

    def check_folder(self, path: str) -> None:
        if path not in ("", "\x00root") and path not in self.folder_paths():
            raise FakeEwsError("ErrorFolderNotFound", f"no folder {path!r}")

    def create_folder(self, parent: str, name: str) -> str:
        self.check_folder(parent)
        path = f"{parent}/{name}" if parent else name
        if path in self.folder_paths():
            raise FakeEwsError("ErrorFolderExists", f"folder {path!r} exists")
        self.box.create_folder(path)
        return path

    # -- items --

    def items(self, folder: str) -> list[Item]:
        self.check_folder(folder)
        d = self.box._dir(folder)
        names = []
        for sub in ("new", "cur"):
            names += [
                (sub, n)
                for n in sorted((d / sub).iterdir(), key=lambda p: p.name)
                if not n.name.startswith(".")
            ]
        out = []
        for _sub, p in names:
            key, _, info = p.name.partition(":2,")
            ref = MailRef(folder, key)
            out.append(Item(ref, "S" in info, self.props.get(ref, Props()), p))
        return out

    def item(self, iid: str) -> Item:
        ref = ref_of_item_id(iid)
        try:
            items = {i.ref: i for i in self.items(ref.folder)}
        except FakeEwsError:
            items = {}
        if ref not in items:
            raise FakeEwsError(
                "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return items[ref]

    def create(self, folder: str, mime: bytes, is_read: bool) -> Item:
        ref = self.box.append(folder, mime, is_read=is_read)
        return self.item(item_id(ref))

    def move(self, iid: str, folder: str) -> Item:
        it = self.item(iid)
        self.check_folder(folder)
        new = self.box.move(it.ref, folder)
        self.props[new] = self.props.pop(it.ref, Props())
        return self.item(item_id(new))

    def delete(self, iid: str) -> None:
        it = self.item(iid)
        self.box.delete(it.ref)
        self.props.pop(it.ref, None)

    def set_read(self, iid: str, value: bool) -> None:
        self.box.set_read(self.item(iid).ref, value)

    def props_for(self, iid: str) -> Props:
        ref = self.item(iid).ref
        return self.props.setdefault(ref, Props())

    # -- sync --

    def sync(
        self, folder: str, state: str | None, limit: int
    ) -> tuple[list[tuple[str, Item | str, bool]], str, bool]:
        """Changes since ``state``: ``[(kind, item or id, is_read)]``, new state, last-in-range.
        Kinds: Create, Update, ReadFlagChange, Delete (deletes first, then updates, creates)."""
        known = decode_state(state)
        now = {i.id: i for i in self.items(folder)}
        changes: list[tuple[str, Item | str, bool]] = []
        for iid in known:
            if iid not in now:
                changes.append(("Delete", iid, False))
        for iid, it in now.items():
            if iid in known and known[iid] != it.version:
                only_read = known[iid][1:] == it.version[1:]
                changes.append(("ReadFlagChange" if only_read else "Update", it, it.is_read))
        for iid, it in now.items():
            if iid not in known:
                changes.append(("Create", it, it.is_read))
        page, more = changes[:limit], len(changes) > limit
        for kind, change, _ in page:
            if kind == "Delete":
                known.pop(str(change), None)
            else:
                assert isinstance(change, Item)
                known[change.id] = change.version
        return page, encode_state(known), not more


def encode_state(known: dict[str, str]) -> str:
    return base64.b64encode(zlib.compress(json.dumps(known).encode())).decode()


def decode_state(state: str | None) -> dict[str, str]:
    if not state:
        return {}
    try:
        data = json.loads(zlib.decompress(base64.b64decode(state)))
    except (ValueError, zlib.error) as exc:
        raise FakeEwsError(
            "ErrorInvalidSyncStateData",
            "Synchronization state data is corrupt or otherwise invalid.",
        ) from exc
    if not isinstance(data, dict):
        raise FakeEwsError("ErrorInvalidSyncStateData", "not a sync state")
    return data
