"""One contract suite for the correlation index: in memory and SQLite behave the same."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.domain.conversation_index import ConversationIndex
from core.domain.correlation import (
    CorrelationIndex,
    CorrelationMethod,
    Correlator,
    InMemoryCorrelationIndex,
    TrackedEmail,
)
from core.domain.crm_settings import OrgSettings
from core.domain.model import Address, RecordRef
from core.store import SqliteCorrelationIndex, Store
from tests.core_store.conftest import make_header

ACCOUNT = RecordRef("account", "a-1", "Fabrikam Inc.")


@pytest.fixture(params=["memory", "sqlite"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CorrelationIndex]:
    if request.param == "memory":
        yield InMemoryCorrelationIndex()
        return
    store = Store.open(tmp_path / "s.sqlite")
    yield SqliteCorrelationIndex(store)
    store.close()


def email(activity_id: str, **kw: object) -> TrackedEmail:
    return TrackedEmail(activity_id=activity_id, **kw)  # type: ignore[arg-type]


def test_is_a_correlation_index(index: CorrelationIndex) -> None:
    assert isinstance(index, CorrelationIndex)


def test_lookups_by_every_key(index: CorrelationIndex) -> None:
    sent = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    first = email(
        "a1",
        regarding=ACCOUNT,
        message_id="<x@y>",
        token="CRM:0001001",
        conversation_index="AQ==",
        conversation_root="root1",
        smart_key="quote",
        addresses=frozenset({"a@x", "b@x"}),
        subject="Quote",
        sent_on=sent,
    )
    index.add(first)
    index.add(email("a2", token="crm:0001001", conversation_root="root1", smart_key="quote"))
    assert index.by_message_id("<x@y>") == first
    assert index.by_message_id("<nope@y>") is None
    assert index.by_token("Crm:0001001") == first  # case-insensitive, first stored wins
    assert [e.activity_id for e in index.by_conversation_root("root1")] == ["a1", "a2"]
    assert [e.activity_id for e in index.by_smart_key("quote")] == ["a1", "a2"]
    assert list(index.by_smart_key("other")) == []


def test_add_replaces_and_remove_forgets(index: CorrelationIndex) -> None:
    index.add(email("a1", token="CRM:1", smart_key="k", message_id="<m@x>"))
    index.add(email("a2", token="CRM:1", smart_key="k"))
    index.add(email("a1", token="CRM:1", smart_key="k2", message_id="<m@x>", regarding=ACCOUNT))
    assert index.by_token("CRM:1").activity_id == "a2"  # type: ignore[union-attr]
    assert [e.activity_id for e in index.by_smart_key("k")] == ["a2"]
    assert index.by_message_id("<m@x>").regarding == ACCOUNT  # type: ignore[union-attr]
    index.remove("a1")
    index.remove("unknown")
    assert index.by_message_id("<m@x>") is None
    assert list(index.by_smart_key("k2")) == []


def test_correlator_on_the_sqlite_index(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite") as store:
        correlator = Correlator(OrgSettings(), SqliteCorrelationIndex(store))
        thread = ConversationIndex.new()
        original = make_header(
            "Sent", 1, subject="Quote for Q3 CRM:0001001", thread_index=thread.header
        )
        correlator.track(original, "act-1", ACCOUNT)
        reply = make_header(
            "Inbox",
            2,
            subject="RE: Quote for Q3 CRM:0001001",
            in_reply_to="<m1@example.test>",
            thread_index=thread.child().header,
            sender=Address("buyer@fabrikam.example"),
        )
        found = correlator.correlate(reply)
        assert found is not None and found.regarding == ACCOUNT
        assert found.method is CorrelationMethod.IN_REPLY_TO
        # the index survives reopening the store
    with Store.open(tmp_path / "s.sqlite") as store:
        assert SqliteCorrelationIndex(store).get("act-1") is not None
