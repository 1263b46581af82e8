"""Local Maildir++ mailbox (the demo mailbox, and any Maildir on disk).

Layout (Courier/Dovecot Maildir++): the root's ``cur``/``new``/``tmp`` is the Inbox; every other
folder is a ``.``-prefixed directory whose name joins the path with ``.`` (``.Sent Items``,
``.Inbox.Projects.Fabrikam``, ``.Archive``). A literal ``.`` or ``%`` in a folder name is written
``%2E`` / ``%25``. File names are ``KEY:2,FLAGS``; ``S`` means read; lower-case letters are
keywords named in the folder's ``dovecot-keywords`` file (Dovecot's format), which is how the
``$CRMTracked`` marker is kept, so Dovecot serving this Maildir shows it as an IMAP keyword.

Sync is a directory scan. The state is a zlib-compressed list of ``key, flags`` (a few bytes per
message once compressed) plus the directories' mtimes: a rescan with unchanged mtimes costs two
``stat`` calls; otherwise only differing entries are read and reported.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import socket
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from core.domain.message_identity import MISSING, synthetic_message_id
from core.domain.model import Folder, FolderRole, MailRef, MessageHeader
from core.mail.base import (
    FLAGGED_KEYWORD,
    TRACKED_KEYWORD,
    FlagChange,
    MailBackend,
    MailError,
    MailNotFound,
    MailProtocolError,
    MailUnavailable,
    SyncBatch,
    role_for_name,
    tree_order,
)
from core.mail.parse import parse_headers
from core.mail.smtp import recipients

_HEADER_READ = 64 * 1024  # bytes read for headers (and the attachment guess) of a big message
#: ... and at most this much when the header block is longer (10,000 recipients: ~400 KB),
#: so that fields after a huge one (Subject after To) are not cut off.
_HEADER_MAX = 4 * 1024 * 1024
_MTIME_SLACK_NS = 2_000_000_000  # a directory changed this recently may change again unseen
_STATE_PREFIX = "md1:"
#: Folders a new Maildir starts with (Exchange's names, so roles are found by name).
STANDARD_FOLDERS = ("Sent Items", "Drafts", "Outbox", "Deleted Items", "Junk")


class MaildirBackend(MailBackend):
    """A Maildir++ tree at ``root`` (created, with the standard folders, if missing).
    ``owner`` is the mailbox owner's address: :meth:`send` delivers mail addressed to it."""

    def __init__(self, root: Path | str, *, create: bool = True, owner: str | None = None) -> None:
        self.root = Path(root)
        self.owner = (owner or "").strip().lower()
        self._paths: dict[str, dict[str, str]] = {}  # folder dir -> key -> file name
        if not (self.root / "cur").is_dir():
            if not create:
                raise MailUnavailable("not a Maildir", server_says=str(self.root))
            try:
                for sub in ("cur", "new", "tmp"):
                    (self.root / sub).mkdir(parents=True, exist_ok=True)
                for name in STANDARD_FOLDERS:  # as a server's auto-created folders
                    self.create_folder(name)
            except OSError as exc:
                raise MailUnavailable("cannot create Maildir", server_says=str(exc)) from exc

    # --- folders -----------------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        paths = {"Inbox"}
        try:
            entries = list(os.scandir(self.root))
        except OSError as exc:
            raise MailUnavailable("cannot read Maildir", server_says=str(exc)) from exc
        for e in entries:
            if e.name.startswith(".") and e.name not in (".", "..") and e.is_dir():
                if not (Path(e.path) / "cur").is_dir():
                    continue
                parts = [_unescape(p) for p in e.name[1:].split(".")]
                for i in range(1, len(parts) + 1):  # implied parents are folders too
                    paths.add("/".join(parts[:i]))
        out = []
        for path in sorted(paths, key=tree_order):
            parent, _, name = path.rpartition("/")
            role = role_for_name(name) if not parent else None
            out.append(Folder(path, name, FolderRole(role) if role else None, parent or None))
        return out

    def create_folder(self, path: str) -> Folder:
        """Create a folder (and its Maildir dirs); returns it. Existing folders are fine."""
        d = self._dir(path, must_exist=False)
        for sub in ("cur", "new", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "maildirfolder").touch()
        parent, _, name = path.rpartition("/")
        role = role_for_name(name) if not parent else None
        return Folder(path, name, FolderRole(role) if role else None, parent or None)

    # --- sync --------------------------------------------------------------------------------

    def sync(self, folder: str, state: str | None, batch_size: int = 500) -> Iterator[SyncBatch]:
        d = self._dir(folder)
        old_mtimes, known = _decode_state(state)
        # An unreadable state means we cannot tell what the caller knows: start over.
        reset = state is not None and old_mtimes is None and not known
        mtimes = _mtimes(d)
        now = time.time_ns()
        if (
            state is not None
            and mtimes == old_mtimes
            and all(now - m > _MTIME_SLACK_NS for m in mtimes)
        ):
            yield SyncBatch(state=state)
            return
        current = self._scan(d)
        table = functools.cache(functools.partial(_keyword_table, d))  # read once, if needed
        removed = tuple(MailRef(folder, k) for k in known if k not in current)
        changed = []
        for key, flags in current.items():
            if key in known and known[key] != flags:
                changed.append(
                    FlagChange(
                        MailRef(folder, key), "S" in flags, *_keywords_and_marker(flags, table)
                    )
                )
        seen = {k: f for k, f in known.items() if k in current}
        for c in changed:
            seen[c.ref.uid] = current[c.ref.uid]
        new_keys = [k for k in current if k not in known]
        # Oldest first, so a resumed first sync continues where it stopped.
        new_keys.sort()
        batch: list[MessageHeader] = []
        first = True
        for key in new_keys:
            batch.append(self._header(d, folder, key, current[key], table))
            seen[key] = current[key]
            if len(batch) >= batch_size:
                yield SyncBatch(
                    _encode_state(None, seen),
                    tuple(batch),
                    tuple(changed) if first else (),
                    removed if first else (),
                    reset and first,
                )
                batch, first = [], False
        yield SyncBatch(
            _encode_state(mtimes, seen),
            tuple(batch),
            tuple(changed) if first else (),
            removed if first else (),
            reset and first,
        )

    # --- messages ----------------------------------------------------------------------------

    def fetch(self, ref: MailRef) -> bytes:
        path = self._file(ref)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise MailNotFound("message is gone", ref=ref) from exc
        except OSError as exc:
            raise MailUnavailable("cannot read message", server_says=str(exc), ref=ref) from exc

    def send(self, mime: bytes) -> None:
        """A Maildir cannot send: the message is filed in Sent Items, and delivered to the Inbox
        when it is addressed to the mailbox's owner (so the demo has a send → receive loop)."""
        try:
            sent = self.folder("sent").path
        except MailNotFound:
            sent = self.create_folder("Sent Items").path
        self.append(sent, mime, is_read=True)
        owner = self.owner
        if owner and owner in {a.lower() for a in recipients(mime)}:
            self.append("Inbox", mime, is_read=False)

    def append(self, folder: str, mime: bytes, *, is_read: bool = True) -> MailRef:
        d = self._dir(folder)
        key = new_key()
        deliver(d, key, mime, "S" if is_read else "")
        self._paths.pop(str(d), None)
        return MailRef(folder, key)

    def move(self, ref: MailRef, folder: str) -> MailRef:
        src = self._file(ref)
        dst_dir = self._dir(folder)
        key = ref.uid
        if any(n.split(":", 1)[0] == key for n in _names(dst_dir)):
            key = new_key()
        flags = _flags(src.name)
        src_dir = self._dir(ref.folder)
        if src_dir != dst_dir and any("a" <= c <= "z" for c in flags):
            # Keyword letters are per folder: translate them through the keyword tables.
            table = _keyword_table(src_dir)
            flags = "".join(
                c
                if not "a" <= c <= "z"
                else _keyword_letter(dst_dir, table[c], create=True)
                if c in table
                else ""
                for c in flags
            )
        name = f"{key}:2,{''.join(sorted(flags))}"
        try:
            os.rename(src, dst_dir / "cur" / name)
        except FileNotFoundError as exc:
            raise MailNotFound("message is gone", ref=ref) from exc
        self._paths.pop(str(self._dir(ref.folder)), None)
        self._paths.pop(str(dst_dir), None)
        return MailRef(folder, key)

    def delete(self, ref: MailRef) -> None:
        try:
            self._file(ref).unlink()
        except FileNotFoundError as exc:
            raise MailNotFound("message is gone", ref=ref) from exc
        self._paths.pop(str(self._dir(ref.folder)), None)

    def set_read(self, ref: MailRef, read: bool) -> None:
        self._set_flag(ref, "S", read)

    def set_flagged(self, ref: MailRef, flagged: bool) -> None:
        self._set_flag(ref, "F", flagged)

    def copy(self, ref: MailRef, folder: str) -> MailRef:
        """A new file in ``folder`` with the original's flags (keywords are per folder and
        not copied: the tracked marker is set again by the replay where needed)."""
        src = self._file(ref)
        flags = "".join(c for c in _flags(src.name) if not "a" <= c <= "z")
        try:
            data = src.read_bytes()
        except FileNotFoundError as exc:
            raise MailNotFound("message is gone", ref=ref) from exc
        d = self._dir(folder)
        key = new_key()
        deliver(d, key, data, flags)
        self._paths.pop(str(d), None)
        return MailRef(folder, key)

    def set_tracked(self, ref: MailRef, activity_id: str | None) -> None:
        """Keeps only *that* the message is tracked (keyword ``$CRMTracked``); the activity id
        lives in the local store, as nothing else reads this Maildir."""
        letter = _keyword_letter(self._dir(ref.folder), TRACKED_KEYWORD, create=True)
        self._set_flag(ref, letter, activity_id is not None)

    def close(self) -> None:
        self._paths.clear()

    # --- internals ---------------------------------------------------------------------------

    def _dir(self, folder: str, *, must_exist: bool = True) -> Path:
        if folder.casefold() == "inbox":
            d = self.root
        else:
            parts = folder.split("/")
            if any(not p for p in parts):
                raise MailProtocolError("bad folder path", folder=folder)
            d = self.root / ("." + ".".join(_escape(p) for p in parts))
        if must_exist and not (d / "cur").is_dir():
            raise MailNotFound("no such folder", folder=folder)
        return d

    def _scan(self, d: Path) -> dict[str, str]:
        out: dict[str, str] = {}
        names: dict[str, str] = {}
        for sub in ("new", "cur"):
            try:
                it = os.scandir(d / sub)
            except OSError as exc:
                raise MailUnavailable("cannot read folder", server_says=str(exc)) from exc
            with it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    key = e.name.split(":", 1)[0]
                    out[key] = _flags(e.name)
                    names[key] = f"{sub}/{e.name}"
        self._paths[str(d)] = names
        return out

    def _file(self, ref: MailRef) -> Path:
        d = self._dir(ref.folder)
        names = self._paths.get(str(d))
        if names is None or ref.uid not in names or not (d / names[ref.uid]).exists():
            self._scan(d)
            names = self._paths[str(d)]
        if ref.uid not in names:
            raise MailNotFound("message is gone", ref=ref)
        return d / names[ref.uid]

    def _header(
        self, d: Path, folder: str, key: str, flags: str, table: Callable[[], dict[str, str]]
    ) -> MessageHeader:
        path = d / self._paths[str(d)][key]
        ref = MailRef(folder, key)
        keywords, marker = _keywords_and_marker(flags, table)
        try:
            size, raw = _read_head(path)
        except FileNotFoundError as exc:
            # Renamed since the listing (read or flagged meanwhile: new/ -> cur/, other flags):
            # the same message under another name. Read as unreadable it would be stored
            # under a made-up key that no later sync corrects.
            moved = _renamed(d, key)
            try:
                if moved is None:
                    raise exc
                size, raw = _read_head(moved)
                flags = _flags(moved.name)
                keywords, marker = _keywords_and_marker(flags, table)
            except OSError as again:
                return _unreadable(ref, flags, again)
        except OSError as exc:
            return _unreadable(ref, flags, exc)
        return parse_headers(
            raw, ref, size=size, is_read="S" in flags, keywords=keywords, tracked_marker=marker
        )

    def _set_flag(self, ref: MailRef, flag: str, on: bool) -> None:
        path = self._file(ref)
        flags = set(_flags(path.name))
        flags.add(flag) if on else flags.discard(flag)
        name = path.name.split(":", 1)[0] + ":2," + "".join(sorted(flags))
        target = path.parent.parent / "cur" / name
        if target == path:
            return
        try:
            os.rename(path, target)
        except FileNotFoundError as exc:
            raise MailNotFound("message is gone", ref=ref) from exc
        self._paths.setdefault(str(path.parent.parent), {})[ref.uid] = f"cur/{name}"


def _read_head(path: Path) -> tuple[int, bytes]:
    """A message file's size and its header block."""
    with open(path, "rb") as fh:
        return os.fstat(fh.fileno()).st_size, _read_header_block(fh)


def _renamed(d: Path, key: str) -> Path | None:
    """Where message ``key`` of Maildir ``d`` is now (``new/key`` or ``cur/key:2,FLAGS``)."""
    if (d / "new" / key).is_file():
        return d / "new" / key
    try:
        with os.scandir(d / "cur") as entries:
            for entry in entries:
                if entry.name.split(":", 1)[0] == key:
                    return Path(entry.path)
    except OSError:
        return None
    return None


def _read_header_block(fh: BinaryIO) -> bytes:
    """The first :data:`_HEADER_READ` bytes, or more up to the end of the header block
    (the first empty line) when it is longer, at most :data:`_HEADER_MAX`."""
    chunks = [fh.read(_HEADER_READ)]
    size, tail = len(chunks[0]), b""
    while size < _HEADER_MAX:
        seen = tail + chunks[-1]  # the last chunk and the 2 bytes before it: a boundary
        if b"\n\n" in seen or b"\n\r\n" in seen or b"\r\r" in seen or not chunks[-1]:
            break
        tail = seen[-2:]
        chunks.append(fh.read(_HEADER_READ))
        size += len(chunks[-1])
    return b"".join(chunks)


def _unreadable(ref: MailRef, flags: str, exc: OSError) -> MessageHeader:
    """A file that cannot be read has no content to derive an identity from: its Maildir
    key (unique, and kept when the file moves between ``new`` and ``cur``) stands in."""
    return MessageHeader(
        ref=ref,
        message_id=synthetic_message_id(date=None, sender=None, extra=("unreadable", ref.uid)),
        is_read="S" in flags,
        parse_errors=(f"unreadable: {exc}", MISSING),
    )


_counter = 0


def new_key() -> str:
    """A unique Maildir key (``time.unique.host``, as the Maildir spec asks)."""
    global _counter
    _counter += 1
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
    return f"{int(time.time())}.M{uuid.uuid4().hex[:16]}Q{_counter}.{host}"


def deliver(folder_dir: Path, key: str, data: bytes, flags: str = "") -> Path:
    """Write a message safely: to ``tmp`` first, then renamed into ``cur`` (never half-seen)."""
    tmp = folder_dir / "tmp" / key
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        target = folder_dir / "cur" / f"{key}:2,{''.join(sorted(flags))}"
        os.rename(tmp, target)
    except OSError as exc:
        raise MailError("cannot write message", server_says=str(exc)) from exc
    return target


def _flags(name: str) -> str:
    _, sep, info = name.partition(":2,")
    return "".join(sorted(info)) if sep else ""


def _names(d: Path) -> list[str]:
    out: list[str] = []
    for sub in ("new", "cur"):
        try:
            out.extend(os.listdir(d / sub))
        except OSError:
            pass
    return out


def _mtimes(d: Path) -> list[int]:
    try:
        return [os.stat(d / "cur").st_mtime_ns, os.stat(d / "new").st_mtime_ns]
    except OSError as exc:
        raise MailUnavailable("cannot read folder", server_says=str(exc)) from exc


def _encode_state(mtimes: list[int] | None, entries: dict[str, str]) -> str:
    body = "\n".join(f"{k}\t{f}" for k, f in sorted(entries.items())).encode()
    head = json.dumps(mtimes).encode()
    packed = zlib.compress(head + b"\n" + body, 1)
    return _STATE_PREFIX + base64.b64encode(packed).decode("ascii")


def _decode_state(state: str | None) -> tuple[list[int] | None, dict[str, str]]:
    if not state or not state.startswith(_STATE_PREFIX):
        return None, {}
    try:
        data = zlib.decompress(base64.b64decode(state[len(_STATE_PREFIX) :])).decode()
    except (ValueError, zlib.error, UnicodeDecodeError):
        return None, {}  # unreadable state: treat as first sync
    head, _, body = data.partition("\n")
    entries = {}
    for line in body.splitlines():
        k, _, f = line.partition("\t")
        entries[k] = f
    return json.loads(head), entries


def _keywords_and_marker(
    flags: str, table: Callable[[], dict[str, str]]
) -> tuple[tuple[str, ...], str | None]:
    """The keywords of a file's flag letters (``table`` gives the folder's letters) and the
    tracked marker among them."""
    flagged = (FLAGGED_KEYWORD,) if "F" in flags else ()
    letters = [c for c in flags if "a" <= c <= "z"]
    if not letters:
        return flagged, None
    words = table()
    kws = tuple(words[c] for c in letters if c in words)
    return kws + flagged, (TRACKED_KEYWORD if TRACKED_KEYWORD in kws else None)


def _keyword_table(d: Path) -> dict[str, str]:
    table: dict[str, str] = {}
    try:
        text = (d / "dovecot-keywords").read_text("utf-8")
    except OSError:
        return table
    for line in text.splitlines():
        num, _, word = line.partition(" ")
        if num.isdigit() and word and int(num) < 26:
            table[chr(ord("a") + int(num))] = word
    return table


def _keyword_letter(d: Path, word: str, *, create: bool) -> str:
    table = _keyword_table(d)
    for letter, w in table.items():
        if w == word:
            return letter
    if not create or len(table) >= 26:
        raise MailProtocolError("no keyword slot left in folder", server_says=str(d))
    num = next(i for i in range(26) if chr(ord("a") + i) not in table)
    with open(d / "dovecot-keywords", "a", encoding="utf-8") as fh:
        fh.write(f"{num} {word}\n")
    return chr(ord("a") + num)


def _escape(name: str) -> str:
    return name.replace("%", "%25").replace(".", "%2E")


def _unescape(name: str) -> str:
    return name.replace("%2E", ".").replace("%25", "%")
