"""One user's working set: local store + mailbox + CRM, and the verbs the GUI and CLI call.

Every method blocks (disk, mailbox, network): the GUI runs them on workers. Each thread gets
its own :class:`~core.store.Store` connection on the same file (SQLite WAL lets readers and one
writer coexist); the mailbox backend is opened per call because backends are single-threaded.

Verbs return a :class:`Changes` value saying what to refresh (after anki's ``OpChanges``).

CONTRACT (to implement; also in docs/workspace-api.md — the GUI codes against it):
The sync/outbox engineer OWNS and implements it; the GUI engineer only calls it. Every method
blocks (the GUI runs it on `desktop/workers.py` workers). Existing, keep working as they are:
`store()`, `close()`, `record_url(entity, id)`, `sync_mail(progress)`, `load_message(row_id) -> MessageView`,
`mark_pending(row_ids) -> Changes`, `track(row_ids, regarding=None) -> Changes`,
`untrack(row_ids) -> Changes`, `owner`, `crm`, `mailbox_name`, dataclass `Changes(folders, messages, row_ids, errors)`.
To add (names fixed; add fields to the returned dataclasses freely):
- `enqueue_track(row_ids, regarding: RecordRef | None = None) -> Changes` (fast: durable outbox
  operations + rows shown PENDING; no network), `enqueue_untrack(row_ids)`,
  `enqueue_set_regarding(row_ids, regarding: RecordRef)`; `replay_outbox(cancel: threading.Event | None = None) -> Changes`
  (network; runs queued operations exactly once). `track/untrack` = enqueue + replay.
- `set_regarding(row_ids, regarding) -> Changes` (= enqueue + replay).
- `sync_cycle(progress: Callable[[SyncProgress], None] | None = None, cancel: threading.Event | None = None) -> SyncReport`
  — the full cycle of issue 6; `SyncProgress(step: str, done: int, total: int | None)`;
  `SyncReport(ok: bool, online: bool, started, finished, changes: Changes, errors: tuple[str, ...])`.
- `online: bool` property; `set_work_offline(offline: bool) -> None` (when offline: nothing
  touches the network; enqueue_* still work; going online replays).
- `last_sync() -> SyncReport | None`.
- `queue() -> list[QueuedOperation]` (`id, kind, message_id, subject, state ('queued'|'running'|'parked'), attempts, last_error, created`),
  `retry(op_id) -> Changes`, `discard(op_id) -> Changes`.
- `user_options() -> UserOptions` and `org_settings() -> OrgSettings` (types from `core/settings.py`,
  as cached in the store's settings snapshot), `save_user_options(options: UserOptions) -> Changes`
  (CRM per-user settings → `usersettingscollection` via the outbox when offline; local options → the profile).
- `local_options() -> LocalOptions` / `save_local_options(LocalOptions)`: `sync_interval_minutes=15`, `folders_to_sync`
  (None = all), `include_subfolders=True`, `show_tracking_banner=True`, `warn_before_sending_tracked=True`,
  `colour_tracked=True`, `contacts_scope ('owned'|'all')`, `address_books` (tuple of entity names) —
  dataclass in `core/profiles.py` or `core/options.py`.
- `compose_decision(draft: Draft) -> Decision` (would this outgoing mail be tracked, and why — from `core.tracking`),
  `send(draft: Draft) -> Changes` (through the mailbox; through the outbox when offline; tracked when
  `draft.track` or the rules say so). `Draft(to, cc, bcc: tuple[Address, ...], subject, body_text,
  body_html=None, track=False, regarding=None, in_reply_to: int | None = None (row id), attachments=())` in `core/compose.py`.
- `resolve(addresses) -> list[Party]`, `unresolved_for(row_id) -> tuple[Address, ...]`.
The GUI engineer owns `core/regarding.py` (search for the regarding picker: local cache first via
`core/addressbook.py`, then the CRM for accounts, contacts, leads, opportunities, incidents; recently used) and calls it directly.

"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.crm import CrmClient, CrmError
from core.mail import MailBackend, MailError, parse_message
from core.model import Address, MessageHeader, Reason, RecordRef, TrackState
from core.reading import MessageView, build_view
from core.store import Store

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Changes:
    """What a verb changed, so that each view refreshes only what it shows."""

    folders: bool = False
    messages: bool = False
    row_ids: frozenset[int] = frozenset()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrackOutcome:
    row_id: int
    state: TrackState
    activity_id: str | None = None
    error: str | None = None


@dataclass
class Workspace:
    store_path: Path
    open_mailbox: Callable[[], MailBackend]
    crm: CrmClient
    owner: Address
    mailbox_name: str = "Mailbox"
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _stores: list[Store] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- plumbing -------------------------------------------------------------------------
    def store(self) -> Store:
        """This thread's connection to the local store."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = Store.open(self.store_path)
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return store

    def close(self) -> None:
        with self._lock:
            for store in self._stores:
                try:
                    store.close()
                except Exception:  # a connection owned by a finished thread
                    log.debug("closing store failed", exc_info=True)
            self._stores.clear()
        self.crm.close()

    def record_url(self, entity: str, record_id: str) -> str:
        """The CRM's own web page for a record (the Dynamics record-URL shape)."""
        return (
            f"{self.crm.base_url.rstrip('/')}/main.aspx?etn={entity}&id={record_id}"
            "&pagetype=entityrecord"
        )

    # --- mail -----------------------------------------------------------------------------
    def sync_mail(self, progress: Progress | None = None) -> Changes:
        """Bring the store's folders and headers up to date with the mailbox."""
        store = self.store()
        backend = self.open_mailbox()
        try:
            folders = backend.folders()
            store.upsert_folders(folders)
            total = 0
            for folder in folders:
                if progress:
                    progress(f"Synchronising {folder.path}…")
                state = store.folder_sync_state(folder.path)
                for batch in backend.sync(folder.path, state):
                    if batch.reset:
                        store.clear_folder(folder.path)
                    if batch.removed:
                        store.remove_messages(batch.removed)
                    if batch.added:
                        total += store.upsert_headers(batch.added)
                    if batch.changed:
                        store.apply_flag_changes(batch.changed)
                    store.set_folder_sync_state(folder.path, batch.state)
        finally:
            backend.close()
        log.info("mail sync: %d headers stored", total)
        return Changes(folders=True, messages=True)

    def load_message(self, row_id: int) -> MessageView:
        """Headers, safe body and tracking facts for the reading pane."""
        store = self.store()
        row = store.message(row_id)
        if row is None:
            raise LookupError(f"message {row_id} is no longer in the store")
        raw = store.body(row_id)
        if raw is None:
            backend = self.open_mailbox()
            try:
                raw = backend.fetch(row.header.ref)
            finally:
                backend.close()
            store.put_body(row_id, raw)
        return build_view(row, parse_message(raw, row.header.ref), record_url=self.record_url)

    # --- tracking -------------------------------------------------------------------------
    def mark_pending(self, row_ids: Iterable[int]) -> Changes:
        store = self.store()
        ids = frozenset(row_ids)
        for rid in ids:
            row = store.message(rid)
            if row is not None and row.track_state != TrackState.TRACKED:
                store.set_track_state(row.header.message_id, TrackState.PENDING,
                                      reason=Reason("manual-pending", "Waiting for the CRM"))
        return Changes(messages=True, row_ids=ids)

    def track(self, row_ids: Sequence[int], regarding: RecordRef | None = None) -> Changes:
        """Promote each message to an e-mail activity in the CRM (Track in CRM).

        Idempotent by Message-ID: the CRM returns the existing activity for a message it has.
        A failure on one message marks that message failed and the others carry on.
        """
        store = self.store()
        errors = []
        for rid in row_ids:
            row = store.message(rid)
            if row is None:
                continue
            header = row.header
            try:
                raw = self._raw(store, rid, header)
                parsed = parse_message(raw, header.ref)
                activity_id = self.crm.deliver_promote_email(
                    message_id=header.message_id,
                    subject=header.subject,
                    sender=header.sender or "",
                    to=header.to,
                    cc=header.cc,
                    received_on=header.date or datetime.now(UTC),
                    body=parsed.html or parsed.text,
                    extra_properties=_extra_properties(header),
                )
            except (CrmError, MailError) as exc:
                errors.append(f"{header.subject or header.message_id}: {exc}")
                store.set_track_state(header.message_id, TrackState.FAILED,
                                      reason=Reason("track-failed", f"Tracking failed: {exc}"))
                continue
            info = self.crm.find_emails_by_message_id([header.message_id]).get(header.message_id)
            store.set_track_state(
                header.message_id,
                TrackState.TRACKED,
                activity_id=activity_id,
                regarding=regarding or (info.regarding if info else None),
                reason=Reason("manual", f"Tracked manually by {self.owner.name or 'you'}"),
            )
        return Changes(messages=True, row_ids=frozenset(row_ids), errors=tuple(errors))

    def untrack(self, row_ids: Sequence[int]) -> Changes:
        """Delete the CRM's copy of each tracked message and mark it not tracked."""
        store = self.store()
        errors = []
        for rid in row_ids:
            row = store.message(rid)
            if row is None:
                continue
            try:
                activity_id = row.activity_id
                if activity_id is None:
                    found = self.crm.find_emails_by_message_id([row.header.message_id])
                    info = found.get(row.header.message_id)
                    activity_id = info.activity_id if info else None
                if activity_id:
                    self.crm.delete_email(activity_id)
            except CrmError as exc:
                errors.append(f"{row.header.subject or row.header.message_id}: {exc}")
                continue
            store.set_track_state(row.header.message_id, TrackState.NOT_TRACKED,
                                  reason=Reason("untracked", "Untracked by you"))
        return Changes(messages=True, row_ids=frozenset(row_ids), errors=tuple(errors))

    def _raw(self, store: Store, row_id: int, header: MessageHeader) -> bytes:
        raw = store.body(row_id)
        if raw is None:
            backend = self.open_mailbox()
            try:
                raw = backend.fetch(header.ref)
            finally:
                backend.close()
            store.put_body(row_id, raw)
        return raw


def _extra_properties(header: MessageHeader) -> dict[str, str]:
    extra = {}
    if header.in_reply_to:
        extra["inreplyto"] = header.in_reply_to
    if header.thread_index:
        extra["conversationindex"] = header.thread_index
    return extra
