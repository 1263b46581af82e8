"""Conversation grouping (core.domain.conversations): the three rules, their order, hostile
headers, and the banner's words; plus the store read that feeds it."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.conversation_index import ConversationIndex
from core.domain.conversations import (
    SUBJECT_WINDOW,
    Coverage,
    ThreadFacts,
    banner_text,
    group_conversations,
    is_trivial_subject,
    summarise,
)
from core.domain.model import Reason, RecordRef, TrackState
from core.store import Store
from core.store.conversations import folder_conversations, thread_facts, thread_facts_of
from tests.core_store.conftest import make_header

DAY = 86_400.0
T0 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


def groups(messages: list[ThreadFacts]) -> set[frozenset[int]]:
    return {frozenset(c.row_ids) for c in group_conversations(messages)}


def msg(row_id: int, **kw: object) -> ThreadFacts:
    kw.setdefault("message_id", f"<m{row_id}@example.test>")
    kw.setdefault("subject", f"Unrelated subject number {row_id}")
    kw.setdefault("date_ts", T0 + row_id * 60)
    return ThreadFacts(row_id, **kw)  # type: ignore[arg-type]


# --- rule 1: Thread-Index ---------------------------------------------------------------------


def test_thread_index_root_joins_whatever_the_subject_and_references_say() -> None:
    root = ConversationIndex.new(datetime(2026, 3, 1, tzinfo=UTC), uuid.UUID(int=1))
    reply = root.child(datetime(2026, 3, 2, tzinfo=UTC), random_byte=7)
    other = ConversationIndex.new(datetime(2026, 3, 1, tzinfo=UTC), uuid.UUID(int=2))
    messages = [
        msg(1, thread_index=root.header, subject="Budget"),
        msg(2, thread_index=reply.header, subject="Completely different words"),
        msg(3, thread_index=reply.child(random_byte=1).header, subject="Third subject here"),
        msg(4, thread_index=other.header, subject="Budget"),  # same subject, other thread
    ]
    assert groups(messages) == {frozenset({1, 2, 3}), frozenset({4})}


def test_garbage_thread_index_is_ignored_and_the_other_rules_still_apply() -> None:
    messages = [
        msg(1, thread_index="!!not base64!!"),
        msg(2, thread_index="AQ=="),  # valid base64, far too short
        msg(3, thread_index="AgAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="),  # 22 bytes, wrong first byte
        msg(4, thread_index="A" * 100_000),  # longer than any real one
        msg(5, thread_index="\x00\udcff", in_reply_to="<m1@example.test>"),
        msg(6, thread_index=ConversationIndex.new().header + "AAAA"),  # partial child block
    ]
    assert groups(messages) == {
        frozenset({1, 5}),
        frozenset({2}),
        frozenset({3}),
        frozenset({4}),
        frozenset({6}),
    }


# --- rule 2: References / In-Reply-To ---------------------------------------------------------


def test_a_reply_whose_parent_is_missing_joins_through_a_shared_reference() -> None:
    messages = [
        # the thread's start <a> is not in the folder; both replies name it
        msg(1, references=("<a@x>", "<b@x>"), in_reply_to="<b@x>", subject="x1 subject one"),
        msg(2, references=("<a@x>",), subject="another topic entirely"),
        msg(3, in_reply_to="<m2@example.test>", subject="third words here"),  # names message 2
        msg(4, references=("<zzz@x>",)),
    ]
    assert groups(messages) == {frozenset({1, 2, 3}), frozenset({4})}


def test_message_ids_are_compared_in_their_normal_form() -> None:
    messages = [
        msg(1, message_id=" <p@x> "),
        msg(2, in_reply_to="p@x"),
        msg(3, references=("<p@x>",)),
    ]
    assert groups(messages) == {frozenset({1, 2, 3})}


def test_cyclic_references_and_self_references_terminate() -> None:
    messages = [
        msg(1, message_id="<a@x>", references=("<b@x>",), in_reply_to="<a@x>"),
        msg(2, message_id="<b@x>", references=("<c@x>",)),
        msg(3, message_id="<c@x>", references=("<a@x>", "<c@x>")),
        msg(4),
    ]
    assert groups(messages) == {frozenset({1, 2, 3}), frozenset({4})}


def test_ten_thousand_references_on_one_message() -> None:
    refs = tuple(f"<r{i}@x>" for i in range(10_000))
    messages = [
        msg(1, references=refs),
        msg(2, message_id="<r0@x>"),  # the thread's start: the first reference is kept
        msg(3, message_id="<r9999@x>"),  # the parent: the last ones are kept
        msg(4, in_reply_to="<r5000@x>"),  # in the middle, past the bound: alone
    ]
    started = time.perf_counter()
    assert groups(messages) == {frozenset({1, 2, 3}), frozenset({4})}
    assert time.perf_counter() - started < 60  # a hang guard, not a speed test


# --- rule 3: subject --------------------------------------------------------------------------


def test_a_reply_joins_by_subject_within_the_window_only() -> None:
    messages = [
        msg(1, subject="Contoso renewal quote", date_ts=T0),
        msg(2, subject="RE: Contoso renewal quote", date_ts=T0 + 2 * DAY),
        msg(3, subject="AW: contoso  RENEWAL quote", date_ts=T0 + 20 * DAY),  # case, spaces
        msg(4, subject="Re: Contoso renewal quote", date_ts=T0 + 20 * DAY + SUBJECT_WINDOW + 1),
    ]
    assert groups(messages) == {frozenset({1, 2, 3}), frozenset({4})}


def test_mails_that_are_not_replies_never_join_by_subject() -> None:
    messages = [msg(i, subject="Weekly report", date_ts=T0 + i * 7 * DAY) for i in range(1, 5)]
    assert groups(messages) == {frozenset({i}) for i in range(1, 5)}


def test_trivial_subjects_and_undated_mail_never_join_by_subject() -> None:
    messages = [
        msg(1, subject="Hi", date_ts=T0),
        msg(2, subject="RE: Hi", date_ts=T0 + 60),
        msg(3, subject="", date_ts=T0),
        msg(4, subject="RE:", date_ts=T0 + 60),
        msg(5, subject="Pricing for the Fabrikam pilot", date_ts=None),
        msg(6, subject="RE: Pricing for the Fabrikam pilot", date_ts=None),
    ]
    assert groups(messages) == {frozenset({i}) for i in range(1, 7)}
    assert is_trivial_subject("Re") and is_trivial_subject("(no subject)")
    assert not is_trivial_subject("Q3 plan")


def test_rules_combine_transitively() -> None:
    root = ConversationIndex.new(datetime(2026, 3, 1, tzinfo=UTC), uuid.UUID(int=9))
    messages = [
        msg(1, thread_index=root.header, message_id="<o@x>", subject="Fabrikam pilot"),
        msg(2, thread_index=root.child(random_byte=1).header),  # rule 1 with 1
        msg(3, in_reply_to="<m2@example.test>"),  # rule 2 with 2
        msg(4, subject="RE: Fabrikam pilot", date_ts=T0 + DAY),  # rule 3 with 1
    ]
    assert groups(messages) == {frozenset({1, 2, 3, 4})}


# --- properties -------------------------------------------------------------------------------

_ids = st.sampled_from([f"<{c}@x>" for c in "abcdefgh"])
_facts = st.builds(
    ThreadFacts,
    row_id=st.integers(0, 10**6),
    message_id=_ids,
    thread_index=st.one_of(st.none(), st.text(max_size=40)),
    in_reply_to=st.one_of(st.none(), _ids, st.text(max_size=20)),
    references=st.lists(st.one_of(_ids, st.text(max_size=10)), max_size=5).map(tuple),
    subject=st.sampled_from(["", "Hi", "Quote", "RE: Quote", "Fwd: quote", "Other stuff"]),
    date_ts=st.one_of(st.none(), st.floats(0, 1e10)),
    is_read=st.booleans(),
    track_state=st.sampled_from(list(TrackState)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_facts, max_size=30, unique_by=lambda f: f.row_id))
def test_every_message_is_in_exactly_one_conversation(messages: list[ThreadFacts]) -> None:
    conversations = group_conversations(messages)
    seen = [rid for c in conversations for rid in c.row_ids]
    assert sorted(seen) == sorted(m.row_id for m in messages)
    for c in conversations:
        assert c.tracked + c.pending + c.failed + c.not_tracked == c.count
        assert 0 <= c.unread <= c.count
        dates = [m.date_ts for m in c.messages if m.date_ts is not None]
        assert dates == sorted(dates, reverse=True)
    # the same messages in another order: the same conversations
    assert groups(list(reversed(messages))) == groups(messages)


@settings(max_examples=100, deadline=None)
@given(st.lists(_facts, min_size=1, max_size=30, unique_by=lambda f: f.row_id))
def test_messages_sharing_a_message_id_are_one_conversation(messages: list[ThreadFacts]) -> None:
    for c in group_conversations(messages):
        others = [m for m in messages if m.row_id not in c.row_ids]
        mine = {m.message_id for m in c.messages}
        assert not any(m.message_id in mine for m in others)


def test_grouping_a_hundred_thousand_messages_finishes() -> None:
    """30,000 threads of 3 plus 10,000 single mails, every rule used; a hang guard."""
    messages = []
    for t in range(30_000):
        base = ConversationIndex.new(datetime(2026, 1, 1, tzinfo=UTC), uuid.UUID(int=t + 1))
        messages.append(msg(3 * t, thread_index=base.header, subject=f"Topic {t} plan"))
        messages.append(msg(3 * t + 1, in_reply_to=f"<m{3 * t}@example.test>"))
        messages.append(msg(3 * t + 2, subject=f"RE: Topic {t} plan"))
    messages += [msg(90_000 + i) for i in range(10_000)]
    started = time.perf_counter()
    conversations = group_conversations(messages)
    assert time.perf_counter() - started < 120
    assert len(conversations) == 40_000
    assert sorted(c.count for c in conversations)[-1] == 3


# --- summary and banner -----------------------------------------------------------------------


def test_banner_says_which_mails_are_tracked_and_regarding_what() -> None:
    tracked = TrackState.TRACKED
    c = summarise(
        [
            msg(1, track_state=tracked, regarding="Contoso deal"),
            msg(2, track_state=tracked, regarding="Contoso deal"),
            msg(3, track_state=TrackState.TRACKED_BY_OTHER, regarding="Contoso deal"),
            msg(4, is_read=False),
            msg(5),
        ]
    )
    assert c.coverage == Coverage.PARTLY and c.unread == 1
    assert banner_text(c) == (
        "Conversation of 5 messages: 3 tracked (regarding Contoso deal), 2 not tracked"
    )
    everything = summarise(
        [msg(1, track_state=tracked, regarding="A deal"), msg(2, track_state=tracked)]
    )
    assert everything.coverage == Coverage.TRACKED
    assert banner_text(everything) == (
        "Conversation of 2 messages: all tracked (regarding A deal; 1 without a regarding record)"
    )
    nothing = summarise([msg(1), msg(2, track_state=TrackState.PENDING), msg(3)])
    assert nothing.coverage == Coverage.PARTLY
    assert banner_text(nothing) == "Conversation of 3 messages: 1 pending, 2 not tracked"
    assert banner_text(summarise([msg(1), msg(2)])) == "Conversation of 2 messages: none tracked"


def test_banner_names_at_most_three_records() -> None:
    c = summarise(
        [msg(i, track_state=TrackState.TRACKED, regarding=f"Deal {i % 5}") for i in range(10)]
    )
    text = banner_text(c)
    assert text.startswith("Conversation of 10 messages: all tracked (regarding Deal ")
    assert text.endswith(" and 2 more)")


# --- the store read ---------------------------------------------------------------------------


def test_folder_conversations_from_the_store(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store.sqlite")
    try:
        root = ConversationIndex.new(datetime(2026, 3, 1, tzinfo=UTC), uuid.UUID(int=5))
        start = datetime(2026, 3, 1, tzinfo=UTC)
        store.upsert_headers(
            [
                make_header(
                    "Inbox", 1, thread_index=root.header, subject="Contoso deal", date=start
                ),
                make_header("Inbox", 2, references=("<m1@example.test>",), subject="RE: x"),
                make_header("Inbox", 3, subject="RE: Contoso deal", date=start + timedelta(days=1)),
                make_header("Inbox", 4, subject="Something else entirely"),
                make_header("Other", 5, in_reply_to="<m1@example.test>"),
            ]
        )
        row = store.messages_by_message_id("<m1@example.test>")[0]
        account = RecordRef("account", "11111111-1111-1111-1111-111111111111", "Contoso deal")
        store.tracking.set_state(
            row.header.message_id,
            TrackState.TRACKED,
            activity_id="22222222-2222-2222-2222-222222222222",
            regarding=account,
            reason=Reason("user", "Tracked by you."),
        )
        facts = thread_facts(store, "Inbox")
        assert len(facts) == 4
        some = [facts[0].row_id, facts[1].row_id, row.id + 1000]
        other = store.messages_by_message_id("<m5@example.test>")[0].id
        assert {f.row_id for f in thread_facts_of(store, "Inbox", [*some, other])} == set(some[:2])
        conversations = folder_conversations(store, "Inbox")
        sizes = sorted(c.count for c in conversations)
        assert sizes == [1, 3]
        big = next(c for c in conversations if c.count == 3)
        assert big.tracked == 1
        assert banner_text(big) == (
            "Conversation of 3 messages: 1 tracked (regarding Contoso deal), 2 not tracked"
        )
    finally:
        store.close()


def test_damaged_stored_references_read_as_none(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store.sqlite")
    try:
        store.upsert_headers([make_header("Inbox", 1), make_header("Inbox", 2)])
        with store.transaction() as conn:  # not strings among them: left out
            conn.execute("UPDATE messages SET references_json = '[1, null, \"<a@x>\"]'")
        facts = {f.row_id: f for f in thread_facts(store, "Inbox")}
        assert sorted(f.references for f in facts.values()) == [("<a@x>",), ("<a@x>",)]
        store.upsert_headers([make_header("Inbox", 3)])
        with store.transaction() as conn:
            conn.execute("UPDATE messages SET references_json = '{not json' WHERE uid = '3'")
        assert {f.references for f in thread_facts(store, "Inbox")} == {(), ("<a@x>",)}
    finally:
        store.close()
