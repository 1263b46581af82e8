"""Running the outbox: the queued CRM operations carried out exactly once
(``core/outbox/queue.py``), the tracked marker set on the mail server after, and going back
online (which replays).

The user's mail actions (read, flag, move, copy, delete: ``core.workspace.mail_actions``) run
in a pass of their own before the CRM's, with the mailbox alone: a CRM that cannot be reached
stops the CRM pass, never them; a mailbox that is away defers them (and only them)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from core.domain.changes import Changes
from core.domain.model import MailRef
from core.mail import MailError, MailUnavailable
from core.outbox.operations import (
    CrmApplier,
    LocalEffects,
    MailActionRunner,
    MailSession,
    ProcessLock,
)
from core.outbox.queue import (
    MAX_TRANSIENT_WAIT_S,
    OpKind,
    ReplayResult,
    crm_operations_only,
    mail_actions_only,
)
from core.sync.problems import parked_problems, queue_sign_in_problem
from core.workspace.connection import ConnectionState, Remotes
from core.workspace.mailbox_reading import MailboxReading
from core.workspace.settings import read_org_settings
from core.workspace.stores import StorePool

log = logging.getLogger(__name__)

#: Markers a replay sets for earlier attempts that did not reach the mail server: enough to
#: catch up after an outage within a few cycles without flooding the server.
MARKERS_PER_REPLAY = 500


class Replayer:
    def __init__(
        self,
        stores: StorePool,
        remotes: Remotes,
        connection: ConnectionState,
        reading: MailboxReading,
    ) -> None:
        self._stores = stores
        self._remotes = remotes
        self._connection = connection
        self._reading = reading
        self._lock = threading.Lock()
        #: Placeholder uids of moved/copied rows → the refs the server gave (see
        #: ``MailActionRunner``), kept across replays.
        self._resolved: dict[str, MailRef] = {}

    def set_work_offline(self, offline: bool) -> None:
        """Work offline (nothing touches the network) or go back online, replaying the queue."""
        self._connection.set_work_offline(offline)
        if not offline:
            self.replay_outbox()

    def replay_now(
        self, cancel: threading.Event | None = None, *, interactive: bool = False
    ) -> ReplayResult:
        """Run the queue (network). Serialised: one replay at a time per workspace.
        ``interactive``: the user waits for it (Track now, Retry): operations a failed
        request deferred are left to the next sync instead of retried after a pause."""
        if self._connection.work_offline:
            return ReplayResult(stopped="offline")
        mail = self.replay_mail(cancel)
        if mail.stopped in ("cancelled", "auth"):
            return mail
        store = self._stores.store()
        effects = LocalEffects(store, read_org_settings(store))
        session = MailSession(self._remotes.open_mailbox)
        applier = CrmApplier(
            self._remotes.crm,
            body_source=lambda p: self._reading.body_for(p, session),
            send=session.send,
        )
        other_process = ProcessLock(Path(self._stores.path).with_name("outbox.lock"))
        with self._lock:
            if not other_process.acquire():
                log.info("outbox replay skipped: another process on this profile replays")
                return ReplayResult()
            try:
                result = self._stores.outbox().replay(
                    applier,
                    effects.commit,
                    on_parked=effects.parked,
                    cancel=cancel,
                    max_transient_wait=0.0 if interactive else MAX_TRANSIENT_WAIT_S,
                    kinds=crm_operations_only,
                )
            finally:
                other_process.release()
                session.close()
        result.mail_offline = result.mail_offline or mail.mail_offline
        result.parked[:0] = mail.parked
        if result.stopped == "offline":
            self._connection.note_reachable(False)
            return result
        if result.done:
            self._connection.note_reachable(True)
        if not result.mail_offline:
            self._mark_on_server(result.done)
        return result

    def replay_mail(self, cancel: threading.Event | None = None) -> ReplayResult:
        """The mail actions' pass: the queued read/flag/move/copy/delete written to the mail
        server, with no CRM (network: the mailbox). Offline by choice: nothing."""
        if self._connection.work_offline:
            return ReplayResult(stopped="offline")
        store = self._stores.store()
        session = MailSession(self._remotes.open_mailbox)
        runner = MailActionRunner(session, store, self._resolved)
        other_process = ProcessLock(Path(self._stores.path).with_name("outbox.lock"))
        with self._lock:
            if not other_process.acquire():
                return ReplayResult()
            try:
                return self._stores.outbox().replay(
                    runner,
                    runner.commit,
                    on_parked=runner.parked,
                    cancel=cancel,
                    max_transient_wait=0.0,
                    kinds=mail_actions_only,
                )
            finally:
                other_process.release()
                session.close()

    def _mark_on_server(self, done: Sequence[int]) -> None:
        """Best effort: the tracked marker (IMAP keyword, EWS/Graph category) on the mail
        server, so that other devices see it: for what this replay did, then for what earlier
        attempts left undone (the mailbox was away), at most :data:`MARKERS_PER_REPLAY`. The
        CRM, not the marker, is the truth; the next mail sync reads the markers back."""
        marks: dict[MailRef, str | None] = {}
        store = self._stores.store()
        for op_id in done:
            op = self._stores.outbox().get(op_id)
            if op is None or op.kind not in (OpKind.PROMOTE, OpKind.UNTRACK) or not op.message_id:
                continue
            activity = op.result.activity_id if op.result and op.kind is OpKind.PROMOTE else None
            for row in store.messages_by_message_id(op.message_id):
                marks[row.header.ref] = activity
        for ref, activity in store.tracking.markers_due(MARKERS_PER_REPLAY, OpKind.UNTRACK.value):
            marks.setdefault(ref, activity)
        if not marks:
            return
        try:
            with self._remotes.open_mailbox() as backend:
                set_many = getattr(backend, "set_tracked_many", None)
                if set_many is not None:  # Graph: 20 to a $batch
                    set_many(list(marks.items()))
                    return
                for ref, activity in marks.items():
                    try:
                        backend.set_tracked(ref, activity)
                    except MailUnavailable:
                        raise
                    except MailError as exc:  # this message (gone, read-only): the others go on
                        log.info("tracked marker not set on one message: %s", type(exc).__name__)
        except Exception as exc:  # best effort: never lose a replay's result over a marker
            log.info("tracked marker not set on the mail server: %s", type(exc).__name__)

    def replay_outbox(self, cancel: threading.Event | None = None) -> Changes:
        result = self.replay_now(cancel, interactive=True)
        store = self._stores.store()
        errors = parked_problems(self._stores.outbox(), result.parked)
        if result.stopped == "auth":
            errors.append(queue_sign_in_problem(result))
        rows: set[int] = set()
        for op_id in (*result.done, *result.parked):
            op = self._stores.outbox().get(op_id)
            if op is not None and op.message_id:
                rows.update(r.id for r in store.messages_by_message_id(op.message_id))
        return Changes(messages=True, row_ids=frozenset(rows), errors=tuple(errors), queue=True)
