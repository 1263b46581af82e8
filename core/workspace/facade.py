"""One user's working set: local store + mailbox + CRM, and the verbs the GUI and CLI call
(contract: ``docs/workspace-api.md``).

Every method blocks (disk, mailbox, network): the GUI runs them on workers. Each thread gets
its own :class:`~core.store.Store` connection on the same file (``core/workspace/stores.py``);
the mailbox backend is opened per call because backends are single-threaded.

Changes to the CRM never happen here directly: ``enqueue_*`` writes durable outbox operations
and shows the messages *pending* (no network); ``replay_outbox`` carries them out exactly once
(``core/outbox/queue.py``). ``track``/``untrack``/``set_regarding`` are enqueue + replay. Offline —
chosen (``set_work_offline``) or found (the CRM does not answer) — is a state: verbs keep
working on the store and the queue, and the next cycle replays.

The façade only wires the services that own the verbs and delegates to them: the store
connections (``stores.py``), the CRM and mailbox and the online state (``connection.py``),
reading (``mailbox_reading.py``), the outbox replay (``replay.py``), options (``settings.py``),
tracking (``tracking.py``), the queue (``queue.py``), compose (``compose.py``) and
synchronisation (``syncing.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.config.local_options import LocalOptions
from core.config.profiles import Profile, Profiles
from core.crm import CrmClient
from core.domain.changes import Changes
from core.domain.crm_settings import OrgSettings, UserOptions
from core.domain.model import Address, Decision, Party, RecordRef, TrackState
from core.mail import MailBackend
from core.mail.drafts import Draft
from core.outbox.kinds import MailKind
from core.outbox.queue import Outbox, ReplayResult
from core.store import Store
from core.sync.address_books import AddressBook
from core.sync.problems import parked_problems
from core.sync.report import QueuedOperation, SyncProgress, SyncReport
from core.workspace.compose import ComposeVerbs
from core.workspace.connection import ConnectionState, ConnectionSwitch, Remotes
from core.workspace.mail_actions import ActionOutcome, MailActions, UndoStep
from core.workspace.mailbox_reading import MailboxReading
from core.workspace.never_track import NeverTrackService
from core.workspace.queue import QueueService
from core.workspace.reading import MessageView, unresolved_for
from core.workspace.replay import Replayer
from core.workspace.settings import SettingsService
from core.workspace.stores import StorePool
from core.workspace.syncing import Progress, SyncService
from core.workspace.tracking import TrackingVerbs

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from core.sync.cycle import CycleServices
    from core.sync.scheduler import SyncScheduler


#: The mail actions whose completion changes nothing the reading pane shows.
_FLAG_KINDS = frozenset({MailKind.MAIL_SET_READ.value, MailKind.MAIL_SET_FLAG.value})


class _MailFirstSync(SyncService):
    """A sync cycle that first writes the user's queued mail actions to the mail server, so
    that the cycle's mail step reads the server as the user left it, and so that they go out
    when the CRM is away (the cycle's outbox step needs the CRM); and after it, when the
    mailbox answered, saves to its Drafts folder the drafts saved while it was away."""

    def sync_cycle(
        self,
        progress: Callable[[SyncProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> SyncReport:
        try:
            self._replayer.replay_mail(cancel)
        except Exception:  # never lose a cycle over it: the cycle's replay tries again
            log.exception("mail actions pass before the sync cycle failed")
        report = super().sync_cycle(progress, cancel)
        if report.mail_online and not report.cancelled:
            self._drafts_catch_up()
        return report

    def _drafts_catch_up(self) -> None:
        from core.workspace.drafts import DRAFTS_DIR, DraftBox

        folder = Path(self._stores.path).parent / DRAFTS_DIR
        if not folder.is_dir():
            return
        try:
            DraftBox(folder, self._remotes.open_mailbox, self._owner).push_pending()
        except Exception:  # best effort: the local draft is the truth; the next cycle retries
            log.exception("saving drafts to the mailbox after the sync cycle failed")


__all__ = [
    "Changes",
    "ConnectionSwitch",
    "QueuedOperation",
    "SyncProgress",
    "SyncReport",
    "TrackOutcome",
    "Workspace",
]


@dataclass(frozen=True)
class TrackOutcome:
    row_id: int
    state: TrackState
    activity_id: str | None = None
    error: str | None = None


class Workspace:
    def __init__(
        self,
        store_path: Path,
        open_mailbox: Callable[[], MailBackend],
        crm: CrmClient,
        owner: Address,
        mailbox_name: str = "Mailbox",
        profile: Profile | None = None,
        profiles: Profiles | None = None,
    ) -> None:
        self.store_path = store_path
        self.owner = owner
        self.mailbox_name = mailbox_name
        self._stores = stores = StorePool(store_path)
        self._remotes = remotes = Remotes(crm, open_mailbox)
        self._connection = connection = ConnectionState(stores.outbox)
        self._reading = reading = MailboxReading(stores, remotes)
        self._replayer = replayer = Replayer(stores, remotes, connection, reading)
        self._settings = settings = SettingsService(stores, owner, replayer, profile, profiles)
        self._tracking = TrackingVerbs(stores, settings, replayer, owner)
        self._queue = QueueService(stores, settings, replayer)
        self._compose = ComposeVerbs(stores, settings, replayer, owner)
        self._sync = _MailFirstSync(stores, remotes, connection, settings, replayer, owner)
        self._mail_actions = MailActions(stores)
        self._never_track = NeverTrackService(stores, settings)

    def __repr__(self) -> str:
        return f"Workspace(store_path={self.store_path!r}, owner={self.owner!r})"

    # --- what may be replaced while the workspace lives -----------------------------------
    @property
    def crm(self) -> CrmClient:
        return self._remotes.crm

    @crm.setter
    def crm(self, crm: CrmClient) -> None:
        self._remotes.crm = crm

    @property
    def open_mailbox(self) -> Callable[[], MailBackend]:
        return self._remotes.open_mailbox

    @open_mailbox.setter
    def open_mailbox(self, open_mailbox: Callable[[], MailBackend]) -> None:
        self._remotes.open_mailbox = open_mailbox

    @property
    def profile(self) -> Profile | None:
        return self._settings.profile

    @profile.setter
    def profile(self, profile: Profile | None) -> None:
        self._settings.profile = profile

    @property
    def profiles(self) -> Profiles | None:
        return self._settings.profiles

    # --- plumbing -------------------------------------------------------------------------
    def store(self) -> Store:
        """This thread's connection to the local store."""
        return self._stores.store()

    def close(self) -> None:
        self._stores.close()
        self.crm.close()

    def record_url(self, entity: str, record_id: str) -> str:
        """The CRM's own web page for a record (the Dynamics record-URL shape)."""
        return self._remotes.record_url(entity, record_id)

    def outbox(self) -> Outbox:
        return self._stores.outbox()

    # --- online / offline -----------------------------------------------------------------
    @property
    def online(self) -> bool:
        return self._connection.online

    @property
    def work_offline(self) -> bool:
        return self._connection.work_offline

    def set_work_offline(self, offline: bool) -> ConnectionSwitch:
        """Work offline (nothing touches the network) or go back online, replaying the queue:
        the new connection state, the operations that were due and what the replay changed."""
        switched = self._connection.set_work_offline(offline)
        if offline:
            return switched
        replayed = self._replayer.replay_outbox()
        return replace(switched, online=self.online, replayed=replayed)

    def note_reachable(self, reachable: bool) -> None:
        """The CRM answered (or not). Back from unreachable, queued work is due at once."""
        self._connection.note_reachable(reachable)

    # --- settings -------------------------------------------------------------------------
    def user_id(self) -> str | None:
        return self._settings.user_id()

    def org_settings(self) -> OrgSettings:
        """From the snapshot; the CRM's defaults when there is none or it cannot be read."""
        return self._settings.org_settings()

    def user_options(self) -> UserOptions:
        return self._settings.user_options()

    def save_user_options(self, options: UserOptions) -> Changes:
        """CRM per-user settings go to the CRM through the outbox; the rest stay local."""
        return self._settings.save_user_options(options)

    def local_options(self) -> LocalOptions:
        return self._settings.local_options()

    def save_local_options(self, options: LocalOptions) -> Changes:
        return self._settings.save_local_options(options)

    def address_book(self, store: Store | None = None) -> AddressBook:
        return self._settings.address_book(store)

    # --- mail -----------------------------------------------------------------------------
    def sync_mail(self, progress: Progress | None = None) -> Changes:
        """Bring the store's folders and headers up to date with the mailbox (no CRM)."""
        return self._sync.sync_mail(progress)

    def load_message(self, row_id: int) -> MessageView:
        """Headers, safe body and tracking facts for the reading pane."""
        return self._reading.load_message(row_id)

    # --- mail actions (store now, mail server through the queue) ---------------------------

    def mark_read(self, row_ids: Sequence[int], read: bool = True) -> ActionOutcome:
        return self._mail_actions.mark_read(row_ids, read)

    def set_flagged(self, row_ids: Sequence[int], flagged: bool) -> ActionOutcome:
        return self._mail_actions.set_flagged(row_ids, flagged)

    def move_mail(self, row_ids: Sequence[int], folder: str) -> ActionOutcome:
        return self._mail_actions.move(row_ids, folder)

    def copy_mail(self, row_ids: Sequence[int], folder: str) -> ActionOutcome:
        return self._mail_actions.copy(row_ids, folder)

    def delete_mail(self, row_ids: Sequence[int], *, permanently: bool = False) -> ActionOutcome:
        """To Deleted Items; ``permanently`` (Shift+Delete) for good."""
        if permanently:
            return self._mail_actions.delete_permanently(row_ids)
        return self._mail_actions.delete(row_ids)

    def archive_mail(self, row_ids: Sequence[int]) -> ActionOutcome:
        return self._mail_actions.archive(row_ids)

    def untrack_undoable(self, row_ids: Sequence[int]) -> ActionOutcome:
        """Queue Untrack and say how to undo it (track again, regarding the same record)."""
        store = self.store()
        rows = [r for r in map(store.message, row_ids) if r is not None]
        step = UndoStep("Untrack", retrack=tuple((r.id, r.regarding) for r in rows))
        changes = self.enqueue_untrack(row_ids)
        return ActionOutcome(changes, step if changes.row_ids else None, tuple(changes.row_ids))

    def undo(self, step: UndoStep) -> Changes:
        """Queue the inverse of an action (no network; ``replay_mail``/``replay_outbox``
        carry it out)."""
        changes = self._mail_actions.undo(step).changes
        for row_id, regarding in step.retrack:
            changes = changes.merge(self.enqueue_track([row_id], regarding))
        return changes

    # --- never track ------------------------------------------------------------------------
    def add_never_track(self, entries: Iterable[str]) -> Changes:
        return self._never_track.add_never_track(entries)

    def remove_never_track(self, entries: Iterable[str]) -> Changes:
        return self._never_track.remove_never_track(entries)

    def conversation_stopped(self, row_id: int) -> bool:
        return self._never_track.conversation_stopped(row_id)

    def stop_tracking_conversation(self, row_id: int) -> Changes:
        """Later mail of this conversation is not tracked automatically (what is tracked
        stays tracked; Track still works on any of it)."""
        return self._never_track.stop_tracking_conversation(row_id)

    def resume_tracking_conversation(self, row_id: int) -> Changes:
        return self._never_track.resume_tracking_conversation(row_id)

    def replay_mail(self, cancel: threading.Event | None = None) -> Changes:
        """Write the queued mail actions to the mail server (network: the mailbox only)."""
        result = self._replayer.replay_mail(cancel)
        outbox = self.outbox()
        errors = parked_problems(outbox, result.parked)
        if not result.done and not result.parked:
            return Changes(queue=True)  # nothing went out: no view needs to reread
        kinds = {str(op.kind) for op in map(outbox.get, result.done) if op is not None}
        return Changes(
            folders=bool(result.done),
            messages=True,
            errors=tuple(errors),
            queue=True,
            # read and flag marks written: nothing the reading pane shows changed
            flags_only=not result.parked and kinds <= _FLAG_KINDS,
        )

    # --- compose and addresses ------------------------------------------------------------
    def compose_decision(
        self, draft: Draft, message_id: str = "<draft@trackbox.invalid>"
    ) -> Decision:
        """Would this outgoing mail be tracked, and why."""
        return self._compose.compose_decision(draft, message_id)

    def send(self, draft: Draft) -> Changes:
        """Send through the mailbox via the outbox, tracked when the draft or rules say so."""
        return self._compose.send(draft)

    def resolve(self, addresses: Iterable[Address]) -> list[Party]:
        return self._compose.resolve(addresses)

    def unresolved_for(self, row_id: int) -> tuple[Address, ...]:
        """The sender and recipients of a stored message that no CRM record has."""
        return unresolved_for(self.store(), row_id, self.address_book(), self.owner)

    # --- tracking -------------------------------------------------------------------------
    def mark_pending(self, row_ids: Iterable[int]) -> Changes:
        return self._tracking.mark_pending(row_ids)

    def enqueue_track(self, row_ids: Sequence[int], regarding: RecordRef | None = None) -> Changes:
        """Queue "Track in CRM" for each message and show it pending (no network)."""
        return self._tracking.enqueue_track(row_ids, regarding)

    def enqueue_untrack(self, row_ids: Sequence[int]) -> Changes:
        """Queue Untrack for those of ``row_ids`` the CRM has (or is about to have)."""
        return self._tracking.enqueue_untrack(row_ids)

    def enqueue_set_regarding(self, row_ids: Sequence[int], regarding: RecordRef) -> Changes:
        return self._tracking.enqueue_set_regarding(row_ids, regarding)

    def replay_now(self, cancel: threading.Event | None = None) -> ReplayResult:
        """Run the queue (network). Serialised: one replay at a time per workspace."""
        return self._replayer.replay_now(cancel)

    def replay_outbox(self, cancel: threading.Event | None = None) -> Changes:
        return self._replayer.replay_outbox(cancel)

    def track(self, row_ids: Sequence[int], regarding: RecordRef | None = None) -> Changes:
        """Promote each message to an e-mail activity in the CRM (Track in CRM)."""
        return self._tracking.track(row_ids, regarding)

    def untrack(self, row_ids: Sequence[int]) -> Changes:
        """Delete the CRM's copy of each tracked message and mark it not tracked."""
        return self._tracking.untrack(row_ids)

    def set_regarding(self, row_ids: Sequence[int], regarding: RecordRef) -> Changes:
        return self._tracking.set_regarding(row_ids, regarding)

    # --- queue ----------------------------------------------------------------------------
    def queue(self) -> list[QueuedOperation]:
        return self._queue.queue()

    def retry(self, op_id: int) -> Changes:
        return self._queue.retry(op_id)

    def discard(self, op_id: int) -> Changes:
        return self._queue.discard(op_id)

    def queued_count(self) -> int:
        return self._queue.queued_count()

    # --- sync -----------------------------------------------------------------------------
    def sync_cycle(
        self,
        progress: Callable[[SyncProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> SyncReport:
        """One full cycle (``core.sync.cycle``); a call while one runs waits for its report."""
        return self._sync.sync_cycle(progress, cancel)

    def cycle_services(self) -> CycleServices:
        """What a sync cycle works with, from this workspace."""
        return self._sync.cycle_services()

    def start_interval_sync(self) -> SyncScheduler:
        """A running scheduler: a cycle now, then every ``sync_interval_minutes``."""
        return self._sync.start_interval_sync()

    def last_sync(self) -> SyncReport | None:
        return self._sync.last_sync()
