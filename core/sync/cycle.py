"""One synchronisation cycle (issue 6), in the order the CRM for Outlook used:

settings snapshot → address-book deltas → mailbox sync of the chosen folders → automatic
tracking decisions → Pending Send → outbox replay → refresh of the tracked state.

Decide, then apply (after vdirsyncer's ``sync()``): the decision steps read the store and
produce outbox operations; only the outbox talks to the CRM to change it. A step that finds
the CRM or the mail server away marks that side offline and the steps that need it are
skipped — offline is a state of the report, never an exception.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.correlation import Correlator
from core.crm import CrmAuthError, CrmError, CrmUnavailable
from core.mail import MailAuthError, MailError, MailUnavailable, SyncBatch
from core.model import MessageHeader, Reason, TrackState
from core.options import folder_selected
from core.outbox import OpKind, Outbox
from core.pending_send import fetch_pending, message_id_for, mime_for, orphans
from core.settings import OrgSettings, SettingsError, UserOptions
from core.store import SqliteCorrelationIndex
from core.sync.mailbox import sync_folder
from core.sync.operations import enqueue_new_records, promote_payload, send_payload
from core.sync.plan import plan_refresh
from core.sync.report import Changes, SyncProgress, SyncReport
from core.tracking import decide

if TYPE_CHECKING:
    from core.workspace import Workspace

log = logging.getLogger(__name__)

REFRESH_BATCH = 50
REFRESH_DAYS = 30


class Cancelled(Exception):
    pass


class SyncCycle:
    """Runs once; see the module docstring. Build a new one per cycle."""

    def __init__(self, ws: Workspace, progress: Callable[[SyncProgress], None] | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.ws = ws
        self.store = ws.store()
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.crm_online = not ws.work_offline
        self.mail_online = not ws.work_offline
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.changes = Changes()
        self.new_headers: list[MessageHeader] = []

    # -- driver ---------------------------------------------------------------------------

    def run(self) -> SyncReport:
        started = datetime.now(UTC)
        cancelled = False
        steps: list[tuple[str, Callable[[], None], bool, bool]] = [
            ("settings", self.settings, True, False),
            ("address books", self.address_books, True, False),
            ("mail", self.mail, False, True),
            ("decisions", self.decisions, False, False),
            ("pending send", self.pending_send, True, True),
            ("outbox", self.replay, True, False),
            ("tracked state", self.refresh, True, False),
        ]
        try:
            for name, step, needs_crm, needs_mail in steps:
                if self.cancel.is_set():
                    raise Cancelled
                if (needs_crm and not self.crm_online) or (needs_mail and not self.mail_online):
                    log.info("sync step=%s skipped (offline)", name.replace(" ", "_"))
                    continue
                self._progress(name)
                try:
                    step()
                except (Cancelled, KeyboardInterrupt):
                    raise
                except Exception as exc:  # a bug or bad data in one step: the rest still runs
                    log.exception("sync step=%s failed", name.replace(" ", "_"))
                    self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        except Cancelled:
            cancelled = True
            log.info("sync cancelled")
        finished = datetime.now(UTC)
        report = SyncReport(
            ok=not self.errors and not cancelled and self.crm_online and self.mail_online,
            online=self.crm_online, mail_online=self.mail_online, started=started,
            finished=finished, changes=self.changes, errors=tuple(self.errors),
            cancelled=cancelled, counts=dict(self.counts))
        log.info("sync done ok=%s crm_online=%s mail_online=%s seconds=%.2f counts=%s",
                 report.ok, report.online, report.mail_online,
                 (finished - started).total_seconds(),
                 " ".join(f"{k}={v}" for k, v in sorted(self.counts.items())))
        return report

    def _progress(self, step: str, done: int = 0, total: int | None = None) -> None:
        if self.progress is not None:
            self.progress(SyncProgress(step, done, total))

    def _crm_failed(self, exc: CrmError, what: str) -> None:
        if isinstance(exc, CrmUnavailable):
            self.crm_online = False
            log.info("sync crm offline during %s: %s", what, type(exc).__name__)
            if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate" in exc.message.lower():
                # Not "away": the user must act (wrong URL, interception, missing CA).
                self.errors.append(f"The CRM's TLS certificate is not trusted ({what}): "
                                   f"{exc.message}")
        elif isinstance(exc, CrmAuthError):
            self.crm_online = False
            self.errors.append(f"The CRM refused the user name or password ({what}).")
        else:
            self.errors.append(f"{what}: {exc}")
        self.ws.note_reachable(self.crm_online)

    # -- steps ----------------------------------------------------------------------------

    def settings(self) -> None:
        crm = self.ws.crm
        try:
            me = crm.who_am_i()
            self.store.save_settings("whoami", {"UserId": me.user_id,
                                                "BusinessUnitId": me.business_unit_id,
                                                "OrganizationId": me.organization_id})
            org = next(iter(crm.query("organizations", top=1)), None)
            if org is not None:
                self.store.save_settings("organization", org)
            user = crm.get("usersettingscollection", me.user_id)
            self.store.save_settings("usersettings", user)
        except CrmError as exc:
            self._crm_failed(exc, "reading the CRM settings")
            return
        self.ws.note_reachable(True)
        try:  # the workspace falls back to the defaults; the user hears why here
            OrgSettings.from_crm(org or {})
            UserOptions.from_crm(user)
        except SettingsError as exc:
            self.errors.append(f"CRM settings: {exc}; the defaults are used")
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
                self.errors.append(f"address book {result.entity}: {result.error}")
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
            self.store.upsert_folders(folders)
            chosen = [f for f in folders
                      if folder_selected(f.path, opts.folders_to_sync, opts.include_subfolders)]
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
                stored += sync_folder(self.store, backend, folder.path, on_batch=stored_batch)
        except MailError as exc:
            self._mail_failed(exc)
        finally:
            backend.close()
        self.counts["headers"] = stored
        self.counts["new_messages"] = len(self.new_headers)
        self.changes = self.changes.merge(Changes(folders=True, messages=True))

    def _mail_failed(self, exc: MailError) -> None:
        self.mail_online = False
        if isinstance(exc, MailAuthError):
            self.errors.append(f"The mail server refused the user name or password: {exc}")
        elif not isinstance(exc, MailUnavailable):
            self.errors.append(f"mail: {exc}")
        log.info("sync mail offline: %s", type(exc).__name__)

    def decisions(self) -> None:
        """Automatic tracking of new mail: every decision goes to the audit log with its
        reason; decisions to track become outbox operations (nothing is sent from here)."""
        if not self.new_headers:
            return
        org, opts = self.ws.org_settings(), self.ws.user_options()
        resolver = self.ws.address_book(self.store)
        correlator = Correlator(org, SqliteCorrelationIndex(self.store))
        outbox = Outbox(self.store)
        tracked = 0
        for header in self.new_headers:
            if self.store.track_state_of(header.message_id) is not TrackState.NOT_TRACKED:
                continue
            if outbox.pending_for(header.message_id):
                continue
            try:
                decision = decide(header, opts, org, resolver, correlator)
            except Exception as exc:  # one unreadable message never stops the others
                log.exception("sync decision failed message=%s", header.message_id)
                self.errors.append(f"tracking decision for {header.message_id}: {exc}")
                continue
            with self.store.transaction():
                self.store.record_decision(header.message_id, decision, source="auto")
                if decision.track:
                    enqueue_new_records(outbox, header, opts.auto_create, resolver)
                    outbox.enqueue(OpKind.PROMOTE, promote_payload(
                        header, regarding=decision.regarding, reason=decision.reason,
                        source="auto", attachments=not decision.attachments_dropped,
                        attachment_limit=org.max_upload_bytes,
                        needs_review=decision.needs_review),
                        key=header.message_id, message_id=header.message_id)
                    self.store.set_track_state(header.message_id, TrackState.PENDING,
                                               regarding=decision.regarding,
                                               reason=decision.reason)
                    tracked += 1
                else:
                    self.store.set_track_state(header.message_id, TrackState.NOT_TRACKED,
                                               reason=decision.reason)
        self.counts["decisions"] = len(self.new_headers)
        self.counts["auto_tracked"] = tracked
        log.info("sync decisions=%d auto_tracked=%d", len(self.new_headers), tracked)

    def pending_send(self) -> None:
        outbox = Outbox(self.store)
        sender = self.ws.owner
        try:
            mails = fetch_pending(self.ws.crm)
            known = {key.removeprefix("send:") for key in outbox.keys_of(OpKind.SEND_PENDING)}
            user_id = self.ws.user_id()
            if user_id:
                mails += orphans(self.ws.crm, user_id, known)
        except CrmError as exc:
            self._crm_failed(exc, "fetching Pending Send mail")
            return
        for mail in mails:
            mid = message_id_for(mail, sender)
            with self.store.transaction():
                outbox.enqueue(OpKind.SEND_PENDING, send_payload(
                    mail.activity_id, mid, mime_for(mail, sender, mid), mail.subject),
                    key=f"send:{mail.activity_id}", message_id=mid)
                self.store.set_track_state(mid, TrackState.PENDING, activity_id=mail.activity_id,
                                           reason=Reason("pending-send", "Waiting to be sent"))
        self.counts["pending_send"] = len(mails)

    def replay(self) -> None:
        last = self.ws.last_sync()
        if last is not None and not last.mail_online and self.mail_online:
            Outbox(self.store).reset_backoff()  # the mail server is back: sends are due now
        result = self.ws.replay_now(self.cancel)
        self.counts["outbox_done"] = len(result.done)
        self.counts["outbox_parked"] = len(result.parked)
        if result.mail_offline:
            self.mail_online = False
        if result.stopped == "offline":
            self.crm_online = False
            self.ws.note_reachable(False)
        elif result.stopped == "auth":
            self.crm_online = False
            self.errors.append("The CRM refused the user name or password (outbox).")
        elif result.stopped == "cancelled":
            raise Cancelled
        if result.done or result.parked:
            self.changes = self.changes.merge(Changes(messages=True, queue=True))

    def refresh(self) -> None:
        """Which stored messages the CRM has (anyone's), by Message-ID in batches."""
        # Untracked mail is checked while recent (someone else may track it); tracked mail
        # always (someone may untrack it). Checking a 100,000-message mailbox every cycle
        # would cost 2,000 requests for nothing.
        since = time.time() - REFRESH_DAYS * 86400
        rows = self.store.conn.execute(
            "SELECT m.message_id, coalesce(t.track_state, 'not_tracked'), t.activity_id"
            " FROM (SELECT message_id, max(date_ts) AS d FROM messages GROUP BY message_id)"
            " AS m LEFT JOIN tracking AS t USING (message_id)"
            " WHERE (m.d IS NULL OR m.d >= ? OR t.track_state IN ('tracked',"
            " 'tracked_by_other')) AND m.message_id NOT IN (SELECT message_id FROM outbox"
            " WHERE state IN ('queued', 'parked') AND message_id IS NOT NULL)",
            (since,)).fetchall()
        local: dict[str, tuple[TrackState, str | None]] = {
            mid: (TrackState(state), act) for mid, state, act in rows
            if state in ("not_tracked", "tracked", "tracked_by_other")}
        ids = list(local)
        found: dict[str, Any] = {}
        try:
            for start in range(0, len(ids), REFRESH_BATCH * 10):
                if self.cancel.is_set():
                    raise Cancelled
                self._progress("tracked state", start, len(ids))
                found.update(self.ws.crm.find_emails_by_message_id(
                    ids[start:start + REFRESH_BATCH * 10], batch_size=REFRESH_BATCH))
        except CrmError as exc:
            self._crm_failed(exc, "refreshing the tracked state")
            return
        changes = plan_refresh(local, found, self.ws.user_id())
        correlator = Correlator(self.ws.org_settings(), SqliteCorrelationIndex(self.store))
        with self.store.transaction():
            for change in changes:
                self.store.set_track_state(change.message_id, change.state,
                                           activity_id=change.activity_id,
                                           regarding=change.regarding, reason=change.reason)
                if change.forget:
                    correlator.index.remove(change.forget)
                if change.remember and change.activity_id:
                    copies = self.store.messages_by_message_id(change.message_id)
                    if copies:
                        correlator.track(copies[0].header, change.activity_id,
                                         change.regarding)
        changed = len(changes)
        self.counts["tracked_state_checked"] = len(ids)
        self.counts["tracked_state_changed"] = changed
        if changed:
            self.changes = self.changes.merge(Changes(messages=True))
