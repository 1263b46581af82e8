"""What each outbox operation does: its CRM side (``CrmApplier``, idempotent, may run twice)
and its local side (``LocalEffects``, run once, in the transaction that marks it done). Both
dispatch on the operation's type (``core.outbox.kinds``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from core.crm import Attachment, CrmClient, CrmPermanentError, EmailInfo
from core.crm import connections as crm_links
from core.domain.correlation import Correlator
from core.domain.crm_settings import AutoCreate, OrgSettings
from core.domain.entities import CrmEntityError, entity, regarding_target
from core.domain.model import MailRef, MessageHeader, Reason, RecordRef, TrackState
from core.domain.resolution import Resolver, plan_new_records
from core.mail import (
    MailAuthError,
    MailBackend,
    MailError,
    MailNotFound,
    MailUnavailable,
    parse_message,
)
from core.mail.base import FLAGGED_KEYWORD
from core.outbox.kinds import (
    AddConnection,
    CopyMail,
    CreateRecord,
    DeleteMail,
    FlagMail,
    MailAction,
    MarkRead,
    MoveMail,
    OpKind,
    Promote,
    RemoveConnection,
    SendPending,
    SetRegarding,
    Unreadable,
    Untrack,
    UpdateUserSettings,
    record_label,
)
from core.outbox.queue import (
    Checkpoint,
    Operation,
    PermanentFailure,
    Progress,
    TransientFailure,
)
from core.outbox.results import Failure, OpResult
from core.private_files import private_file
from core.store import SqliteCorrelationIndex, Store
from core.store.connections import ConnectionRows

log = logging.getLogger(__name__)

EMAILS = entity("email").entity_set
#: statuscode → the statecode it belongs to (email), to keep the state while PATCHing.
_STATE_OF_STATUS = {1: 0, 8: 0, 2: 1, 3: 1, 4: 1, 6: 1, 7: 1, 5: 2}

#: Reads the body of a message to promote (the body cache, else the mailbox).
BodySource = Callable[[Promote], bytes]
Sender = Callable[[bytes], None]


# -- new records ------------------------------------------------------------------------------


def new_records(
    header: MessageHeader, auto_create: AutoCreate, resolver: Resolver
) -> tuple[CreateRecord, ...]:
    """ "Automatically create records": a contact or lead for an unknown sender, to queue
    before the promotion of ``header`` (same message: it runs first). The GUID is chosen
    now, so a replay upserts the same record instead of creating a second one."""
    return tuple(
        CreateRecord(
            entity_set=entity(new.entity).entity_set,
            record_id=str(uuid.uuid4()),
            data={
                "firstname": new.first_name,
                "lastname": new.last_name,
                "emailaddress1": new.email,
            },
            subject=f"New {new.entity} {new.email}",
            message_id=header.message_id,
        )
        for new in plan_new_records(header, auto_create, resolver, tracked=True)
    )


class ProcessLock:
    """An exclusive lock on a file, across processes (the GUI and ``trackbox sync`` on the
    same profile): only one of them replays the outbox at a time, so a Pending Send mail is
    never handed to SMTP twice. Non-blocking: ``acquire`` says whether we got it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        try:
            import fcntl
        except ImportError:  # not POSIX: the in-process lock is all there is
            return True
        private_file(self.path)  # beside the store, as private as it
        handle = open(self.path, "a+b")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None


class MailSession:
    """One mailbox connection for a whole replay, opened on first use (a replay of 500
    promotions must not log in 500 times); dropped after an error so the next use reconnects."""

    def __init__(self, open_mailbox: Callable[[], MailBackend]) -> None:
        self.open_mailbox = open_mailbox
        self._backend: MailBackend | None = None

    def backend(self) -> MailBackend:
        if self._backend is None:
            self._backend = self.open_mailbox()
        return self._backend

    def fetch(self, ref: MailRef) -> bytes:
        try:
            return self.backend().fetch(ref)
        except MailError:
            self.close()
            raise

    def send(self, mime: bytes) -> None:
        try:
            self.backend().send(mime)
        except MailError:
            self.close()
            raise

    def close(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            try:
                backend.close()
            except MailError:
                log.debug("closing the mailbox failed", exc_info=True)


# -- the CRM side -----------------------------------------------------------------------------


class CrmApplier:
    """Carries out an operation against the CRM. Every branch is safe to run twice."""

    def __init__(
        self, crm: CrmClient, *, body_source: BodySource | None = None, send: Sender | None = None
    ) -> None:
        self.crm = crm
        self.body_source = body_source
        self.send = send

    def __call__(self, op: Operation, checkpoint: Checkpoint) -> OpResult:
        match op.payload:
            case Promote() as promote:
                return self._promote(promote, retried=op.attempts > 0)
            case Untrack() as untrack:
                return self._untrack(untrack)
            case SetRegarding() as refile:
                return self._set_regarding(refile)
            case SendPending() as send:
                return self._send(send, op.progress, checkpoint)
            case CreateRecord() as record:
                # Upsert on the GUID chosen when queued: a replay updates instead of duplicating.
                self.crm.update(record.entity_set, record.record_id, record.data, if_match=None)
                return OpResult(record_id=record.record_id)
            case UpdateUserSettings() as settings:
                user_id = settings.user_id or self.crm.who_am_i().user_id
                self.crm.update("usersettingscollection", user_id, settings.data)
                return OpResult()
            case AddConnection() as link:
                return self._add_connection(link)
            case RemoveConnection() as unlink:
                return self._remove_connection(unlink)
            case Unreadable() as unreadable:
                raise unreadable.error
            case MarkRead() | FlagMail() | MoveMail() | CopyMail() | DeleteMail():
                # Replayed by a pass without its kind filter: the mail pass runs it.
                raise TransientFailure("a mail action runs in the mail pass")

    def _promote(self, p: Promote, *, retried: bool) -> OpResult:
        """``DeliverPromoteEmail``, keyed by the Message-ID. A retry (an earlier attempt may
        have reached the CRM: an ambiguous answer) first looks the e-mail up by Message-ID and
        promotes only when the CRM does not have it, so that the exactly-once guarantee does
        not rest on the CRM's own de-duplication (which a crash before the deferral is
        recorded still relies on: the emulator and Dataverse return the existing e-mail)."""
        header = p.header
        regarding = p.regarding
        info = self._email_of(header.message_id) if retried else None
        if info is not None:
            activity_id = info.activity_id
            log.info("outbox promotion found done already message=%s", header.message_id)
        else:
            body, attachments = self._content(p)
            extra: dict[str, Any] = {}
            if header.in_reply_to:
                extra["inreplyto"] = header.in_reply_to
            if header.thread_index:
                extra["conversationindex"] = header.thread_index
            if regarding is not None:
                name, value = _regarding_bind(regarding)
                extra[name] = value
            activity_id = self.crm.deliver_promote_email(
                message_id=header.message_id,
                subject=header.subject,
                sender=header.sender or "",
                to=header.to,
                cc=header.cc,
                received_on=header.date,
                body=body,
                attachments=attachments,
                extra_properties=extra or None,
            )
            info = self._email_of(header.message_id)
        current = info.regarding if info else None
        if regarding is not None and (current is None or current.id != regarding.id):
            # The CRM already had the message (another mailbox tracked it): file it anyway.
            self._patch_regarding(activity_id, regarding, info.status_code if info else None)
            current = regarding
        return OpResult(activity_id, current, owner_id=info.owner_id if info else None)

    def _email_of(self, message_id: str) -> EmailInfo | None:
        return self.crm.find_emails_by_message_id([message_id]).get(message_id)

    def _content(self, p: Promote) -> tuple[str, list[Attachment]]:
        """The body (HTML, else text) and attachments to promote, from the payload or the
        message's bytes (as sent, the body cache, else the mailbox)."""
        body = p.body
        attachments: list[Attachment] = []
        raw: bytes | None = None
        if p.mime:
            raw = p.mime  # a mail written here: the bytes as sent
        elif body is None:
            if self.body_source is None:
                raise PermanentFailure("the message body is not available")
            raw = self.body_source(p)
        if raw is not None:
            parsed = parse_message(raw, p.header.ref)
            body = parsed.html or parsed.text
            if p.attachments:
                attachments = [
                    Attachment(a.filename or "attachment", a.content_type, a.payload())
                    for a in parsed.attachments
                ]
                limit = p.attachment_limit
                if limit and sum(len(a.content) for a in attachments) > limit:
                    attachments = []  # the size policy: the mail without its attachments
        return str(body or ""), attachments

    def _untrack(self, p: Untrack) -> OpResult:
        activity_id = p.activity_id
        if not activity_id:
            info = self._email_of(p.message_id)
            activity_id = info.activity_id if info else None
        if activity_id:
            try:
                self.crm.delete_email(activity_id)
            except CrmPermanentError as exc:
                if not exc.not_found:
                    raise
                # Deleted already (by us before a crash, or by someone else): done.
        return OpResult(deleted=activity_id)

    def _set_regarding(self, p: SetRegarding) -> OpResult:
        info = self._email_of(p.message_id)
        if info is None:
            raise PermanentFailure(
                "The CRM has no e-mail activity for this message; track it first."
            )
        self._patch_regarding(info.activity_id, p.regarding, info.status_code)
        return OpResult(info.activity_id, p.regarding)

    def _add_connection(self, p: AddConnection) -> OpResult:
        """Link the message's activity to ``p.record``, unless a connection between the two
        exists already (made by an earlier run of this operation, or by someone else)."""
        info = self._email_of(p.message_id)
        if info is None:
            raise PermanentFailure(
                "The CRM has no e-mail activity for this message; track it first."
            )
        try:
            crm_links.link_target(p.record.entity)
        except CrmEntityError as exc:
            raise PermanentFailure(str(exc)) from exc
        found = crm_links.find_link(self.crm, info.activity_id, p.record)
        if found is None:
            found = crm_links.add_link(self.crm, info.activity_id, p.record)
        return OpResult(info.activity_id, record_id=found)

    def _remove_connection(self, p: RemoveConnection) -> OpResult:
        """Delete the connection (its id, else every one between the two records); a mail
        no longer in the CRM has no links left to remove."""
        removed: list[str] = []
        if p.connection_id:
            crm_links.remove_link(self.crm, p.connection_id)
            removed.append(p.connection_id)
        info = self._email_of(p.message_id)
        while info is not None:
            found = crm_links.find_link(self.crm, info.activity_id, p.record)
            if found is None or found in removed:
                break
            crm_links.remove_link(self.crm, found)
            removed.append(found)
        return OpResult(info.activity_id if info else None, deleted=removed[0] if removed else None)

    def _patch_regarding(self, activity_id: str, regarding: RecordRef, status: int | None) -> None:
        name, value = _regarding_bind(regarding)
        data: dict[str, Any] = {name: value}
        if status is not None:
            # Closed activities are read-only unless the PATCH restates their state.
            data.update(statecode=_STATE_OF_STATUS.get(status, 1), statuscode=status)
        self.crm.update(EMAILS, activity_id, data)

    def _send(self, p: SendPending, done: Progress, checkpoint: Checkpoint) -> OpResult:
        if not done.smtp_sent:
            if self.send is None:
                raise PermanentFailure("no mailbox to send through")
            try:
                self.send(p.mime)
            except (MailUnavailable, MailAuthError):
                raise
            except MailError as exc:
                if p.activity_id:
                    # Tell the CRM: the e-mail shows Failed there instead of Sending forever.
                    self.crm.update(EMAILS, p.activity_id, {"statecode": 0, "statuscode": 8})
                raise PermanentFailure(f"The mail server refused it: {exc}") from exc
            # Recorded at once: a crash after this never sends the mail a second time.
            checkpoint(Progress(smtp_sent=True))
        if not p.activity_id:
            return OpResult(smtp_sent=True)  # a mail written here: nothing to mark in the CRM
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.crm.update(
            EMAILS,
            p.activity_id,
            {"statecode": 1, "statuscode": 3, "senton": now, "messageid": p.message_id},
        )
        return OpResult(p.activity_id, smtp_sent=True)


def _activity_of(result: OpResult) -> str:
    """The activity a promotion or a refile must have produced."""
    if not result.activity_id:
        raise PermanentFailure("the CRM did not say which e-mail activity it wrote")
    return result.activity_id


def _regarding_bind(ref: RecordRef) -> tuple[str, str]:
    """The ``@odata.bind`` name and value that file an e-mail regarding ``ref``."""
    try:
        table = regarding_target(ref.entity)
    except CrmEntityError as exc:
        raise PermanentFailure(f"cannot file an e-mail regarding a {ref.entity}") from exc
    assert table.regarding_bind is not None  # a regarding target has one
    return f"{table.regarding_bind}@odata.bind", table.bind(ref.id)


# -- mail actions -----------------------------------------------------------------------------

#: The uid a moved or copied row has in the store until the server says its ref.
PENDING_UID = "pending:"


class MailActionRunner:
    """Carries out the user's mail actions on the mail server (applier), and settles the
    store after each (``commit``, ``parked``). Never touches the CRM.

    ``resolved`` maps a placeholder uid to the ref the server gave; it outlives one replay
    (the replayer keeps it), so an action queued on a copy whose move had not run yet finds
    the message where the move put it.
    """

    def __init__(
        self, session: MailSession, store: Store, resolved: dict[str, MailRef] | None = None
    ) -> None:
        self.session = session
        self.store = store
        self.resolved = resolved if resolved is not None else {}
        self._made: dict[int, MailRef] = {}

    def __call__(self, op: Operation, checkpoint: Checkpoint) -> OpResult:
        p = op.payload
        if isinstance(p, Unreadable):
            raise p.error
        if not isinstance(p, MarkRead | FlagMail | MoveMail | CopyMail | DeleteMail):
            raise PermanentFailure(f"{op.kind} is not a mail action")
        ref = self._current(p)
        try:
            made = self._apply(self.session.backend(), p, ref)
        except MailError:
            self.session.close()
            raise
        if made is not None:
            self._made[op.id] = made
        return OpResult()

    def _apply(self, backend: MailBackend, p: MailAction, ref: MailRef) -> MailRef | None:
        match p:
            case MarkRead():
                backend.set_read(ref, p.read)
            case FlagMail():
                backend.set_flagged(ref, p.flagged)
            case MoveMail():
                if p.create_target and p.target not in {f.path for f in backend.folders()}:
                    backend.create_folder(p.target)
                return backend.move(ref, p.target)
            case CopyMail():
                return backend.copy(ref, p.target)
            case DeleteMail():
                backend.delete(ref)
        return None

    def _current(self, p: MailAction) -> MailRef:
        """Where the message is on the server now, as far as we know."""
        if p.uid.startswith(PENDING_UID):
            known = self.resolved.get(p.uid)
            if known is None:
                raise MailNotFound(
                    "the message's earlier move did not finish", ref=MailRef(p.folder, p.uid)
                )
            return known
        return MailRef(p.folder, p.uid)

    def commit(self, op: Operation, result: OpResult) -> None:
        """The server has done it: moved and copied rows get their real ref."""
        p = op.payload
        made = self._made.pop(op.id, None)
        if isinstance(p, MoveMail | CopyMail) and made is not None and p.local_uid:
            self.resolved[p.local_uid] = made
            self.store.rename_ref(MailRef(p.target, p.local_uid), made)

    def parked(self, op: Operation, failure: Failure) -> None:
        """The server refused (the message is gone, the folder too): undo what the store
        showed, so that the next sync corrects it from the server's state."""
        p = op.payload
        rows = [
            r.id
            for r in self.store.messages_by_message_id(getattr(p, "mail_id", ""))
            if r.header.ref.folder == getattr(p, "folder", None)
        ]
        match p:
            case MarkRead():
                self.store.set_read_rows(rows, not p.read)
            case FlagMail():
                self.store.set_keyword_rows(rows, FLAGGED_KEYWORD, not p.flagged)
            case MoveMail():
                moved = self.store.message_by_ref(MailRef(p.target, p.local_uid))
                if moved is not None:
                    self.store.move_row(moved.id, MailRef(p.folder, p.uid))
            case CopyMail():
                copied = self.store.message_by_ref(MailRef(p.target, p.local_uid))
                if copied is not None:
                    self.store.delete_rows([copied.id])
            case _:
                pass


# -- the local side ---------------------------------------------------------------------------


class LocalEffects:
    """Applies a finished operation to the store: tracked state, correlation index. Runs
    inside the outbox's transaction; never touches the network."""

    def __init__(self, store: Store, org: OrgSettings) -> None:
        self.store = store
        self.correlator = Correlator(org, SqliteCorrelationIndex(store))

    def commit(self, op: Operation, result: OpResult) -> None:
        match op.payload:
            case Promote() as p:
                activity, regarding = _activity_of(result), result.regarding
                state = TrackState.NEEDS_ATTENTION if p.needs_review else TrackState.TRACKED
                self.store.tracking.set_state(
                    p.message_id, state, activity_id=activity, regarding=regarding, reason=p.reason
                )
                self.correlator.track(p.header, activity, regarding)
            case Untrack() as p:
                self.store.tracking.set_state(
                    p.message_id,
                    TrackState.NOT_TRACKED,
                    reason=Reason("untracked", "Untracked by you"),
                )
                if result.deleted:
                    self.correlator.index.remove(result.deleted)
            case SetRegarding() as p:
                regarding = result.regarding
                self.store.tracking.set_state(
                    p.message_id,
                    TrackState.TRACKED,
                    activity_id=_activity_of(result),
                    regarding=regarding,
                    reason=Reason(
                        "manual-regarding", f"Set regarding {record_label(regarding)} by you"
                    ),
                )
            case AddConnection() as p:
                ConnectionRows(self.store).linked(p.message_id, p.record, result.record_id)
            case RemoveConnection() as p:
                ConnectionRows(self.store).forget(p.message_id, p.record)
            case SendPending() as p if p.activity_id:
                self.store.tracking.set_state(
                    p.message_id,
                    TrackState.TRACKED,
                    activity_id=p.activity_id,
                    reason=Reason("pending-send", "Sent from the CRM through this mailbox"),
                )

    def parked(self, op: Operation, failure: Failure) -> None:
        if isinstance(op.payload, AddConnection | RemoveConnection):
            return  # the mail stays tracked; the queue view shows why the link failed
        mid = op.message_id
        if mid is None or isinstance(op.payload, MailAction):
            return
        verb = _VERBS.get(op.kind, "Operation")
        self.store.tracking.set_state(
            mid,
            TrackState.FAILED,
            reason=Reason(f"{op.kind}-failed", f"{verb} failed: {failure.message}"),
        )

    def discarded(self, op: Operation) -> None:
        """Undo the *pending* look of a discarded operation."""
        if isinstance(op.payload, AddConnection):
            ConnectionRows(self.store).forget(op.payload.message_id, op.payload.record)
        elif isinstance(op.payload, RemoveConnection):
            rows = ConnectionRows(self.store)
            rows.linked(op.payload.message_id, op.payload.record, op.payload.connection_id)
        mid = op.message_id
        if mid is None or isinstance(op.payload, MailAction):
            return
        if isinstance(op.payload, Untrack) and op.payload.activity_id:
            self.store.tracking.set_state(
                mid,
                TrackState.TRACKED,
                activity_id=op.payload.activity_id,
                reason=Reason("untrack-discarded", "Untrack discarded"),
            )
        elif op.kind is OpKind.PROMOTE:
            self.store.tracking.set_state(
                mid,
                TrackState.NOT_TRACKED,
                reason=Reason("track-discarded", "Tracking discarded by you"),
            )


#: How a parked operation's failure reads on its message.
_VERBS: dict[str, str] = {
    OpKind.PROMOTE: "Tracking",
    OpKind.UNTRACK: "Untracking",
    OpKind.SET_REGARDING: "Setting regarding",
}
