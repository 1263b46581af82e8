"""Correlation: conversation index parsing, the Correlator's order and switches, smart matching."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.correlation import (
    ConversationIndex,
    ConversationIndexError,
    CorrelationIndex,
    CorrelationMethod,
    Correlator,
    InMemoryCorrelationIndex,
    SmartMatcher,
    TrackedEmail,
    message_id_keys,
)
from core.domain.crm_settings import OrgSettings
from core.domain.model import Address, MailRef, MessageHeader, RecordRef

X = Address("alex.morgan@contoso.example", "Alex Morgan")
C = Address("jane.doe@fabrikam.example", "Jane Doe")
M = Address("mark.chen@fabrikam.example", "Mark Chen")
OPPORTUNITY = RecordRef("opportunity", "0f0f0f0f-0000-0000-0000-000000000001", "200 licences")
CASE = RecordRef("incident", "0f0f0f0f-0000-0000-0000-000000000002", "Login broken")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def header(
    subject: str,
    *,
    message_id: str,
    sender: Address = C,
    to: tuple[Address, ...] = (X,),
    cc: tuple[Address, ...] = (),
    in_reply_to: str | None = None,
    references: tuple[str, ...] = (),
    thread_index: str | None = None,
    date: datetime = T0,
) -> MessageHeader:
    return MessageHeader(
        ref=MailRef("Inbox", message_id),
        message_id=message_id,
        subject=subject,
        sender=sender,
        to=to,
        cc=cc,
        date=date,
        in_reply_to=in_reply_to,
        references=references,
        thread_index=thread_index,
    )


# --- conversation index ----------------------------------------------------------------------


def test_conversation_index_parses_outlook_header() -> None:
    root = ConversationIndex.new(T0)
    reply = root.child(T0 + timedelta(hours=1), random_byte=7)
    again = ConversationIndex(reply.header)
    assert again == reply
    assert again.depth == 1 and root.depth == 0
    assert again.root == root.root
    assert again.parent == root
    assert again.is_descendant_of(root)
    assert not root.is_descendant_of(again)
    assert abs(root.created - T0) < timedelta(seconds=1)
    assert isinstance(root.root_hash, int) and -(2**31) <= root.root_hash < 2**31


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not base64!",
        base64.b64encode(b"\x01" * 21).decode(),
        base64.b64encode(b"\x01" * 23).decode(),
        base64.b64encode(b"\x02" * 22).decode(),
        "é" * 40,
    ],
)
def test_malformed_conversation_index_raises_dedicated_error(bad: str) -> None:
    with pytest.raises(ConversationIndexError):
        ConversationIndex(bad)


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_any_bytes_parse_or_raise_dedicated_error(raw: bytes) -> None:
    try:
        index = ConversationIndex(raw)
    except ConversationIndexError:
        return
    assert ConversationIndex(index.header) == index


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_any_header_text_parses_or_raises_dedicated_error(text: str) -> None:
    try:
        ConversationIndex(text)
    except ConversationIndexError:
        pass


@settings(max_examples=200)
@given(
    st.binary(min_size=21, max_size=21),
    st.integers(0, 4),
    st.integers(0, 10**6),
    st.integers(0, 255),
)
def test_child_is_descendant(body: bytes, depth: int, seconds: int, rand: int) -> None:
    parent = ConversationIndex(b"\x01" + body + b"\x00" * (5 * depth))
    child = parent.child(parent.created + timedelta(seconds=seconds), random_byte=rand)
    assert child.is_descendant_of(parent)
    assert child.parent == parent and child.depth == parent.depth + 1
    assert child.root == parent.root
    grandchild = child.child(parent.created + timedelta(days=400))  # long delta: code bit 1
    assert grandchild.is_descendant_of(parent)


# --- the correlator --------------------------------------------------------------------------


def tracked_thread(org: OrgSettings | None = None) -> tuple[Correlator, MessageHeader]:
    """X sent "Quote for 200 licences CRM:0010023" to C, tracked regarding an opportunity."""
    correlator = Correlator(org or OrgSettings(smart_matching=True), InMemoryCorrelationIndex())
    sent = header(
        "Quote for 200 licences CRM:0010023",
        message_id="<q1@contoso.example>",
        sender=X,
        to=(C,),
        cc=(M,),
        thread_index=ConversationIndex.new(T0).header,
    )
    correlator.track(sent, "activity-1", OPPORTUNITY)
    return correlator, sent


def test_reply_with_token_inherits_regarding_and_names_token() -> None:
    correlator, _ = tracked_thread()
    reply = header("RE: Quote for 200 licences CRM:0010023", message_id="<r1@fabrikam.example>")
    result = correlator.correlate(reply)
    assert result is not None
    assert result.method is CorrelationMethod.TOKEN and result.method.crm_value == 4
    assert result.regarding == OPPORTUNITY
    assert result.activity.activity_id == "activity-1"
    assert result.describe() == "Reply to tracked e-mail CRM:0010023 (tracking token)"


def test_in_reply_to_comes_first() -> None:
    correlator, sent = tracked_thread()
    other = header("Other CRM:0010099", message_id="<o@contoso.example>", sender=X, to=(C,))
    correlator.track(other, "activity-2", CASE)
    reply = header(
        "RE: Other CRM:0010099", message_id="<r2@fabrikam.example>", in_reply_to=sent.message_id
    )
    result = correlator.correlate(reply)
    assert result is not None and result.method is CorrelationMethod.IN_REPLY_TO
    assert result.regarding == OPPORTUNITY and result.sets_parent


def test_references_for_clients_without_in_reply_to() -> None:
    correlator, sent = tracked_thread()
    reply = header(
        "Re: something else",
        message_id="<r3@fabrikam.example>",
        references=("<unknown@x.example>", sent.message_id, "<later@x.example>"),
    )
    result = correlator.correlate(reply)
    assert result is not None and result.method is CorrelationMethod.IN_REPLY_TO


def test_conversation_index_prefers_parent() -> None:
    correlator, sent = tracked_thread()
    assert sent.thread_index is not None
    first = ConversationIndex(sent.thread_index)
    reply1 = header("RE: Quote", message_id="<a@x>", thread_index=first.child(T0).header)
    correlator.track(reply1, "activity-r1", CASE)  # user re-filed this reply
    reply2 = header(
        "RE: Quote",
        message_id="<b@x>",
        thread_index=ConversationIndex(reply1.thread_index or "").child(T0).header,
    )
    result = correlator.correlate(reply2)
    assert result is not None and result.method is CorrelationMethod.CONVERSATION_INDEX
    assert result.activity.activity_id == "activity-r1" and result.regarding == CASE
    sibling = header("RE: Quote", message_id="<c@x>", thread_index=first.child(T0).header)
    result = correlator.correlate(sibling)
    assert result is not None and result.activity.activity_id == "activity-1"


def test_malformed_thread_index_is_skipped() -> None:
    correlator, _ = tracked_thread(OrgSettings())
    reply = header("RE: Quote", message_id="<a@x>", thread_index="%%%garbage")
    assert correlator.correlate(reply) is None


def test_smart_matching_needs_shared_addresses() -> None:
    correlator, _ = tracked_thread()
    reply = header("RE: quote FOR 200 licences", message_id="<s@x>", sender=C, to=(X,))
    result = correlator.correlate(reply)
    assert result is not None and result.method is CorrelationMethod.SMART_MATCH
    stranger = header(
        "RE: Quote for 200 licences",
        message_id="<t@x>",
        sender=Address("someone@else.example"),
        to=(X,),
    )
    assert correlator.correlate(stranger) is None


def test_smart_matching_gives_up_when_subject_too_common() -> None:
    index = InMemoryCorrelationIndex()
    matcher = SmartMatcher(max_candidates=3)
    for n in range(4):
        index.add(
            TrackedEmail(
                f"a{n}", smart_key=matcher.key("Hello"), addresses=frozenset({X.key, C.key})
            )
        )
    assert len(matcher.candidates("RE: hello", [X.key, C.key], index)) == 4
    assert matcher.match("RE: hello", [X.key, C.key], index) is None
    index.remove("a0")
    assert matcher.match("RE: hello", [X.key, C.key], index) is not None


def test_smart_matcher_over_plain_list_and_filtered_subjects() -> None:
    matcher = SmartMatcher()
    emails = [
        TrackedEmail("a", smart_key=matcher.key("Status"), addresses=frozenset({X.key, C.key}))
    ]
    assert matcher.match("Fw: STATUS", [X.key, C.key], emails) is emails[0]
    assert matcher.match("RE:", [X.key, C.key], emails) is None  # nothing left to compare
    oof = SmartMatcher(filter_keywords=r"^[\s]*([\w]+\s?:[\s]*)+|Out of office:")
    assert oof.key("Out of office: Status") == oof.key("Status")


@pytest.mark.parametrize(
    ("switch", "reply_kwargs"),
    [
        ("correlate_in_reply_to", {"in_reply_to": "<q1@contoso.example>"}),
        ("correlate_tracking_token", {"subject": "RE: x CRM:0010023"}),
        ("smart_matching", {"subject": "RE: Quote for 200 licences"}),
    ],
)
def test_each_step_can_be_switched_off(switch: str, reply_kwargs: dict[str, str]) -> None:
    on = OrgSettings(smart_matching=True)
    kwargs = {"subject": "unrelated", "message_id": "<n@x>"} | reply_kwargs
    reply = header(**kwargs)  # type: ignore[arg-type]
    assert tracked_thread(on)[0].correlate(reply) is not None
    off = dataclasses.replace(on, **{switch: False})
    assert tracked_thread(off)[0].correlate(reply) is None
    master_off = dataclasses.replace(on, correlation_enabled=False)
    assert tracked_thread(master_off)[0].correlate(reply) is None


def test_conversation_switch() -> None:
    on = OrgSettings()
    correlator, sent = tracked_thread(on)
    reply = header(
        "x",
        message_id="<n@x>",
        thread_index=ConversationIndex(sent.thread_index or "").child(T0).header,
    )
    assert correlator.correlate(reply) is not None
    off = dataclasses.replace(on, correlate_conversation_index=False)
    assert tracked_thread(off)[0].correlate(reply) is None


def test_token_only_mode_ignores_threads() -> None:
    correlator, sent = tracked_thread(OrgSettings(token_only=True, smart_matching=True))
    assert sent.thread_index is not None
    no_token = header(
        "RE: Quote for 200 licences",
        message_id="<n@x>",
        in_reply_to=sent.message_id,
        thread_index=ConversationIndex(sent.thread_index).child(T0).header,
    )
    assert correlator.correlate(no_token) is None
    pasted = header("Totally new subject CRM:0010023", message_id="<p@x>")
    result = correlator.correlate(pasted)
    assert result is not None and result.method is CorrelationMethod.TOKEN


def test_message_id_keys() -> None:
    assert message_id_keys("<a@b>") == ["<a@b>"]
    assert message_id_keys(" <a@b> <c@d> ") == ["<a@b>", "<c@d>"]
    assert message_id_keys("a@b") == ["<a@b>"]
    assert message_id_keys("garbage") == []
    assert message_id_keys(None) == []


def test_in_memory_index_meets_protocol_and_forgets() -> None:
    index = InMemoryCorrelationIndex()
    assert isinstance(index, CorrelationIndex)
    email = TrackedEmail(
        "a", message_id="<a@b>", token="CRM:0001001", conversation_root="r", smart_key="k"
    )
    index.add(email)
    assert index.by_token("crm:0001001") is email
    assert index.by_message_id("<a@b>") is email
    assert list(index.by_conversation_root("r")) == [email]
    index.remove("a")
    assert index.by_token("CRM:0001001") is None and not index.by_smart_key("k")
    assert len(index) == 0


def test_smart_key_ignores_word_order_like_the_crms_word_hashes() -> None:
    matcher = SmartMatcher()
    assert matcher.key("RE: licences for Quote") == matcher.key("Quote for licences")


def test_tracked_email_entry_carries_normalised_keys() -> None:
    correlator, sent = tracked_thread()
    entry = correlator.index.by_message_id("<q1@contoso.example>")
    assert entry is not None
    assert entry.token == "CRM:0010023" and entry.regarding == OPPORTUNITY
    assert entry.subject == "Quote for 200 licences"
    assert entry.addresses == frozenset({X.key, C.key, M.key})
    assert entry.conversation_root == ConversationIndex(sent.thread_index or "").root
    assert entry.smart_key == correlator.smart.key("RE: Quote for 200 licences")
