"""The typed operations' stored form: every kind survives ``to_json``/``from_json``; the dicts
Trackbox stored before operations were typed read as the same operations; and a payload this
version cannot read is parked with a message, never run, never dropped."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.crm import CrmUnavailable
from core.domain.crm_settings import OrgSettings
from core.domain.model import Address, MailRef, MessageHeader, Reason, RecordRef, TrackState
from core.outbox.kinds import (
    FORMAT_VERSION,
    CreateRecord,
    OperationPayload,
    OpKind,
    PayloadError,
    Promote,
    SendPending,
    SetRegarding,
    UnknownKind,
    Unreadable,
    Untrack,
    UpdateUserSettings,
)
from core.outbox.operations import LocalEffects
from core.outbox.queue import OpState, Outbox, Progress
from core.outbox.results import OpResult
from core.outbox.stored import V0_DEFAULT_REASON, from_json
from core.store import Store
from core.sync.report import QueuedOperation

# -- strategies -------------------------------------------------------------------------------

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
addresses = st.builds(Address, texts, texts)
records = st.builds(RecordRef, texts, texts, texts)
reasons = st.builds(Reason, texts, texts)
zones = st.none() | st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
headers = st.builds(
    MessageHeader,
    ref=st.builds(MailRef, texts, texts),
    message_id=texts,
    subject=texts,
    sender=st.none() | addresses,
    to=st.lists(addresses, max_size=3).map(tuple),
    cc=st.lists(addresses, max_size=3).map(tuple),
    date=st.none() | st.datetimes(timezones=zones),
    in_reply_to=st.none() | texts,
    thread_index=st.none() | texts,
    size=st.integers(0, 10**9),  # not stored: promotion does not use it
)
columns = st.dictionaries(
    texts,
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    max_size=4,
)
operations: st.SearchStrategy[OperationPayload] = st.one_of(
    st.builds(
        Promote,
        header=headers,
        reason=reasons,
        regarding=st.none() | records,
        source=texts,
        body=st.none() | texts,
        mime=st.none() | st.binary(max_size=200),
        attachments=st.booleans(),
        attachment_limit=st.integers(0, 2**40),
        needs_review=st.booleans(),
    ),
    st.builds(Untrack, texts, st.none() | texts),
    st.builds(SetRegarding, texts, records),
    st.builds(SendPending, texts, st.binary(max_size=200), texts, st.none() | texts),
    st.builds(CreateRecord, texts, texts, columns, texts, st.none() | texts),
    st.builds(UpdateUserSettings, columns, st.none() | texts),
)


@given(operations)
def test_every_kind_survives_its_stored_form(op: OperationPayload) -> None:
    text = op.to_json()
    assert json.loads(text)["v"] == FORMAT_VERSION
    assert from_json(op.kind, text) == op
    assert from_json(op.kind.value, text) == op  # as the kind column holds it


def test_promote_keeps_only_what_promotion_needs_of_the_header() -> None:
    full = MessageHeader(
        ref=MailRef("Inbox", "7"), message_id="<m@x>", size=99, is_read=True, keywords=("a",)
    )
    kept = Promote(full, Reason("manual", "test")).header
    assert kept == MessageHeader(ref=MailRef("Inbox", "7"), message_id="<m@x>")


# -- v0: the dicts stored before operations were typed ----------------------------------------
# The builders below are today's (before typed operations) ``core/outbox/operations.py`` code,
# copied unchanged, and ``stored`` is how its ``Outbox.enqueue`` wrote their dicts.


def stored(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)


def _addr(a: Address | None) -> list[str] | None:
    return [a.email, a.name] if a else None


def _ref(r: RecordRef | None) -> dict[str, str] | None:
    return {"entity": r.entity, "id": r.id, "name": r.name} if r else None


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
        "attachments": attachments,
        "attachment_limit": attachment_limit,
        "needs_review": needs_review,
    }


def untrack_payload(message_id: str, activity_id: str | None) -> dict[str, Any]:
    return {"message_id": message_id, "activity_id": activity_id}


def regarding_payload(message_id: str, regarding: RecordRef) -> dict[str, Any]:
    return {"message_id": message_id, "regarding": _ref(regarding)}


def send_payload(
    activity_id: str | None, message_id: str, mime: bytes, subject: str
) -> dict[str, Any]:
    return {
        "activity_id": activity_id,
        "message_id": message_id,
        "subject": subject,
        "mime": base64.b64encode(mime).decode("ascii"),
    }


@given(
    header=headers,
    regarding=st.none() | records,
    reason=reasons,
    source=st.sampled_from(["user", "auto"]),
    body=st.none() | texts,
    mime=st.none() | st.binary(min_size=1, max_size=200),
    attachments=st.booleans(),
    attachment_limit=st.integers(0, 2**40),
    needs_review=st.booleans(),
)
def test_a_v0_promotion_reads_as_the_same_operation(
    header: MessageHeader,
    regarding: RecordRef | None,
    reason: Reason,
    source: str,
    body: str | None,
    mime: bytes | None,
    attachments: bool,
    attachment_limit: int,
    needs_review: bool,
) -> None:
    payload = promote_payload(
        header,
        regarding=regarding,
        reason=reason,
        source=source,
        body=body,
        attachments=attachments,
        attachment_limit=attachment_limit,
        needs_review=needs_review,
    )
    if mime is not None:  # a mail written here: compose added the bytes as sent
        payload["mime"] = base64.b64encode(mime).decode("ascii")
    expected = Promote(
        header,
        reason,
        regarding=regarding,
        source=source,
        body=body,
        mime=mime,
        attachments=attachments,
        attachment_limit=attachment_limit,
        needs_review=needs_review,
    )
    assert from_json(OpKind.PROMOTE, stored(payload)) == expected


@given(mid=texts, activity=st.none() | texts, ref=records, mime=st.binary(), subject=texts)
def test_the_other_v0_payloads_read_as_the_same_operations(
    mid: str, activity: str | None, ref: RecordRef, mime: bytes, subject: str
) -> None:
    assert from_json("untrack", stored(untrack_payload(mid, activity))) == Untrack(mid, activity)
    assert from_json("set_regarding", stored(regarding_payload(mid, ref))) == SetRegarding(mid, ref)
    assert from_json("send_pending", stored(send_payload(activity, mid, mime, subject))) == (
        SendPending(mid, mime, subject, activity)
    )


def test_v0_records_settings_and_a_promotion_without_a_reason() -> None:
    record = {
        "entity_set": "contacts",
        "id": "c-1",
        "data": {"firstname": "Nina", "lastname": "Sender", "emailaddress1": "n@x.example"},
        "subject": "New contact n@x.example",
    }
    assert from_json("create_record", stored(record)) == CreateRecord(
        "contacts",
        "c-1",
        {"firstname": "Nina", "lastname": "Sender", "emailaddress1": "n@x.example"},
        "New contact n@x.example",
    )
    settings = {"user_id": None, "data": {"incomingemailfilteringmethod": 2}}
    assert from_json("update_user_settings", stored(settings)) == UpdateUserSettings(
        {"incomingemailfilteringmethod": 2}
    )
    bare = from_json("promote", '{"message_id": "<m@x>"}')
    assert isinstance(bare, Promote) and bare.reason == V0_DEFAULT_REASON
    assert bare.attachments and bare.header == MessageHeader(MailRef("", ""), "<m@x>")


# -- unreadable payloads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "problem"),
    [
        ("promote", "{not json", "not JSON"),
        ("promote", "[1, 2]", "not a JSON object"),
        ("promote", '{"v": 2, "header": {}}', "format v2 by a newer Trackbox"),
        ("promote", '{"v": "1"}', "format version '1' is not a version number"),
        ("promote", '{"message_id": "<m@x>", "date": "yesterday"}', "'date' must be an ISO"),
        ("promote", '{"message_id": "<m@x>", "reason": ["manual"]}', "'reason' must be [code"),
        ("promote", '{"v": 1, "header": {"message_id": "<m@x>"}}', "'reason' is missing"),
        ("untrack", '{"activity_id": null}', "'message_id' is missing"),
        ("untrack", '{"message_id": 42}', "'message_id' must be text"),
        ("set_regarding", '{"message_id": "<m@x>"}', "'regarding' is missing"),
        (
            "set_regarding",
            '{"message_id": "<m@x>", "regarding": {"entity": "contact"}}',
            "'regarding.id' is missing",
        ),
        ("send_pending", '{"message_id": "<m@x>", "mime": "not base64!"}', "must be base64"),
        ("create_record", '{"entity_set": "contacts", "id": "c-1"}', "'data' is missing"),
        (
            "update_user_settings",
            '{"data": {"incomingemailfilteringmethod": [2]}}',
            "plain values",
        ),
        ("archive", "{}", "a kind of operation this version does not know"),
    ],
)
def test_an_unreadable_payload_raises_a_payload_error_that_names_the_problem(
    kind: str, text: str, problem: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        from_json(kind, text)
    assert problem in caught.value.problem
    assert caught.value.kind == kind and "cannot read" in caught.value.message


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.open(":memory:") as s:
        yield s


def _insert(store: Store, kind: str, message_id: str | None, text: str) -> int:
    """A row as any Trackbox writes one (here: one this version cannot read)."""
    now = "2025-01-01T00:00:00+00:00"
    cursor = store.conn.execute(
        "INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?)",
        (kind, message_id or kind, message_id, text, now, now),
    )
    return int(cursor.lastrowid or 0)


def _recording_applier(seen: list[int]) -> Callable[[Any, Any], OpResult]:
    def apply(op: Any, _checkpoint: Any) -> OpResult:
        seen.append(op.id)
        return OpResult("act-1")

    return apply


def test_an_unreadable_operation_is_parked_with_a_message_and_kept(store: Store) -> None:
    outbox = Outbox(store)
    effects = LocalEffects(store, OrgSettings())
    broken = _insert(store, "promote", "<a@x>", '{"message_id": "<a@x>", "reason": 7}')
    newer = _insert(store, "promote", "<b@x>", '{"v": 9, "header": {}}')
    unknown = _insert(store, "archive", "<c@x>", '{"v": 3}')
    behind = outbox.enqueue(Untrack("<a@x>", "act-1"))  # waits behind the parked one
    fine = outbox.enqueue(Untrack("<d@x>", "act-2"))
    listed = {op.id: op for op in outbox.pending()}  # listing never fails
    assert isinstance(listed[broken].payload, Unreadable)
    assert listed[unknown].kind == UnknownKind("archive") and listed[unknown].kind.value == (
        "archive"
    )

    seen: list[int] = []
    result = outbox.replay(_recording_applier(seen), effects.commit, on_parked=effects.parked)
    assert seen == [fine]  # nothing unreadable reached the applier
    assert sorted(result.parked) == [broken, newer, unknown] and result.done == [fine]
    for op_id, problem in (
        (broken, "its field 'reason' must be [code, text]"),
        (newer, "format v9 by a newer Trackbox"),
        (unknown, "a kind of operation this version does not know"),
    ):
        op = outbox.get(op_id)
        assert op is not None and op.state is OpState.PARKED
        assert op.last_error_code == "unreadable-payload"
        assert op.last_error and problem in op.last_error and "cannot read" in op.last_error
    assert outbox.get(behind).state is OpState.QUEUED  # type: ignore[union-attr]
    assert store.tracking.state_of("<a@x>") is TrackState.FAILED
    # The queue view and the CLI describe them; the stored text is untouched.
    queued = [QueuedOperation.of(op) for op in outbox.pending()]
    assert {q.kind for q in queued} >= {"promote", "archive"}
    assert any(q.summary.startswith("Unreadable archive operation") for q in queued)
    (text,) = store.conn.execute(
        "SELECT payload_json FROM outbox WHERE id = ?", (newer,)
    ).fetchone()
    assert text == '{"v": 9, "header": {}}'
    # Retried, it parks again; discarded, the message is no longer pending.
    outbox.retry(broken)
    assert outbox.replay(_recording_applier(seen)).parked == [broken]
    outbox.discard(broken, effects.discarded)
    assert store.tracking.state_of("<a@x>") is TrackState.NOT_TRACKED
    assert outbox.replay(_recording_applier(seen)).done == [behind]


def test_a_checkpoint_survives_a_failed_run(store: Store) -> None:
    """``send_pending`` records "the SMTP server has it" before marking the CRM; a re-run
    after a failure there sees the checkpoint and does not send again."""
    outbox = Outbox(store)
    op_id = outbox.enqueue(SendPending("<s@x>", b"mime", activity_id="act-9"))
    runs: list[Progress] = []

    def apply(op: Any, checkpoint: Callable[[Progress], None]) -> OpResult:
        runs.append(op.progress)
        if not op.progress.smtp_sent:
            checkpoint(Progress(smtp_sent=True))
            raise CrmUnavailable("the CRM went away after the send")
        return OpResult(smtp_sent=True)

    assert outbox.replay(apply).stopped == "offline"
    outbox.retry(op_id)
    assert outbox.replay(apply).done == [op_id]
    assert runs == [Progress(), Progress(smtp_sent=True)]
