"""Drafts of the compose window: a local copy that is never lost, and a best-effort copy in the
mailbox's Drafts folder (issue 17).

Why this shape, and not an outbox kind: a draft is replaced wholesale, so only its newest
version matters; a queue of saves would replay stale versions, and a save must never wait for
the network. So:

- **Local** (the source of truth until the mail is sent): ``<data dir>/drafts/<id>.eml``, the
  draft's MIME (with ``X-Trackbox-Draft-Id``), and ``<id>.json``, what MIME does not hold (the
  store row replied to, the regarding record, plain text or not, the server copy's ref and
  whether it is current, a revision). Written at once, atomically (temporary file + rename),
  readable by this user only.
- **Server**: :meth:`DraftBox.push` appends the MIME to the Drafts folder (IMAP with
  ``\\Draft``; Graph makes it a draft itself; EWS stores it unsent), then deletes the previous
  copy: append first, so a failure in between leaves two copies, never none. With the mailbox
  away the local draft stays "server copy stale"; :meth:`DraftBox.push_pending` (each auto-save,
  each sync) catches up.
- **Sent or discarded**: the local files go at once; the server copy is deleted best effort,
  and a tombstone remembers it for :meth:`DraftBox.push_pending` while the mailbox is away.

Every method blocks (disk, mailbox): callers run them on a worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.utils import make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.domain.model import Address, MailRef, RecordRef
from core.mail.base import MailBackend, MailError, MailNotFound
from core.mail.drafts import (
    DRAFT_ID_HEADER,
    RFC822,
    TRACK_HEADER,
    Draft,
    DraftAttachment,
    build_mime,
    draft_from_mime,
    sanitized,
)
from core.mail.parse import parse_message
from core.private_files import make_private_dir, private_file

if TYPE_CHECKING:
    from core.store import Store
    from core.workspace.facade import Workspace

log = logging.getLogger(__name__)

DRAFTS_DIR = "drafts"


class DraftGone(LookupError):
    """The draft was sent or discarded (or never saved here)."""


@dataclass(frozen=True, slots=True)
class LocalDraft:
    """One saved draft as the compose window reopens it."""

    draft_id: str
    draft: Draft
    plain_text: bool = False
    revision: int = 0
    server_ref: MailRef | None = None
    server_current: bool = False


@dataclass
class _Meta:
    """``<id>.json``: what the MIME does not hold, and the server copy's state."""

    revision: int = 0
    fingerprint: str = ""
    in_reply_to: int | None = None
    regarding: RecordRef | None = None
    plain_text: bool = False
    server_ref: MailRef | None = None
    server_current: bool = False
    deleted: bool = False
    stale_refs: list[MailRef] = field(default_factory=list)  # older copies still to delete

    def to_json(self) -> str:
        def ref(r: MailRef | None) -> list[str] | None:
            return [r.folder, r.uid] if r else None

        rec = self.regarding
        return json.dumps(
            {
                "revision": self.revision,
                "fingerprint": self.fingerprint,
                "in_reply_to": self.in_reply_to,
                "regarding": [rec.entity, rec.id, rec.name] if rec else None,
                "plain_text": self.plain_text,
                "server_ref": ref(self.server_ref),
                "server_current": self.server_current,
                "deleted": self.deleted,
                "stale_refs": [ref(r) for r in self.stale_refs],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> _Meta:
        d: dict[str, Any] = json.loads(text)
        rec = d.get("regarding")
        sref = d.get("server_ref")
        return cls(
            revision=int(d.get("revision", 0)),
            fingerprint=str(d.get("fingerprint", "")),
            in_reply_to=d.get("in_reply_to"),
            regarding=RecordRef(*rec) if rec else None,
            plain_text=bool(d.get("plain_text", False)),
            server_ref=MailRef(*sref) if sref else None,
            server_current=bool(d.get("server_current", False)),
            deleted=bool(d.get("deleted", False)),
            stale_refs=[MailRef(*r) for r in d.get("stale_refs", []) if r],
        )


_LOCKS: dict[Path, tuple[threading.Lock, threading.Lock]] = {}
_LOCKS_GUARD = threading.Lock()


def _locks(folder: Path) -> tuple[threading.Lock, threading.Lock]:
    """(files, server) locks of one drafts folder, shared by every ``DraftBox`` on it: file
    writes are quick and never wait for the network; server pushes run one at a time."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(folder.absolute(), (threading.Lock(), threading.Lock()))


def fingerprint(draft: Draft, plain_text: bool) -> str:
    """Identifies a draft's content (a save of unchanged content does not touch the server)."""
    h = hashlib.sha256(repr((replace(draft, attachments=()), plain_text)).encode())
    for att in draft.attachments:
        h.update(f"{att.filename}\0{att.mimetype}\0{len(att.content)}\0".encode())
        h.update(att.content)
    return h.hexdigest()


def new_draft_id() -> str:
    return uuid.uuid4().hex


class DraftBox:
    """The drafts of one profile: ``folder`` on disk, the Drafts folder of ``open_mailbox``."""

    def __init__(
        self, folder: Path, open_mailbox: Callable[[], MailBackend], owner: Address
    ) -> None:
        self.folder = folder
        self._open_mailbox = open_mailbox
        self.owner = owner
        self._files, self._server = _locks(folder)

    @classmethod
    def of(cls, ws: Workspace) -> DraftBox:
        """The drafts next to the workspace's store (its profile's data directory)."""
        return cls(Path(ws.store_path).parent / DRAFTS_DIR, lambda: ws.open_mailbox(), ws.owner)

    # --- local ----------------------------------------------------------------------------
    def _eml(self, draft_id: str) -> Path:
        if not draft_id.isalnum():
            raise DraftGone(f"not a draft id: {draft_id!r}")
        return self.folder / f"{draft_id}.eml"

    def _json(self, draft_id: str) -> Path:
        return self._eml(draft_id).with_suffix(".json")

    def _write(self, path: Path, data: bytes) -> None:
        """Atomically: a crash leaves the old file or the new one, never half of one."""
        make_private_dir(self.folder)
        tmp = private_file(path.with_suffix(path.suffix + ".tmp"))
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _meta(self, draft_id: str) -> _Meta | None:
        try:
            return _Meta.from_json(self._json(draft_id).read_text("utf-8"))
        except FileNotFoundError:
            return None

    def _put_meta(self, draft_id: str, meta: _Meta) -> None:
        self._write(self._json(draft_id), meta.to_json().encode("utf-8"))

    def mime(self, draft: Draft, draft_id: str) -> bytes:
        """The draft's MIME as saved (sanitised HTML; the Track toggle the user set)."""
        headers = {DRAFT_ID_HEADER: draft_id}
        if draft.track or draft.track_refused:
            headers[TRACK_HEADER] = "yes" if draft.track else "no"
        domain = self.owner.email.rpartition("@")[2] or "trackbox.invalid"
        return build_mime(
            sanitized(draft),
            self.owner,
            message_id=make_msgid(domain=domain),
            extra_headers=headers,
        )

    def save(
        self, draft_id: str, draft: Draft, *, plain_text: bool = False, revision: int = 0
    ) -> LocalDraft:
        """Write the draft locally, at once. A save older than the one on disk (``revision``)
        is ignored: auto-save and close may finish in either order."""
        fp = fingerprint(draft, plain_text)
        with self._files:
            meta = self._meta(draft_id) or _Meta()
            if meta.deleted:
                raise DraftGone(f"draft {draft_id} was sent or discarded")
            if revision >= meta.revision and fp != meta.fingerprint:
                self._write(self._eml(draft_id), self.mime(draft, draft_id))
                meta.fingerprint = fp
                meta.in_reply_to, meta.regarding = draft.in_reply_to, draft.regarding
                meta.plain_text = plain_text
                meta.server_current = False
            meta.revision = max(meta.revision, revision)
            self._put_meta(draft_id, meta)
            return self._local(draft_id, meta)

    def load(self, draft_id: str) -> LocalDraft:
        with self._files:
            meta = self._meta(draft_id)
            if meta is None or meta.deleted:
                raise DraftGone(f"no draft {draft_id}")
            return self._local(draft_id, meta)

    def _local(self, draft_id: str, meta: _Meta) -> LocalDraft:
        draft, _id = draft_from_mime(self._eml(draft_id).read_bytes())
        draft = replace(draft, in_reply_to=meta.in_reply_to, regarding=meta.regarding)
        return LocalDraft(
            draft_id, draft, meta.plain_text, meta.revision, meta.server_ref, meta.server_current
        )

    def drafts(self) -> list[LocalDraft]:
        """Every draft not sent or discarded, newest first."""
        found = []
        for path in sorted(self.folder.glob("*.eml"), key=lambda p: -p.stat().st_mtime):
            with contextlib.suppress(DraftGone, FileNotFoundError):
                found.append(self.load(path.stem))
        return found

    # --- server ---------------------------------------------------------------------------
    def push(self, draft_id: str) -> MailRef | None:
        """Bring the server copy up to date: append the newest local version to Drafts, then
        delete the previous copy. Raises ``MailError`` (``MailUnavailable``: offline); the
        local draft is untouched by a failure."""
        with self._server:
            with self._files:
                meta = self._meta(draft_id)
                if meta is None or meta.deleted:
                    return None
                if meta.server_current:
                    return meta.server_ref
                revision, mime = meta.revision, self._eml(draft_id).read_bytes()
            with self._open_mailbox() as backend:
                ref = append_draft(backend, mime)
                with self._files:
                    meta = self._meta(draft_id) or _Meta(deleted=True)
                    old = [r for r in (meta.server_ref, *meta.stale_refs) if r and r != ref]
                    if meta.deleted:  # sent or discarded meanwhile: the new copy goes too
                        old.append(ref)
                    else:
                        meta.server_ref = ref
                        meta.server_current = meta.revision == revision
                    meta.stale_refs = old
                    self._finish(draft_id, meta)
                self._deleted(draft_id, old, _delete_refs(backend, old))
            return ref

    def _deleted(self, draft_id: str, tried: list[MailRef], left: list[MailRef]) -> None:
        """Forget the old server copies that are gone now (outside the network call)."""
        with self._files:
            meta = self._meta(draft_id)
            if meta is not None:
                meta.stale_refs = [r for r in meta.stale_refs if r in left or r not in tried]
                self._finish(draft_id, meta)

    def _finish(self, draft_id: str, meta: _Meta) -> None:
        """Store ``meta``; a tombstone with nothing left to delete goes away."""
        if meta.deleted and not meta.stale_refs:
            with contextlib.suppress(FileNotFoundError):
                self._json(draft_id).unlink()
        else:
            self._put_meta(draft_id, meta)

    def discard(self, draft_id: str) -> None:
        """Sent or thrown away: the local draft goes at once, the server copy best effort
        (remembered in a tombstone while the mailbox is away)."""
        with self._files:
            meta = self._meta(draft_id)
            if meta is None:
                return
            with contextlib.suppress(FileNotFoundError):
                self._eml(draft_id).unlink()
            meta.deleted = True
            meta.stale_refs = [r for r in (meta.server_ref, *meta.stale_refs) if r]
            meta.server_ref = None
            self._finish(draft_id, meta)
        if meta.stale_refs:
            with contextlib.suppress(MailError):
                self._delete_now(draft_id)

    def _delete_now(self, draft_id: str) -> None:
        with self._server:
            with self._files:
                meta = self._meta(draft_id)
            if meta is None or not meta.deleted or not meta.stale_refs:
                return
            with self._open_mailbox() as backend:
                tried = list(meta.stale_refs)
                self._deleted(draft_id, tried, _delete_refs(backend, tried))

    def push_pending(self) -> int:
        """Catch the server up with every draft saved or discarded while the mailbox was away;
        how many are still behind (the mailbox is still away, or refused one)."""
        behind = 0
        for path in self.folder.glob("*.json"):
            draft_id = path.stem
            meta = self._meta(draft_id)
            if meta is None or (meta.server_current and not meta.stale_refs):
                continue
            try:
                self._delete_now(draft_id) if meta.deleted else self.push(draft_id)
            except MailError as exc:
                log.info("draft %s not saved to the mailbox yet: %s", draft_id, exc)
                behind += 1
        return behind

    # --- from the mailbox -----------------------------------------------------------------
    def open_message(self, store: Store, row_id: int) -> LocalDraft:
        """A message of the Drafts folder to reopen: its local draft when it is one of ours
        (the local copy is the newest), else a new local draft made from it whose first save
        replaces it on the server."""
        row = store.message(row_id)
        if row is None:
            raise DraftGone(f"message {row_id} is no longer in the store")
        raw = self.raw(store, row_id)
        draft, draft_id = draft_from_mime(raw)
        if draft_id:
            with contextlib.suppress(DraftGone):
                return self.load(draft_id)
        draft_id = draft_id if draft_id and draft_id.isalnum() else new_draft_id()
        meta = _Meta(
            fingerprint=fingerprint(draft, False),
            server_ref=row.header.ref,
            server_current=True,
        )
        with self._files:
            self._write(self._eml(draft_id), raw)
            self._put_meta(draft_id, meta)
            return self._local(draft_id, meta)

    def raw(self, store: Store, row_id: int) -> bytes:
        """A stored message's MIME: the store's cache, else fetched (and cached)."""
        raw = store.bodies.get(row_id)
        if raw is None:
            row = store.message(row_id)
            if row is None:
                raise DraftGone(f"message {row_id} is no longer in the store")
            with self._open_mailbox() as backend:
                raw = backend.fetch(row.header.ref)
            store.bodies.put(row_id, raw)
        return raw

    def attachments_of(self, store: Store, row_id: int) -> tuple[DraftAttachment, ...]:
        """The original's attachments, for a forward (inline images stay behind)."""
        parsed = parse_message(self.raw(store, row_id))
        return tuple(
            DraftAttachment(a.filename, a.payload(), a.content_type)
            for a in parsed.attachments
            if not a.inline
        )

    def as_attachment(self, store: Store, row_id: int) -> DraftAttachment:
        """The original as one ``message/rfc822`` attachment ("Forward as attachment")."""
        raw = self.raw(store, row_id)
        subject = parse_message(raw).header.subject or "message"
        name = "".join(c if c.isalnum() or c in " -_." else "_" for c in subject).strip()
        return DraftAttachment(f"{name or 'message'}.eml", raw, RFC822)


def append_draft(backend: MailBackend, mime: bytes) -> MailRef:
    """Append ``mime`` to the Drafts folder as a draft: on IMAP with ``\\Draft`` set by
    the APPEND itself (RFC 3501 6.3.11); the other backends' Drafts folder says it."""
    from core.mail.imap import ImapBackend

    folder = backend.folder("drafts").path
    if isinstance(backend, ImapBackend):
        return backend.append_draft(folder, mime)
    return backend.append(folder, mime, is_read=True)


def _delete_refs(backend: MailBackend, refs: list[MailRef]) -> list[MailRef]:
    """Delete each; the ones that could not be deleted (a ref already gone counts as done)."""
    left = []
    for ref in refs:
        try:
            backend.delete(ref)
        except MailNotFound:
            pass
        except MailError as exc:
            log.info("old draft copy not deleted yet: %s", exc)
            left.append(ref)
    return left


__all__ = ["DRAFTS_DIR", "DraftBox", "DraftGone", "LocalDraft", "append_draft", "new_draft_id"]
