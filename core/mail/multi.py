"""One mailbox backend over several mailboxes: the user's own and the shared or delegated ones
a profile adds (``extra_mailboxes``), so the rest of the app keeps working with one backend.

- Paths: the primary's folders keep their paths and roles; each extra mailbox's folders sit
  under a top-level folder named by its address (``sales@contoso.com/Inbox``) without roles,
  so ``folder("sent")``, Drafts and the rest stay the user's own. That top-level folder is
  virtual (it holds no mail: its sync is one empty batch). A primary folder whose name is an
  extra mailbox's address is hidden behind it.
- Routing: every call that names a folder or a ref goes to the mailbox of its path's first
  segment, with the path (and the refs it returns, and a :class:`MailError`'s ``folder`` and
  ``ref``) translated both ways; sync states are the sub-backend's own strings. ``send``
  always goes through the primary (the user's own address and Sent Items).
- Extra mailboxes are opened on first use and closed with this one.
- A failing extra mailbox (no longer shared with the user: 403; unreachable) never stops the
  primary: :meth:`folders` leaves its folders out and records why in :attr:`failures` (the
  store keeps what it synced before: folders are never removed by a listing), and a call
  for one of its folders raises that mailbox's own error.
- A move or copy between two mailboxes is refused (:class:`CrossMailboxMove`): Graph can only
  create a message from MIME as a draft, so fetch + append (+ delete) would turn received mail
  into an unsent draft, drop its categories and tracked marker, and is not atomic.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from core.domain.model import Folder, MailRef
from core.mail.base import (
    FlagChange,
    MailBackend,
    MailError,
    MailProtocolError,
    SyncBatch,
)

log = logging.getLogger(__name__)

#: The sync state of an extra mailbox's top-level folder (it holds no mail).
ROOT_STATE = "mailbox-root"


class CrossMailboxMove(MailProtocolError):
    """A move from one mailbox to another (see the module docstring for why it is refused)."""


class MultiMailbox(MailBackend):
    """``primary``: the user's own mailbox; ``extras``: address -> how to open that mailbox
    (called once, on first use)."""

    def __init__(
        self, primary: MailBackend, extras: Mapping[str, Callable[[], MailBackend]]
    ) -> None:
        self.primary = primary
        self._openers = dict(extras)
        self._opened: dict[str, MailBackend] = {}
        #: Extra mailboxes the last :meth:`folders` could not list, with why.
        self.failures: dict[str, MailError] = {}

    def mailbox_of(self, path: str) -> str | None:
        """The extra mailbox (its address) a folder path is in; None for the user's own."""
        return self._split(path)[0]

    # --- routing -----------------------------------------------------------------------------

    def _split(self, path: str) -> tuple[str | None, str]:
        """(extra mailbox address or None for the primary, the path inside that mailbox)."""
        head, sep, rest = path.partition("/")
        if head in self._openers:
            return head, rest
        return None, path

    def _backend(self, address: str | None) -> MailBackend:
        if address is None:
            return self.primary
        backend = self._opened.get(address)
        if backend is None:
            backend = self._opened[address] = self._openers[address]()
        return backend

    def _inner_ref(self, ref: MailRef) -> tuple[str | None, MailRef]:
        address, inner = self._split(ref.folder)
        if address is not None and not inner:
            raise MailProtocolError("a mailbox's top folder holds no mail", ref=ref)
        return address, MailRef(inner, ref.uid) if address is not None else ref

    def _call(
        self,
        address: str | None,
        fn: Callable[[MailBackend], Any],
        *,
        folder: str | None = None,
        ref: MailRef | None = None,
    ) -> Any:
        """``fn`` on the mailbox's backend; its error names our ``folder`` and ``ref``."""
        if address is None:
            return fn(self.primary)
        try:
            return fn(self._backend(address))
        except MailError as exc:
            raise _outer_error(exc, address, folder, ref) from None

    # --- folders -----------------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        own = [f for f in self.primary.folders() if self._split(f.path)[0] is None]
        out = list(own)
        self.failures = {}
        for address in self._openers:
            try:
                inner = self._backend(address).folders()
            except MailError as exc:
                log.info("extra mailbox not listed: %s", type(exc).__name__)
                self.failures[address] = _outer_error(exc, address)
                continue
            out.append(Folder(address, address, None, None))
            out.extend(_outer_folder(f, address) for f in inner)
        return out

    def folder(self, role: str) -> Folder:
        """Well-known folders are the user's own: the primary's, without listing the rest."""
        return self.primary.folder(role)

    def create_folder(self, path: str) -> Folder:
        address, inner = self._split(path)
        if address is None:
            return self.primary.create_folder(path)
        if not inner:
            return Folder(address, address, None, None)
        made: Folder = self._call(address, lambda b: b.create_folder(inner), folder=path)
        return _outer_folder(made, address)

    # --- sync --------------------------------------------------------------------------------

    def sync(self, folder: str, state: str | None, batch_size: int = 500) -> Iterator[SyncBatch]:
        address, inner = self._split(folder)
        if address is None:
            yield from self.primary.sync(folder, state, batch_size)
            return
        if not inner:
            yield SyncBatch(ROOT_STATE, reset=state not in (None, ROOT_STATE))
            return
        try:
            for batch in self._backend(address).sync(inner, state, batch_size):
                yield _outer_batch(batch, address)
        except MailError as exc:
            raise _outer_error(exc, address, folder) from None

    # --- messages ----------------------------------------------------------------------------

    def fetch(self, ref: MailRef) -> bytes:
        address, inner = self._inner_ref(ref)
        data: bytes = self._call(address, lambda b: b.fetch(inner), ref=ref)
        return data

    def send(self, mime: bytes) -> None:
        """Always as the user, through the user's own mailbox."""
        self.primary.send(mime)

    def append(self, folder: str, mime: bytes, *, is_read: bool = True) -> MailRef:
        address, inner = self._split(folder)
        if address is not None and not inner:
            raise MailProtocolError("a mailbox's top folder holds no mail", folder=folder)
        made: MailRef = self._call(
            address, lambda b: b.append(inner, mime, is_read=is_read), folder=folder
        )
        return _outer_ref(made, address)

    def move(self, ref: MailRef, folder: str) -> MailRef:
        address, inner = self._inner_ref(ref)
        target, target_inner = self._split(folder)
        if target != address:
            raise CrossMailboxMove(
                "a message cannot be moved to another mailbox",
                server_says=f"{ref.folder} -> {folder}: move it in Outlook, or forward it",
                ref=ref,
                folder=folder,
            )
        if address is not None and not target_inner:
            raise MailProtocolError("a mailbox's top folder holds no mail", folder=folder)
        moved: MailRef = self._call(
            address, lambda b: b.move(inner, target_inner), folder=folder, ref=ref
        )
        return _outer_ref(moved, address)

    def copy(self, ref: MailRef, folder: str) -> MailRef:
        """Within one mailbox only, for the reasons a move between two is refused."""
        address, inner = self._inner_ref(ref)
        target, target_inner = self._split(folder)
        if target != address:
            raise CrossMailboxMove(
                "a message cannot be copied to another mailbox",
                server_says=f"{ref.folder} -> {folder}: copy it in Outlook, or forward it",
                ref=ref,
                folder=folder,
            )
        copied: MailRef = self._call(
            address, lambda b: b.copy(inner, target_inner), folder=folder, ref=ref
        )
        return _outer_ref(copied, address)

    def set_flagged(self, ref: MailRef, flagged: bool) -> None:
        address, inner = self._inner_ref(ref)
        self._call(address, lambda b: b.set_flagged(inner, flagged), ref=ref)

    def delete(self, ref: MailRef) -> None:
        address, inner = self._inner_ref(ref)
        self._call(address, lambda b: b.delete(inner), ref=ref)

    def set_read(self, ref: MailRef, read: bool) -> None:
        address, inner = self._inner_ref(ref)
        self._call(address, lambda b: b.set_read(inner, read), ref=ref)

    def set_tracked(self, ref: MailRef, activity_id: str | None) -> None:
        address, inner = self._inner_ref(ref)
        self._call(address, lambda b: b.set_tracked(inner, activity_id), ref=ref)

    def set_tracked_many(
        self, marks: Iterable[tuple[MailRef, str | None]]
    ) -> dict[MailRef, MailError]:
        """Per mailbox: its backend's own ``set_tracked_many`` (Graph's ``$batch``) or one
        ``set_tracked`` each. Returns the refs that failed, with why; a mailbox whose marking
        failed as a whole has all its refs there, and the other mailboxes are still marked."""
        groups: dict[str | None, dict[MailRef, tuple[MailRef, str | None]]] = {}
        failed: dict[MailRef, MailError] = {}
        for ref, activity in marks:
            try:
                address, inner = self._inner_ref(ref)
            except MailError as exc:
                failed[ref] = exc
                continue
            groups.setdefault(address, {})[inner] = (ref, activity)
        for address, group in groups.items():
            try:
                backend = self._backend(address)
                failed.update(_mark(backend, group, address))
            except MailError as exc:
                err = exc if address is None else _outer_error(exc, address)
                failed.update({outer: err for outer, _ in group.values()})
        return failed

    def close(self) -> None:
        opened, self._opened = list(self._opened.values()), {}
        try:
            self.primary.close()
        finally:
            for backend in opened:
                try:
                    backend.close()
                except MailError as exc:  # one mailbox's close never keeps the rest open
                    log.info("extra mailbox close failed: %s", type(exc).__name__)


def _mark(
    backend: MailBackend,
    group: Mapping[MailRef, tuple[MailRef, str | None]],
    address: str | None,
) -> dict[MailRef, MailError]:
    """Mark one mailbox's refs (``group``: inner ref -> (our ref, activity)); failures by
    our ref."""
    failed: dict[MailRef, MailError] = {}
    many = getattr(backend, "set_tracked_many", None)
    if many is not None:
        result: Mapping[MailRef, MailError] = many([(i, a) for i, (_, a) in group.items()])
        for inner, err in result.items():
            failed[group[inner][0]] = err if address is None else _outer_error(err, address)
        return failed
    for inner, (outer, activity) in group.items():
        try:
            backend.set_tracked(inner, activity)
        except MailError as exc:
            failed[outer] = exc if address is None else _outer_error(exc, address, ref=outer)
    return failed


def _outer_path(path: str, address: str | None) -> str:
    if address is None:
        return path
    return f"{address}/{path}" if path else address


def _outer_ref(ref: MailRef, address: str | None) -> MailRef:
    return ref if address is None else MailRef(_outer_path(ref.folder, address), ref.uid)


def _outer_folder(folder: Folder, address: str) -> Folder:
    return Folder(
        _outer_path(folder.path, address),
        folder.name,
        None,
        _outer_path(folder.parent or "", address),
    )


def _outer_batch(batch: SyncBatch, address: str) -> SyncBatch:
    return SyncBatch(
        batch.state,
        tuple(dataclasses.replace(h, ref=_outer_ref(h.ref, address)) for h in batch.added),
        tuple(
            FlagChange(_outer_ref(c.ref, address), c.is_read, c.keywords, c.tracked_marker)
            for c in batch.changed
        ),
        tuple(_outer_ref(r, address) for r in batch.removed),
        batch.reset,
    )


def _outer_error(
    exc: MailError, address: str, folder: str | None = None, ref: MailRef | None = None
) -> MailError:
    """The sub-backend's error with its folder and ref in our paths, or those of the call
    (``folder``, ``ref``: ours) when it names none; the same object, so its type and the
    server's words stay."""
    if getattr(exc, "_mailbox", None) == address:
        return exc  # translated already
    exc._mailbox = address  # type: ignore[attr-defined]
    if exc.ref is not None:
        exc.ref = _outer_ref(exc.ref, address)
    elif ref is not None:
        exc.ref = ref
    if exc.folder is not None:
        exc.folder = _outer_path(exc.folder, address)
    else:
        exc.folder = folder or (ref.folder if ref is not None else address)
    return exc


__all__ = ["ROOT_STATE", "CrossMailboxMove", "MultiMailbox"]
