"""One synchronisation cycle (issue 6), in the order the CRM for Outlook used:

settings snapshot → address-book deltas → mailbox sync of the chosen folders → tracked state
from the CRM's change tracking (so that decisions see the CRM's truth) → automatic tracking
decisions (asking the CRM what the local index cannot answer) → Pending Send → outbox replay.

Decide, then apply (after vdirsyncer's ``sync()``): the decision steps read the store and
produce outbox operations — the tracking decisions as a pure plan that is then applied
(``core/sync/decisions.py``); only the outbox talks to the CRM to change it. A step that finds
the CRM or the mail server away marks that side offline and the steps that need it are
skipped — offline is a state of the report, never an exception.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from core.config.local_options import LocalOptions, folder_selected
from core.crm import (
    CrmAuthError,
    CrmCertificateError,
    CrmClient,
    CrmError,
    CrmRequestFailed,
    CrmUnavailable,
)
from core.crm.throttle import CrmThrottled
from core.domain.changes import Changes
from core.domain.correlation import Correlator
from core.domain.crm_settings import OrgSettings, SettingsError, UserOptions
from core.domain.mailbox_delivery import OUTGOING_BY_SERVER_TEXT
from core.domain.model import Address, MessageHeader, Reason, TrackState
from core.domain.problems import Problem, SyncProblem
from core.mail import MailBackend, MailError, MailUnavailable, SyncBatch
from core.outbox.kinds import OpKind
from core.outbox.queue import Outbox, ReplayResult
from core.store import SqliteCorrelationIndex, Store
from core.sync.address_books import AddressBook
from core.sync.crm_lookup import Questions, ask_crm
from core.sync.decisions import (
    OPEN_STATES,
    DecisionPlan,
    DecisionRules,
    apply_decisions,
    lookups_needed,
    plan_decisions,
    select_candidates,
    waiting_for_crm,
)
from core.sync.delivery import (
    read_own_mailbox,
    save_own_mailbox,
    sent_by_server,
    tracked_by_server,
)
from core.sync.mailbox import sync_folder
from core.sync.pending_send import PendingMail, fetch_pending, orphans, send_operation
from core.sync.problems import (
    deadline_problem,
    parked_problems,
    problem_of,
    queue_sign_in_problem,
)
from core.sync.report import SyncProgress, SyncReport
from core.sync.tracked_state import TrackedStateRefresh

log = logging.getLogger(__name__)

#: Undecided mail taken up per cycle (more waits for the next one).
MAX_UNDECIDED = 5000

#: Seconds a cycle may run (issue 18, item 10): far above a normal cycle (seconds; a first
#: sync of a large mailbox a few minutes), so that only a stuck cycle meets it. What is left
#: resumes on the next cycle (saved delta links, folder states, the queue).
DEFAULT_CYCLE_DEADLINE = 600.0


class Cancelled(Exception):
    pass


@dataclass(frozen=True, slots=True)
class CycleServices:
    """What a cycle works with, named: the workspace builds one per cycle
    (``Workspace.cycle_services``), tests can build their own."""

    store: Store
    crm: CrmClient
    owner: Address
    work_offline: bool
    open_mailbox: Callable[[], MailBackend]
    org_settings: Callable[[], OrgSettings]
    user_options: Callable[[], UserOptions]
    local_options: Callable[[], LocalOptions]
    address_book: Callable[[Store], AddressBook]
    user_id: Callable[[], str | None]
    last_sync: Callable[[], SyncReport | None]
    replay_now: Callable[[threading.Event], ReplayResult]
    note_reachable: Callable[[bool], None]


class SyncCycle:
    """Runs once; see the module docstring. Build a new one per cycle."""

    def __init__(
        self,
        ws: CycleServices,
        progress: Callable[[SyncProgress], None] | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> None:
        """``deadline``: seconds the cycle may run (:data:`DEFAULT_CYCLE_DEADLINE` when
        None); when they pass, the cycle stops at its next check, as if cancelled, and
        reports it as a problem (the ``cancel`` event, one per cycle, is set)."""
        self.ws = ws
        self.deadline = DEFAULT_CYCLE_DEADLINE if deadline is None else deadline
        self.timed_out = False
        self._step = ""
        self.store = ws.store
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.crm_online = not ws.work_offline
        self.mail_online = not ws.work_offline
        self.errors: list[SyncProblem] = []
        self.counts: dict[str, int] = {}
        self.changes = Changes()
        self.new_headers: list[MessageHeader] = []

    # -- driver ---------------------------------------------------------------------------

    def run(self) -> SyncReport:
        started = datetime.now(UTC)
        timer = threading.Timer(self.deadline, self._time_out)
        timer.daemon = True
        timer.start()
        try:
            cancelled = self._run_steps()
        finally:
            timer.cancel()
        if self.timed_out and cancelled:
            cancelled = False  # not the user's doing: a problem of the cycle
            self.errors.append(deadline_problem(self.deadline, self._step))
        finished = datetime.now(UTC)
        report = SyncReport(
            ok=not self.errors and not cancelled and self.crm_online and self.mail_online,
            online=self.crm_online,
            mail_online=self.mail_online,
            started=started,
            finished=finished,
            changes=self.changes,
            errors=tuple(self.errors),
            cancelled=cancelled,
            counts=dict(self.counts),
        )
        log.info(
            "sync done ok=%s crm_online=%s mail_online=%s seconds=%.2f counts=%s",
            report.ok,
            report.online,
            report.mail_online,
            (finished - started).total_seconds(),
            " ".join(f"{k}={v}" for k, v in sorted(self.counts.items())),
        )
        return report

    def _run_steps(self) -> bool:
        """Run the steps in order; whether the cycle was cancelled (or ran out of time)."""
        steps: list[tuple[str, Callable[[], None], bool, bool]] = [
            ("settings", self.settings, True, False),
            ("address books", self.address_books, True, False),
            ("mail", self.mail, False, True),
            ("tracked state", self.refresh, True, False),
            ("decisions", self.decisions, False, False),
            ("pending send", self.pending_send, True, True),
            ("outbox", self.replay, True, False),
        ]
        try:
            for name, step, needs_crm, needs_mail in steps:
                if self.cancel.is_set():
                    raise Cancelled
                if (needs_crm and not self.crm_online) or (needs_mail and not self.mail_online):
                    log.info("sync step=%s skipped (offline)", name.replace(" ", "_"))
                    continue
                self._step = name
                self._progress(name)
                try:
                    step()
                except (Cancelled, KeyboardInterrupt):
                    raise
                except Exception as exc:  # a bug or bad data in one step: the rest still runs
                    log.exception("sync step=%s failed", name.replace(" ", "_"))
                    self.errors.append(problem_of(exc, name))
        except Cancelled:
            log.info("sync %s", "out of time" if self.timed_out else "cancelled")
            return True
        return False

    def _time_out(self) -> None:
        """The cycle's deadline passed (a timer thread): stop at the next check. A request
        in flight ends by its own deadline (``core.crm.deadline``)."""
        self.timed_out = True
        log.warning("sync deadline of %.0fs passed during step=%s", self.deadline, self._step)
        self.cancel.set()

    def _progress(self, step: str, done: int = 0, total: int | None = None) -> None:
        if self.progress is not None:
            self.progress(SyncProgress(step, done, total))

    def _crm_failed(self, exc: CrmError, what: str) -> None:
        if isinstance(exc, CrmRequestFailed) and exc.status is not None:
            # The CRM answered, with a server error (after the client's retries): a problem
            # of this step; the CRM is not "offline" and the other steps still run.
            self.errors.append(problem_of(exc, what))
            log.info("sync crm step %s failed: HTTP %s", what, exc.status)
        elif isinstance(exc, CrmUnavailable):
            self.crm_online = False
            log.info("sync crm offline during %s: %s", what, type(exc).__name__)
            if isinstance(exc, CrmCertificateError):
                # Not "away": the user must act (wrong URL, interception, missing CA).
                self.errors.append(problem_of(exc, what))
        else:
            if isinstance(exc, CrmAuthError):
                self.crm_online = False
            self.errors.append(problem_of(exc, what))
        self.ws.note_reachable(self.crm_online)

    # -- steps ----------------------------------------------------------------------------

    def settings(self) -> None:
        crm = self.ws.crm
        try:
            me = crm.who_am_i()
            self.store.snapshots.save(
                "whoami",
                {
                    "UserId": me.user_id,
                    "BusinessUnitId": me.business_unit_id,
                    "OrganizationId": me.organization_id,
                },
            )
            org = next(iter(crm.query("organizations", top=1)), None)
            if org is not None:
                self.store.snapshots.save("organization", org)
            user = crm.get("usersettingscollection", me.user_id)
            self.store.snapshots.save("usersettings", user)
            # who tracks and sends this user's mail: the desktop or the organisation's router
            save_own_mailbox(self.store, read_own_mailbox(crm, me.user_id))
        except CrmError as exc:
            self._crm_failed(exc, "reading the CRM settings")
            return
        self.ws.note_reachable(True)
        # The CRM answers: what was held back only by its absence runs in this cycle's replay,
        # whichever process (or earlier cycle) saw it go away.
        Outbox(self.store).replay_offline_now()
        try:  # the workspace falls back to the defaults; the user hears why here
            OrgSettings.from_crm(org or {})
            UserOptions.from_crm(user)
        except SettingsError as exc:
            self.errors.append(problem_of(exc, "reading the CRM settings"))
        self.changes = self.changes.merge(Changes(settings=True))

    def address_books(self) -> None:
        book = self.ws.address_book(self.store)
        try:
            results = book.sync(self.ws.crm, progress=lambda *a: self._progress("address books"))
        except CrmError as exc:
            self._crm_failed(exc, "synchronising the address books")
            return
        for result in results:
            if result.error is not None:
                self.errors.append(problem_of(result.error, f"address book {result.entity}"))
        self.counts["address_book_records"] = book.count()

    def mail(self) -> None:
        opts = self.ws.local_options()
        try:
            backend = self.ws.open_mailbox()
        except MailError as exc:
            self._mail_failed(exc)
            return
        stored = 0
        try:
            folders = backend.folders()
            self._extra_mailbox_failures(backend)
            self.store.upsert_folders(folders)
            chosen = [
                f
                for f in folders
                if folder_selected(f.path, opts.folders_to_sync, opts.include_subfolders)
            ]
            for n, folder in enumerate(chosen):
                self._progress(f"mail: {folder.path}", n, len(chosen))
                # first sync of a folder: old mail is not tracked automatically
                baseline = self.store.folder_sync_state(folder.path) is None

                def stored_batch(batch: SyncBatch, baseline: bool = baseline) -> None:
                    if not baseline and not batch.reset:
                        self.new_headers.extend(batch.added)
                    if self.cancel.is_set():
                        raise Cancelled

                if self.cancel.is_set():
                    raise Cancelled
                try:
                    stored += sync_folder(self.store, backend, folder.path, on_batch=stored_batch)
                except MailError as exc:
                    shared = _extra_mailbox(backend, folder.path)
                    if shared is None:
                        raise
                    # A shared mailbox (lost grant, away) fails only its own folders.
                    self._extra_mailbox_failed(shared, exc)
        except MailError as exc:
            self._mail_failed(exc)
        finally:
            backend.close()
        self.counts["headers"] = stored
        self.counts["new_messages"] = len(self.new_headers)
        self.changes = self.changes.merge(Changes(folders=True, messages=True))

    def _extra_mailbox_failures(self, backend: MailBackend) -> None:
        """The extra (shared) mailboxes the backend could not list: each a problem of its
        own; the user's mailbox is still online."""
        for address, exc in getattr(backend, "failures", {}).items():
            self._extra_mailbox_failed(address, exc)

    def _extra_mailbox_failed(self, address: str, exc: MailError) -> None:
        if any(p.what == f"the shared mailbox {address}" for p in self.errors):
            return
        # Not a sign-in problem of the user's own (a lost grant answers 403): its own kind.
        self.errors.append(
            SyncProblem(Problem.MAIL_FAILED, f"the shared mailbox {address}", str(exc))
        )
        log.info("sync shared mailbox %s failed: %s", address, type(exc).__name__)

    def _mail_failed(self, exc: MailError) -> None:
        self.mail_online = False
        if not isinstance(exc, MailUnavailable):
            self.errors.append(problem_of(exc, "synchronising the mailbox"))
        log.info("sync mail offline: %s", type(exc).__name__)

    def decisions(self) -> None:
        """Automatic tracking of new mail (and of mail left undecided while the CRM was away):
        every decision goes to the audit log with its reason; decisions to track become
        outbox operations (nothing is sent from here). What the local index cannot answer is
        asked of the CRM first; offline, such mail stays undecided until a cycle reaches it.

        Decide, then apply: this step gathers the inputs and asks the CRM, the pure
        ``plan_decisions`` decides, ``apply_decisions`` writes (``core.sync.decisions``)."""
        candidates, states = self._undecided_and_new()
        if not candidates:
            return
        org = self.ws.org_settings()
        local = self.ws.local_options()
        rules = DecisionRules(
            self.ws.user_options(),
            org,
            self.ws.address_book(self.store),
            Correlator(org, SqliteCorrelationIndex(self.store)),
            never_track=local.never_track_list(),  # the user's own exclusions win
            stopped=local.stopped(),
            tracked_by_server=tracked_by_server(self.store),
        )
        waiting = self._ask_crm(lookups_needed(candidates, rules), rules.correlator)
        plan = plan_decisions(candidates, states, waiting, rules)
        self._decision_failures(plan)
        apply_decisions(self.store, Outbox(self.store), plan)
        self._count_decisions(plan)

    def _ask_crm(self, lookups: Mapping[str, Questions], correlator: Correlator) -> set[str]:
        """Ask the CRM what the local index cannot answer (its answers join the index). The
        messages still waiting for it: none once it answered, all when it is away."""
        waiting = waiting_for_crm(lookups)
        if not waiting or not self.crm_online:
            return waiting
        asked = Questions()
        for mid in waiting:
            asked.add(lookups[mid])
        try:
            found = ask_crm(self.ws.crm, correlator, asked)
        except CrmError as exc:
            self._crm_failed(exc, "asking the CRM about replies to tracked mail")
            return waiting
        self.counts["crm_lookups_found"] = len(found)
        return set()

    def _decision_failures(self, plan: DecisionPlan) -> None:
        """The messages the plan could not decide on, logged and reported."""
        for failure in plan.failures:
            log.error("sync decision failed message=%s", failure.message_id, exc_info=failure.error)
            self.errors.append(problem_of(failure.error, f"deciding on {failure.message_id}"))

    def _count_decisions(self, plan: DecisionPlan) -> None:
        """The counts and the change notice of an applied plan."""
        tracked, undecided = len(plan.promotions), len(plan.undecided)
        self.counts["decisions"] = plan.decided
        self.counts["auto_tracked"] = tracked
        self.counts["undecided"] = undecided
        if undecided or len(plan.actions) > len(self.new_headers):
            self.changes = self.changes.merge(Changes(messages=True))
        log.info("sync decisions=%d auto_tracked=%d undecided=%d", plan.decided, tracked, undecided)

    def _undecided_and_new(self) -> tuple[list[MessageHeader], dict[str, TrackState]]:
        """Mail left undecided by an earlier cycle, then this cycle's new mail that nothing
        has decided or queued yet (``select_candidates``), and the local state of each."""
        outbox = Outbox(self.store)
        left = [
            row.header
            for row in self.store.tracking.messages_in_state(TrackState.UNDECIDED, 0, MAX_UNDECIDED)
        ]
        states: dict[str, TrackState] = {}
        queued: set[str] = set()
        for header in [*left, *self.new_headers]:
            mid = header.message_id
            if mid in states:
                continue
            states[mid] = self.store.tracking.state_of(mid)
            if states[mid] in OPEN_STATES and outbox.pending_for(mid):
                queued.add(mid)
        return select_candidates(left, self.new_headers, states, queued), states

    def pending_send(self) -> None:
        if sent_by_server(self.store):
            # the organisation's router sends this user's CRM e-mail: taking it here would
            # send it twice (issue 19)
            log.info("sync pending send skipped: %s", OUTGOING_BY_SERVER_TEXT)
            self.counts["pending_send_by_server"] = 1
            return
        outbox = Outbox(self.store)
        sender = self.ws.owner
        try:
            mails = self._fetch_pending()
            known = {key.removeprefix("send:") for key in outbox.keys_of(OpKind.SEND_PENDING)}
            user_id = self.ws.user_id()
            if user_id:
                mails += orphans(self.ws.crm, user_id, known)
        except CrmError as exc:
            self._crm_failed(exc, "fetching Pending Send mail")
            return
        for mail in mails:
            send = send_operation(mail, sender)
            with self.store.transaction():
                outbox.enqueue(send)
                self.store.tracking.set_state(
                    send.message_id,
                    TrackState.PENDING,
                    activity_id=mail.activity_id,
                    reason=Reason("pending-send", "Waiting to be sent"),
                )
        self.counts["pending_send"] = len(mails)

    def _fetch_pending(self) -> list[PendingMail]:
        """``BackgroundSendEmail``, asked once more when the CRM asked to slow down: a 429
        means it handed nothing out, and the throttle's gate waits out its Retry-After."""
        try:
            return fetch_pending(self.ws.crm)
        except CrmThrottled:
            log.info("sync pending send throttled; asking once more after the wait")
            return fetch_pending(self.ws.crm)

    def replay(self) -> None:
        last = self.ws.last_sync()
        if last is not None and not last.mail_online and self.mail_online:
            Outbox(self.store).reset_backoff()  # the mail server is back: sends are due now
        result = self.ws.replay_now(self.cancel)
        self.counts["outbox_done"] = len(result.done)
        self.counts["outbox_parked"] = len(result.parked)
        self.errors.extend(parked_problems(Outbox(self.store), result.parked))
        if result.mail_offline:
            self.mail_online = False
        if result.stopped == "offline":
            self.crm_online = False
            self.ws.note_reachable(False)
        elif result.stopped == "auth":
            self.crm_online = False
            self.errors.append(queue_sign_in_problem(result))
        elif result.stopped == "cancelled":
            raise Cancelled
        if result.done or result.parked:
            self.changes = self.changes.merge(Changes(messages=True, queue=True))

    def refresh(self) -> None:
        """The tracked state of stored mail from the CRM: a full pull the first time, then
        the CRM's change-tracking delta (see ``core.sync.tracked_state``)."""
        correlator = Correlator(self.ws.org_settings(), SqliteCorrelationIndex(self.store))
        refresh = TrackedStateRefresh(
            self.store,
            self.ws.crm,
            correlator,
            self.ws.user_id(),
            cancel=self.cancel,
            progress=lambda n: self._progress("tracked state", n),
        )
        try:
            result = refresh.run()
        except CrmError as exc:
            self._crm_failed(exc, "refreshing the tracked state")
            return
        self.counts["tracked_state_full"] = int(result.full)
        self.counts["tracked_state_emails"] = result.emails
        self.counts["tracked_state_changed"] = len(result.changes)
        if result.changes:
            self.changes = self.changes.merge(Changes(messages=True))
        if result.cancelled:
            raise Cancelled


def _extra_mailbox(backend: MailBackend, path: str) -> str | None:
    """The extra (shared) mailbox ``path`` is in, when the backend has such (MultiMailbox)."""
    mailbox_of = getattr(backend, "mailbox_of", None)
    return mailbox_of(path) if mailbox_of is not None else None
