"""Reading mail: a message for the reading pane, and its raw MIME (from the store's cache, or
fetched from the mailbox and cached).

What the pane shows is prepared here, on the worker, with bounded cost (``core.mail.display``):
the first ``DISPLAY_PARTS`` parts, the first part of a long body; "Show all" runs
:attr:`MessageView.show_all` on a worker too.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import tempfile
import threading
from pathlib import Path

from core.domain.html_sanitize import count_blocked_resources
from core.domain.model import MessageHeader
from core.mail import parse_message
from core.mail.attachment_names import non_colliding, unique_names
from core.mail.display import prepare_body
from core.mail.invitation import MAX_ICS_BYTES, is_calendar, read_invitation
from core.mail.parse import DISPLAY_PARTS, Attachment, ParsedMessage
from core.outbox.kinds import Promote
from core.outbox.operations import MailSession
from core.private_files import make_private_dir
from core.store import Store
from core.workspace.connection import Remotes
from core.workspace.reading import (
    AttachmentInfo,
    ExistingFiles,
    MessageView,
    SavedFiles,
    build_view,
)
from core.workspace.stores import StorePool


class MailboxReading:
    def __init__(self, stores: StorePool, remotes: Remotes) -> None:
        self._stores = stores
        self._remotes = remotes

    def load_message(self, row_id: int) -> MessageView:
        """Headers, safe body and tracking facts for the reading pane."""
        store = self._stores.store()
        row = store.message(row_id)
        if row is None:
            raise LookupError(f"message {row_id} is no longer in the store")
        raw = self.raw(store, row_id, row.header)
        parsed = parse_message(raw, row.header.ref, max_parts=DISPLAY_PARTS)
        body = prepare_body(parsed.text, parsed.html)
        # The view's HTML is the prepared one: the sender's whole HTML is never sanitised here.
        view = build_view(
            row, dataclasses.replace(parsed, html=None), record_url=self._remotes.record_url
        )
        text, html = parsed.text, parsed.html
        return dataclasses.replace(
            view,
            body_html=body.html,
            blocked_resources=count_blocked_resources(html) if html else 0,
            display=body,
            parts_not_shown=parsed.parts_not_shown,
            show_all=lambda: prepare_body(text, html, full=True),
            files=MessageAttachments(self, row_id, view.attachments),
            invitation=_invitation(parsed),
        )

    def parsed(self, row_id: int) -> ParsedMessage:
        """Stored message ``row_id`` parsed as the pane parsed it (same parts, same order),
        from the body cache, else from the mailbox."""
        store = self._stores.store()
        row = store.message(row_id)
        if row is None:
            raise LookupError(f"message {row_id} is no longer in the store")
        return parse_message(
            self.raw(store, row_id, row.header), row.header.ref, max_parts=DISPLAY_PARTS
        )

    def raw(
        self, store: Store, row_id: int, header: MessageHeader, session: MailSession | None = None
    ) -> bytes:
        raw = store.bodies.get(row_id)
        if raw is None:
            if session is not None:
                raw = session.fetch(header.ref)
            else:
                with self._remotes.open_mailbox() as backend:
                    raw = backend.fetch(header.ref)
            store.bodies.put(row_id, raw)
        return raw

    def body_for(self, promote: Promote, session: MailSession) -> bytes:
        store = self._stores.store()
        row = store.message_by_ref(promote.header.ref)
        if row is None:
            copies = store.messages_by_message_id(promote.message_id)
            if not copies:
                from core.outbox.queue import PermanentFailure

                raise PermanentFailure("the message is no longer in the mailbox")
            row = copies[0]
        return self.raw(store, row.id, row.header, session)


def _invitation(parsed: ParsedMessage) -> str | None:
    """The one-line summary of the message's first calendar part, if it has one."""
    for a in parsed.attachments:
        if is_calendar(a.filename, a.content_type):
            if a.size > MAX_ICS_BYTES:
                return read_invitation(b"x" * (MAX_ICS_BYTES + 1)).describe()
            return read_invitation(a.payload()).describe()
    return None


_open_lock = threading.Lock()
_open_root: Path | None = None


def _open_dir() -> Path:
    """A new folder, readable by this user only, in this process's private temporary
    folder (removed at exit): copies handed to the system's viewer."""
    global _open_root
    with _open_lock:
        if _open_root is None or not _open_root.is_dir():
            _open_root = make_private_dir(Path(tempfile.mkdtemp(prefix="trackbox-open-")))
            atexit.register(shutil.rmtree, _open_root, True)
        return Path(tempfile.mkdtemp(dir=_open_root))


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data``; FileExistsError when anything is there (a file, a
    folder, a link): never overwrites."""
    with open(path, "xb") as f:
        f.write(data)


def _write_replacing(path: Path, data: bytes) -> None:
    """Replace ``path`` at once (a temporary file beside it, renamed): a failure half-way
    leaves the old file whole, and a link at ``path`` is replaced, not followed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".trackbox-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class MessageAttachments:
    """The attachments of stored message ``row_id`` as files (``AttachmentFiles``): bytes
    from the cached MIME (or the mailbox), saved into the user's folders under their safe
    names, or copied for the system's viewer. On a worker only."""

    def __init__(
        self, reading: MailboxReading, row_id: int, infos: tuple[AttachmentInfo, ...]
    ) -> None:
        self._reading = reading
        self._row_id = row_id
        self._infos = {i.index: i for i in infos}
        self._names = dict(zip(self._infos, unique_names(i.name for i in infos), strict=True))

    def _parts(self, indexes: tuple[int, ...]) -> dict[int, Attachment]:
        parsed = self._reading.parsed(self._row_id).attachments
        parts: dict[int, Attachment] = {}
        for index in indexes:
            info = self._infos.get(index)
            part = parsed[index] if 0 <= index < len(parsed) else None
            if info is None or part is None or part.content_type != info.content_type:
                raise LookupError(f"attachment {index} of message {self._row_id} is not there")
            parts[index] = part
        return parts

    def payload(self, index: int) -> bytes:
        return self._parts((index,))[index].payload()

    def save(self, index: int, path: Path, *, replace: bool = False) -> SavedFiles:
        """Save attachment ``index`` as ``path`` (the user chose it); an existing file is
        replaced only with ``replace``, else reported in ``existing``."""
        data = self.payload(index)
        if replace:
            _write_replacing(path, data)
            return SavedFiles(saved=(path,))
        try:
            _write_new(path, data)
        except FileExistsError:
            return SavedFiles(existing=((index, path),))
        return SavedFiles(saved=(path,))

    def save_all(
        self, folder: Path, indexes: tuple[int, ...] | None = None, existing: ExistingFiles = "new"
    ) -> SavedFiles:
        """Save the attachments (all, or ``indexes``) into ``folder`` under their safe names,
        two of the same name as ``name (2).ext``; a name taken in the folder is handled as
        ``existing`` says."""
        chosen = tuple(self._infos) if indexes is None else indexes
        parts = self._parts(chosen)
        saved: list[Path] = []
        left: list[tuple[int, Path]] = []
        for index in chosen:
            path = folder / self._names[index]
            if path.parent != folder or path.name in ("", ".", ".."):
                raise ValueError(f"unsafe attachment name {path.name!r}")
            data = parts[index].payload()
            if existing == "replace":
                _write_replacing(path, data)
                saved.append(path)
                continue
            while True:
                try:
                    _write_new(path, data)
                    saved.append(path)
                    break
                except FileExistsError:
                    if existing == "new":
                        left.append((index, path))
                        break
                    path = folder / non_colliding(path.name, lambda n: (folder / n).exists())
        return SavedFiles(tuple(saved), tuple(left))

    def open_copy(self, index: int) -> Path:
        """A read-only copy of attachment ``index`` in a private temporary folder, for the
        system's viewer."""
        data = self.payload(index)
        path = _open_dir() / self._names[index]
        _write_new(path, data)
        os.chmod(path, 0o400)
        return path
