"""What each outbox operation does: its CRM side (``CrmApplier``, idempotent, may run twice)
and its local side (``LocalEffects``, run once, in the transaction that marks it done).

Payloads are plain JSON made by the ``*_payload`` helpers here, so an operation queued by one
version of Trackbox (or by the CLI) is replayed by another.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from core.crm import Attachment, CrmClient, CrmPermanentError
from core.domain.correlation import Correlator
from core.domain.crm_settings import AutoCreate, OrgSettings
from core.domain.model import Address, MailRef, MessageHeader, Reason, RecordRef, TrackState
from core.domain.resolution import Resolver, plan_new_records
from core.mail import MailAuthError, MailBackend, MailError, MailUnavailable, parse_message
from core.outbox.queue import Operation, OpKind, Outbox, PermanentFailure
from core.store import SqliteCorrelationIndex, Store

log = logging.getLogger(__name__)

#: Regarding targets whose entity set names the CRM client needs for ``@odata.bind``.
ENTITY_SETS = {
    "contact": "contacts",
    "account": "accounts",
    "lead": "leads",
    "opportunity": "opportunities",
    "incident": "incidents",
    "systemuser": "systemusers",
    "queue": "queues",
    "equipment": "equipments",
}
#: statuscode → the statecode it belongs to (email), to keep the state while PATCHing.
_STATE_OF_STATUS = {1: 0, 8: 0, 2: 1, 3: 1, 4: 1, 6: 1, 7: 1, 5: 2}

BodySource = Callable[[dict[str, Any]], bytes]
Sender = Callable[[bytes], None]


# -- payloads ---------------------------------------------------------------------------------


def _addr(a: Address | None) -> list[str] | None:
    return [a.email, a.name] if a else None


def _ref(r: RecordRef | None) -> dict[str, str] | None:
    return {"entity": r.entity, "id": r.id, "name": r.name} if r else None


def ref_from(data: dict[str, Any] | None) -> RecordRef | None:
    if not data:
        return None
    return RecordRef(str(data["entity"]), str(data["id"]), str(data.get("name") or ""))


def promote_payload(
    header: MessageHeader,
    *,
    regarding: RecordRef | None,
    reason: Reason,
    source: str,
    body: str | None = None,
    attachments: bool = True,
    attachment_limit: int = 0,
    needs_review: bool = False,
) -> dict[str, Any]:
    """Everything promotion needs except the body, which is read at replay time (from the
    body cache, else the mailbox) unless given here."""
    return {
        "message_id": header.message_id,
        "subject": header.subject,
        "sender": _addr(header.sender),
        "to": [_addr(a) for a in header.to],
        "cc": [_addr(a) for a in header.cc],
        "date": header.date.isoformat() if header.date else None,
        "in_reply_to": header.in_reply_to,
        "thread_index": header.thread_index,
        "folder": header.ref.folder,
        "uid": header.ref.uid,
        "regarding": _ref(regarding),
        "reason": [reason.code, reason.text],
        "source": source,
        "body": body,
        # False when the size policy dropped them; a limit of 0 means "no limit known".
        "attachments": attachments,
        "attachment_limit": attachment_limit,
        # Tracked, but filed against the mailbox owner for want of a unique sender: the
        # message then shows "needs attention" until someone sets its regarding.
        "needs_review": needs_review,
    }


def header_from_payload(p: dict[str, Any]) -> MessageHeader:
    def addr(v: list[str] | None) -> Address | None:
        return Address(v[0], v[1] if len(v) > 1 else "") if v else None

    return MessageHeader(
        ref=MailRef(str(p.get("folder") or ""), str(p.get("uid") or "")),
        message_id=str(p["message_id"]),
        subject=str(p.get("subject") or ""),
        sender=addr(p.get("sender")),
        to=tuple(a for a in (addr(v) for v in p.get("to") or ()) if a),
        cc=tuple(a for a in (addr(v) for v in p.get("cc") or ()) if a),
        date=datetime.fromisoformat(p["date"]) if p.get("date") else None,
        in_reply_to=p.get("in_reply_to"),
        thread_index=p.get("thread_index"),
    )


def untrack_payload(message_id: str, activity_id: str | None) -> dict[str, Any]:
    return {"message_id": message_id, "activity_id": activity_id}


def regarding_payload(message_id: str, regarding: RecordRef) -> dict[str, Any]:
    return {"message_id": message_id, "regarding": _ref(regarding)}


def enqueue_new_records(
    outbox: Outbox, header: MessageHeader, auto_create: AutoCreate, resolver: Resolver
) -> int:
    """ "Automatically create records": a contact or lead for an unknown sender, queued
    before the promotion of ``header`` (same message: it runs first). The GUID is chosen
    now, so a replay upserts the same record instead of creating a second one."""
    count = 0
    for new in plan_new_records(header, auto_create, resolver, tracked=True):
        data = {"firstname": new.first_name, "lastname": new.last_name, "emailaddress1": new.email}
        outbox.enqueue(
            OpKind.CREATE_RECORD,
            {
                "entity_set": ENTITY_SETS[new.entity],
                "id": str(uuid.uuid4()),
                "data": data,
                "subject": f"New {new.entity} {new.email}",
            },
            key=header.message_id,
            message_id=header.message_id,
        )
        count += 1
    return count


def send_payload(
    activity_id: str | None, message_id: str, mime: bytes, subject: str
) -> dict[str, Any]:
    return {
        "activity_id": activity_id,
        "message_id": message_id,
        "subject": subject,
        "mime": base64.b64encode(mime).decode("ascii"),
    }


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
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

    def __call__(
        self, op: Operation, checkpoint: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        handler = {
            OpKind.PROMOTE: self._promote,
            OpKind.UNTRACK: self._untrack,
            OpKind.SET_REGARDING: self._set_regarding,
            OpKind.SEND_PENDING: self._send,
            OpKind.CREATE_RECORD: self._create,
            OpKind.UPDATE_USER_SETTINGS: self._settings,
        }[op.kind]
        return handler(op, checkpoint)

    def _promote(self, op: Operation, _cp: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        p = op.payload
        header = header_from_payload(p)
        body = p.get("body")
        attachments: list[Attachment] = []
        raw: bytes | None = None
        if p.get("mime"):
            raw = base64.b64decode(p["mime"])  # a mail written here: the bytes as sent
        elif body is None:
            if self.body_source is None:
                raise PermanentFailure("the message body is not available")
            raw = self.body_source(p)
        if raw is not None:
            parsed = parse_message(raw, header.ref)
            body = parsed.html or parsed.text
            if p.get("attachments", True):
                attachments = [
                    Attachment(a.filename or "attachment", a.content_type, a.payload())
                    for a in parsed.attachments
                ]
                limit = int(p.get("attachment_limit") or 0)
                if limit and sum(len(a.content) for a in attachments) > limit:
                    attachments = []  # the size policy: the mail without its attachments
        regarding = ref_from(p.get("regarding"))
        extra: dict[str, Any] = {}
        if header.in_reply_to:
            extra["inreplyto"] = header.in_reply_to
        if header.thread_index:
            extra["conversationindex"] = header.thread_index
        if regarding is not None:
            extra[_bind(regarding)] = f"/{_set(regarding)}({regarding.id})"
        activity_id = self.crm.deliver_promote_email(
            message_id=header.message_id,
            subject=header.subject,
            sender=header.sender or "",
            to=header.to,
            cc=header.cc,
            received_on=header.date,
            body=str(body or ""),
            attachments=attachments,
            extra_properties=extra or None,
        )
        info = self.crm.find_emails_by_message_id([header.message_id]).get(header.message_id)
        current = info.regarding if info else None
        if regarding is not None and (current is None or current.id != regarding.id):
            # The CRM already had the message (another mailbox tracked it): file it anyway.
            self._patch_regarding(activity_id, regarding, info.status_code if info else None)
            current = regarding
        return {
            "activity_id": activity_id,
            "regarding": _ref(current),
            "owner_id": info.owner_id if info else None,
        }

    def _untrack(self, op: Operation, _cp: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        activity_id = op.payload.get("activity_id")
        message_id = op.payload["message_id"]
        if not activity_id:
            info = self.crm.find_emails_by_message_id([message_id]).get(message_id)
            activity_id = info.activity_id if info else None
        if activity_id:
            try:
                self.crm.delete_email(activity_id)
            except CrmPermanentError as exc:
                if not exc.not_found:
                    raise
                # Deleted already (by us before a crash, or by someone else): done.
        return {"deleted": activity_id}

    def _set_regarding(
        self, op: Operation, _cp: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        message_id = op.payload["message_id"]
        regarding = ref_from(op.payload["regarding"])
        assert regarding is not None
        info = self.crm.find_emails_by_message_id([message_id]).get(message_id)
        if info is None:
            raise PermanentFailure(
                "The CRM has no e-mail activity for this message; track it first."
            )
        self._patch_regarding(info.activity_id, regarding, info.status_code)
        return {"activity_id": info.activity_id, "regarding": _ref(regarding)}

    def _patch_regarding(self, activity_id: str, regarding: RecordRef, status: int | None) -> None:
        data: dict[str, Any] = {_bind(regarding): f"/{_set(regarding)}({regarding.id})"}
        if status is not None:
            # Closed activities are read-only unless the PATCH restates their state.
            data.update(statecode=_STATE_OF_STATUS.get(status, 1), statuscode=status)
        self.crm.update("emails", activity_id, data)

    def _send(self, op: Operation, checkpoint: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        p = op.payload
        if not (op.result or {}).get("smtp_sent"):
            if self.send is None:
                raise PermanentFailure("no mailbox to send through")
            try:
                self.send(base64.b64decode(p["mime"]))
            except (MailUnavailable, MailAuthError):
                raise
            except MailError as exc:
                if p.get("activity_id"):
                    # Tell the CRM: the e-mail shows Failed there instead of Sending forever.
                    self.crm.update("emails", p["activity_id"], {"statecode": 0, "statuscode": 8})
                raise PermanentFailure(f"The mail server refused it: {exc}") from exc
            # Recorded at once: a crash after this never sends the mail a second time.
            checkpoint({"smtp_sent": True})
        if not p.get("activity_id"):
            return {"smtp_sent": True}  # a mail written here: nothing to mark in the CRM
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.crm.update(
            "emails",
            p["activity_id"],
            {"statecode": 1, "statuscode": 3, "senton": now, "messageid": p["message_id"]},
        )
        return {"activity_id": p["activity_id"], "smtp_sent": True}

    def _create(self, op: Operation, _cp: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        p = op.payload
        # Upsert on the GUID chosen when queued: a replay updates instead of duplicating.
        self.crm.update(p["entity_set"], p["id"], p["data"], if_match=None)
        return {"id": p["id"]}

    def _settings(self, op: Operation, _cp: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        p = op.payload
        user_id = p.get("user_id") or self.crm.who_am_i().user_id
        self.crm.update("usersettingscollection", user_id, p["data"])
        return {}


def _set(ref: RecordRef) -> str:
    try:
        return ENTITY_SETS[ref.entity]
    except KeyError:
        raise PermanentFailure(f"cannot file an e-mail regarding a {ref.entity}") from None


def _bind(ref: RecordRef) -> str:
    return f"regardingobjectid_{ref.entity}_email@odata.bind"


# -- the local side ---------------------------------------------------------------------------


class LocalEffects:
    """Applies a finished operation to the store: tracked state, correlation index. Runs
    inside the outbox's transaction; never touches the network."""

    def __init__(self, store: Store, org: OrgSettings) -> None:
        self.store = store
        self.correlator = Correlator(org, SqliteCorrelationIndex(store))

    def commit(self, op: Operation, result: dict[str, Any]) -> None:
        p = op.payload
        if op.kind is OpKind.PROMOTE:
            header = header_from_payload(p)
            regarding = ref_from(result.get("regarding"))
            code, text = p.get("reason") or ("manual", "Tracked manually")
            state = TrackState.NEEDS_ATTENTION if p.get("needs_review") else TrackState.TRACKED
            self.store.set_track_state(
                header.message_id,
                state,
                activity_id=result["activity_id"],
                regarding=regarding,
                reason=Reason(code, text),
            )
            self.correlator.track(header, result["activity_id"], regarding)
        elif op.kind is OpKind.UNTRACK:
            self.store.set_track_state(
                p["message_id"],
                TrackState.NOT_TRACKED,
                reason=Reason("untracked", "Untracked by you"),
            )
            if result.get("deleted"):
                self.correlator.index.remove(result["deleted"])
        elif op.kind is OpKind.SET_REGARDING:
            regarding = ref_from(result.get("regarding"))
            self.store.set_track_state(
                p["message_id"],
                TrackState.TRACKED,
                activity_id=result["activity_id"],
                regarding=regarding,
                reason=Reason("manual-regarding", f"Set regarding {_label(regarding)} by you"),
            )
        elif op.kind is OpKind.SEND_PENDING and p.get("activity_id"):
            self.store.set_track_state(
                p["message_id"],
                TrackState.TRACKED,
                activity_id=p["activity_id"],
                reason=Reason("pending-send", "Sent from the CRM through this mailbox"),
            )

    def parked(self, op: Operation, info: dict[str, Any]) -> None:
        mid = op.message_id
        if mid is None:
            return
        verb = {
            OpKind.PROMOTE: "Tracking",
            OpKind.UNTRACK: "Untracking",
            OpKind.SET_REGARDING: "Setting regarding",
        }.get(op.kind, "Operation")
        self.store.set_track_state(
            mid,
            TrackState.FAILED,
            reason=Reason(f"{op.kind.value}-failed", f"{verb} failed: {info.get('error')}"),
        )

    def discarded(self, op: Operation) -> None:
        """Undo the *pending* look of a discarded operation."""
        mid = op.message_id
        if mid is None:
            return
        if op.kind is OpKind.UNTRACK and op.payload.get("activity_id"):
            self.store.set_track_state(
                mid,
                TrackState.TRACKED,
                activity_id=op.payload["activity_id"],
                reason=Reason("untrack-discarded", "Untrack discarded"),
            )
        elif op.kind is OpKind.PROMOTE:
            self.store.set_track_state(
                mid,
                TrackState.NOT_TRACKED,
                reason=Reason("track-discarded", "Tracking discarded by you"),
            )


def _label(ref: RecordRef | None) -> str:
    return (ref.name or f"{ref.entity} {ref.id}") if ref else "nothing"
