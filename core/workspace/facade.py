"""One user's working set: local store + mailbox + CRM, and the verbs the GUI and CLI call
(contract: ``docs/workspace-api.md``).

Every method blocks (disk, mailbox, network): the GUI runs them on workers. Each thread gets
its own :class:`~core.store.Store` connection on the same file (SQLite WAL lets readers and one
writer coexist); the mailbox backend is opened per call because backends are single-threaded.

Changes to the CRM never happen here directly: ``enqueue_*`` writes durable outbox operations
and shows the messages *pending* (no network); ``replay_outbox`` carries them out exactly once
(``core/outbox/queue.py``). ``track``/``untrack``/``set_regarding`` are enqueue + replay. Offline —
chosen (``set_work_offline``) or found (the CRM does not answer) — is a state: verbs keep
working on the store and the queue, and the next cycle replays.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.config.local_options import (
    LocalOptions,
    local_user_options,
    user_options_from,
    usersettings_data,
)
from core.config.profiles import Profile, Profiles
from core.crm import CrmClient
from core.domain.crm_settings import OrgSettings, SettingsError, UserOptions
from core.domain.model import (
    UNTRACKABLE_STATES,
    Address,
    Decision,
    MessageHeader,
    Reason,
    RecordRef,
    TrackState,
)
from core.mail import MailBackend, parse_message
from core.outbox.kinds import Promote, SetRegarding, Untrack, UpdateUserSettings
from core.outbox.operations import CrmApplier, LocalEffects, MailSession, ProcessLock, new_records
from core.outbox.promotion import queue_promotion
from core.outbox.queue import OpKind, OpState, Outbox, OutboxStatus, ReplayResult
from core.store import Store
from core.sync.address_books import AddressBook
from core.sync.problems import Problem, SyncProblem
from core.sync.report import Changes, QueuedOperation, SyncProgress, SyncReport
from core.workspace.compose import ComposeVerbs
from core.workspace.reading import MessageView, build_view

if TYPE_CHECKING:
    from core.sync.cycle import CycleServices
    from core.sync.scheduler import SyncScheduler

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

__all__ = ["Changes", "QueuedOperation", "SyncProgress", "SyncReport", "TrackOutcome", "Workspace"]


@dataclass(frozen=True)
class TrackOutcome:
    row_id: int
    state: TrackState
    activity_id: str | None = None
    error: str | None = None


@dataclass
class Workspace(ComposeVerbs):
    store_path: Path
    open_mailbox: Callable[[], MailBackend]
    crm: CrmClient
    owner: Address
    mailbox_name: str = "Mailbox"
    profile: Profile | None = None
    profiles: Profiles | None = None
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _stores: list[Store] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cycle_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _replay_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _status: OutboxStatus = field(default_factory=OutboxStatus, repr=False)
    work_offline: bool = field(default=False, repr=False)
    _reachable: bool = field(default=True, repr=False)
    _last: SyncReport | None = field(default=None, repr=False)

    # --- plumbing -------------------------------------------------------------------------
    def store(self) -> Store:
        """This thread's connection to the local store."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = _open_store(self.store_path)
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

    def outbox(self) -> Outbox:
        return Outbox(self.store(), status=self._status)

    # --- online / offline -----------------------------------------------------------------
    @property
    def online(self) -> bool:
        return not self.work_offline and self._reachable

    def set_work_offline(self, offline: bool) -> None:
        """Work offline (nothing touches the network) or go back online, replaying the queue."""
        self.work_offline = offline
        log.info("work offline=%s", offline)
        if not offline:
            self.note_reachable(True)
            self.outbox().reset_backoff()
            self.replay_outbox()

    def note_reachable(self, reachable: bool) -> None:
        """The CRM answered (or not). Back from unreachable, queued work is due at once."""
        if reachable != self._reachable:
            log.info("crm reachable=%s", reachable)
            if reachable:
                self.outbox().reset_backoff()
        self._reachable = reachable

    # --- settings -------------------------------------------------------------------------
    def user_id(self) -> str | None:
        who = self.store().settings("whoami")
        return str(who["UserId"]) if who else None

    def org_settings(self) -> OrgSettings:
        """From the snapshot; the CRM's defaults when there is none or it cannot be read
        (the sync report says so)."""
        row = self.store().settings("organization")
        try:
            return OrgSettings.from_crm(row) if row else OrgSettings()
        except SettingsError:
            log.warning("organization settings unreadable; using the defaults")
            return OrgSettings()

    def user_options(self) -> UserOptions:
        store = self.store()
        local = store.settings("local_user_options")
        try:
            return user_options_from(store.settings("usersettings"), local, self.owner.email)
        except SettingsError:
            log.warning("user settings unreadable; using the defaults")
            return user_options_from({}, local, self.owner.email)

    def save_user_options(self, options: UserOptions) -> Changes:
        """CRM per-user settings go to ``usersettingscollection`` through the outbox;
        Trackbox-only ones stay in the store."""
        data = usersettings_data(options)
        store = self.store()
        with store.transaction():
            row = dict(store.settings("usersettings") or {})
            row.update(data)
            store.save_settings("usersettings", row)
            store.save_settings("local_user_options", local_user_options(options))
            self.outbox().enqueue(UpdateUserSettings(data, user_id=self.user_id()))
        return self.replay_outbox().merge(Changes(settings=True, queue=True))

    def local_options(self) -> LocalOptions:
        if self.profile is not None:
            return LocalOptions.from_profile(self.profile.config)
        data = self.store().settings("local_options")
        return LocalOptions.from_dict(data) if data else LocalOptions()

    def save_local_options(self, options: LocalOptions) -> Changes:
        if self.profile is not None:
            profiles = self.profiles or Profiles()
            self.profile = profiles.save(self.profile.name, options.apply_to(self.profile.config))
        else:
            self.store().save_settings("local_options", options.to_dict())
        return Changes(settings=True)

    def address_book(self, store: Store | None = None) -> AddressBook:
        opts = self.local_options()
        return AddressBook(
            store or self.store(),
            contacts_scope=opts.contacts_scope,
            entities=opts.address_books,
            user_id=self.user_id(),
            internal_domains=(self.owner.email.rpartition("@")[2],),
        )

    # --- mail -----------------------------------------------------------------------------
    def sync_mail(self, progress: Progress | None = None) -> Changes:
        """Bring the store's folders and headers up to date with the mailbox (no CRM)."""
        from core.sync.cycle import SyncCycle

        cycle = SyncCycle(
            self.cycle_services(),
            (lambda p: progress(f"Synchronising {p.step}…")) if progress else None,
        )
        cycle.mail_online = True
        cycle.mail()
        return Changes(folders=True, messages=True, errors=tuple(cycle.errors))

    def load_message(self, row_id: int) -> MessageView:
        """Headers, safe body and tracking facts for the reading pane."""
        store = self.store()
        row = store.message(row_id)
        if row is None:
            raise LookupError(f"message {row_id} is no longer in the store")
        raw = self._raw(store, row_id, row.header)
        return build_view(row, parse_message(raw, row.header.ref), record_url=self.record_url)

    def _raw(
        self, store: Store, row_id: int, header: MessageHeader, session: MailSession | None = None
    ) -> bytes:
        raw = store.body(row_id)
        if raw is None:
            if session is not None:
                raw = session.fetch(header.ref)
            else:
                with self.open_mailbox() as backend:
                    raw = backend.fetch(header.ref)
            store.put_body(row_id, raw)
        return raw

    def _body_for(self, promote: Promote, session: MailSession) -> bytes:
        store = self.store()
        row = store.message_by_ref(promote.header.ref)
        if row is None:
            copies = store.messages_by_message_id(promote.message_id)
            if not copies:
                from core.outbox.queue import PermanentFailure

                raise PermanentFailure("the message is no longer in the mailbox")
            row = copies[0]
        return self._raw(store, row.id, row.header, session)

    # --- tracking -------------------------------------------------------------------------
    def mark_pending(self, row_ids: Iterable[int]) -> Changes:
        store = self.store()
        ids = frozenset(row_ids)
        for rid in ids:
            row = store.message(rid)
            if row is not None and row.track_state != TrackState.TRACKED:
                store.set_track_state(
                    row.header.message_id,
                    TrackState.PENDING,
                    reason=Reason("manual-pending", "Waiting for the CRM"),
                )
        return Changes(messages=True, row_ids=ids)

    def enqueue_track(self, row_ids: Sequence[int], regarding: RecordRef | None = None) -> Changes:
        """Queue "Track in CRM" for each message and show it pending (no network)."""
        store, outbox = self.store(), self.outbox()
        reason = Reason("manual", f"Tracked manually by {self.owner.name or 'you'}")
        options, book = self.user_options(), self.address_book(store)
        attachment_limit = self.org_settings().max_upload_bytes
        for rid in row_ids:
            row = store.message(rid)
            if row is None:
                continue
            # Tracked by someone else: tracking it too links the same activity (one per
            # Message-ID in the CRM) and shows it as mine.
            if row.track_state is TrackState.TRACKED:
                if regarding is not None:
                    self.enqueue_set_regarding([rid], regarding)
                continue
            queue_promotion(
                store,
                outbox,
                Promote(
                    row.header,
                    reason,
                    regarding=regarding,
                    source="user",
                    attachment_limit=attachment_limit,
                ),
                decision=Decision(True, reason, regarding),
                new_records=new_records(row.header, options.auto_create, book),
                pending=Reason("manual-pending", "Waiting for the CRM"),
            )
        return Changes(messages=True, row_ids=frozenset(row_ids), queue=True)

    def enqueue_untrack(self, row_ids: Sequence[int]) -> Changes:
        """Queue Untrack for those of ``row_ids`` the CRM has (or is about to have); mail
        that is not tracked is left alone."""
        store, outbox = self.store(), self.outbox()
        done = []
        for rid in row_ids:
            row = store.message(rid)
            if row is None or row.track_state not in UNTRACKABLE_STATES:
                continue
            done.append(rid)
            mid = row.header.message_id
            with store.transaction():
                outbox.enqueue(Untrack(mid, row.activity_id))
                store.record_decision(
                    mid, Decision(False, Reason("untracked", "Untracked by you")), source="user"
                )
                store.set_track_state(
                    mid,
                    TrackState.PENDING,
                    activity_id=row.activity_id,
                    reason=Reason("untrack-pending", "Waiting for the CRM to untrack"),
                )
        return Changes(messages=True, row_ids=frozenset(done), queue=bool(done))

    def enqueue_set_regarding(self, row_ids: Sequence[int], regarding: RecordRef) -> Changes:
        store, outbox = self.store(), self.outbox()
        for rid in row_ids:
            row = store.message(rid)
            if row is None:
                continue
            mid = row.header.message_id
            with store.transaction():
                if row.track_state not in UNTRACKABLE_STATES:
                    # Setting regarding on an untracked mail tracks it, as in Outlook.
                    self.enqueue_track([rid], regarding)
                    continue
                outbox.enqueue(SetRegarding(mid, regarding))
                store.set_track_state(
                    mid,
                    TrackState.PENDING,
                    activity_id=row.activity_id,
                    regarding=regarding,
                    reason=Reason("regarding-pending", "Waiting for the CRM"),
                )
        return Changes(messages=True, row_ids=frozenset(row_ids), queue=True)

    def replay_now(self, cancel: threading.Event | None = None) -> ReplayResult:
        """Run the queue (network). Serialised: one replay at a time per workspace."""
        if self.work_offline:
            return ReplayResult(stopped="offline")
        store = self.store()
        effects = LocalEffects(store, self.org_settings())
        session = MailSession(self.open_mailbox)
        applier = CrmApplier(
            self.crm, body_source=lambda p: self._body_for(p, session), send=session.send
        )
        other_process = ProcessLock(Path(self.store_path).with_name("outbox.lock"))
        with self._replay_lock:
            if not other_process.acquire():
                log.info("outbox replay skipped: another process on this profile replays")
                return ReplayResult()
            try:
                result = self.outbox().replay(
                    applier, effects.commit, on_parked=effects.parked, cancel=cancel
                )
            finally:
                other_process.release()
                session.close()
        if result.stopped == "offline":
            self.note_reachable(False)
        elif result.done:
            self.note_reachable(True)
            self._mark_on_server(result.done)
        return result

    def _mark_on_server(self, done: Sequence[int]) -> None:
        """Best effort: the tracked marker (IMAP keyword, EWS category) on the mail server,
        so that other devices see it. The CRM, not the marker, is the truth."""
        marks = []
        for op_id in done:
            op = self.outbox().get(op_id)
            if op is None or op.kind not in (OpKind.PROMOTE, OpKind.UNTRACK) or not op.message_id:
                continue
            activity = (op.result or {}).get("activity_id") if op.kind is OpKind.PROMOTE else None
            for row in self.store().messages_by_message_id(op.message_id):
                marks.append((row.header.ref, activity))
        if not marks:
            return
        try:
            with self.open_mailbox() as backend:
                for ref, activity in marks:
                    backend.set_tracked(ref, activity)
        except Exception as exc:  # best effort: never lose a replay's result over a marker
            log.info("tracked marker not set on the mail server: %s", type(exc).__name__)

    def replay_outbox(self, cancel: threading.Event | None = None) -> Changes:
        result = self.replay_now(cancel)
        store = self.store()
        errors: list[SyncProblem] = []
        for op_id in result.parked:
            op = self.outbox().get(op_id)
            if op is not None:
                what = op.payload.subject or op.message_id or op.payload.describe()
                errors.append(SyncProblem(Problem.OPERATION_PARKED, what, op.last_error or ""))
        if result.stopped == "auth":
            errors.append(SyncProblem(Problem.CRM_SIGN_IN, "running the queue", result.error or ""))
        rows: set[int] = set()
        for op_id in (*result.done, *result.parked):
            op = self.outbox().get(op_id)
            if op is not None and op.message_id:
                rows.update(r.id for r in store.messages_by_message_id(op.message_id))
        return Changes(messages=True, row_ids=frozenset(rows), errors=tuple(errors), queue=True)

    def track(self, row_ids: Sequence[int], regarding: RecordRef | None = None) -> Changes:
        """Promote each message to an e-mail activity in the CRM (Track in CRM)."""
        self.enqueue_track(row_ids, regarding)
        return self._with_replay(row_ids)

    def untrack(self, row_ids: Sequence[int]) -> Changes:
        """Delete the CRM's copy of each tracked message and mark it not tracked."""
        self.enqueue_untrack(row_ids)
        return self._with_replay(row_ids)

    def set_regarding(self, row_ids: Sequence[int], regarding: RecordRef) -> Changes:
        self.enqueue_set_regarding(row_ids, regarding)
        return self._with_replay(row_ids)

    def _with_replay(self, row_ids: Sequence[int]) -> Changes:
        replayed = self.replay_outbox()
        return Changes(
            messages=True,
            row_ids=frozenset(row_ids) | replayed.row_ids,
            errors=replayed.errors,
            queue=True,
        )

    # --- queue ----------------------------------------------------------------------------
    def queue(self) -> list[QueuedOperation]:
        return [QueuedOperation.of(op) for op in self.outbox().pending()]

    def retry(self, op_id: int) -> Changes:
        self.outbox().retry(op_id)
        return self.replay_outbox()

    def discard(self, op_id: int) -> Changes:
        store = self.store()
        effects = LocalEffects(store, self.org_settings())
        op = self.outbox().discard(op_id, effects.discarded)
        rows = store.messages_by_message_id(op.message_id) if op.message_id else []
        return Changes(messages=True, row_ids=frozenset(r.id for r in rows), queue=True)

    def queued_count(self) -> int:
        counts = self.outbox().counts()
        return counts[OpState.QUEUED.value] + counts[OpState.PARKED.value]

    # --- sync -----------------------------------------------------------------------------
    def sync_cycle(
        self,
        progress: Callable[[SyncProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> SyncReport:
        """One full cycle (``core.sync.cycle``); never two at once: a call while one runs
        waits for it and returns its report."""
        from core.sync.cycle import SyncCycle

        if not self._cycle_lock.acquire(blocking=False):
            with self._cycle_lock:
                if self._last is not None:
                    return self._last
            self._cycle_lock.acquire()  # the other cycle left no report: run our own
        try:
            report = SyncCycle(self.cycle_services(), progress, cancel).run()
            self._last = report
            self.store().save_settings("last_sync", report.to_dict())
            return report
        finally:
            self._cycle_lock.release()

    def cycle_services(self) -> CycleServices:
        """What a sync cycle works with, from this workspace."""
        from core.sync.cycle import CycleServices

        return CycleServices(
            store=self.store(),
            crm=self.crm,
            owner=self.owner,
            work_offline=self.work_offline,
            open_mailbox=self.open_mailbox,
            org_settings=self.org_settings,
            user_options=self.user_options,
            local_options=self.local_options,
            address_book=self.address_book,
            user_id=self.user_id,
            last_sync=self.last_sync,
            replay_now=self.replay_now,
            note_reachable=self.note_reachable,
        )

    def start_interval_sync(self) -> SyncScheduler:
        """A running scheduler: a cycle now, then every ``sync_interval_minutes``."""
        from core.sync.scheduler import SyncScheduler

        scheduler = SyncScheduler(self.sync_cycle, self.local_options().sync_interval_minutes * 60)
        scheduler.start()
        return scheduler

    def last_sync(self) -> SyncReport | None:
        if self._last is not None:
            return self._last
        data = self.store().settings("last_sync")
        return SyncReport.from_dict(data) if data else None


def _open_store(path: Path, attempts: int = 5) -> Store:
    """Open a connection; SQLite can answer "database is locked" at once (without waiting
    for its busy timeout) while another connection changes the WAL, so try a few times."""
    for attempt in range(attempts):
        try:
            return Store.open(path)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt + 1 == attempts:
                raise
            log.info("store busy at open (attempt %d)", attempt + 1)
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")
