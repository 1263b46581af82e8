"""The address-book tables on their own (``core.store.address_books``), without a CRM: writes,
the search index's upkeep (indexed in place, or marked stale and rebuilt), sync state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import AddressBookRows, Store
from core.store.address_books import CachedRow, cached_row


@pytest.fixture
def rows(tmp_path: Path) -> Iterator[AddressBookRows]:
    with Store.open(tmp_path / "s.sqlite") as store:
        yield AddressBookRows(store)


def _index_ok(rows: AddressBookRows) -> None:
    rows.store.conn.execute("INSERT INTO ab_fts (ab_fts) VALUES ('integrity-check')")


def _contacts(*names: str) -> list[CachedRow]:
    return [
        cached_row("contact", f"id-{n.lower()}", n, f"{n}@Example.test", "Fabrikam", None)
        for n in names
    ]


def test_first_population_is_indexed_batch_by_batch(rows: AddressBookRows) -> None:
    assert rows.write("contact", _contacts("Ann", "Bob"), (), bulk=True, index_inserts=True) == 0
    assert rows.write("contact", _contacts("Cid"), (), bulk=True, index_inserts=True) == 0
    assert not rows.index_stale()
    _index_ok(rows)
    assert [e.record.name for e in rows.search("fabrikam", limit=10)] == ["Ann", "Bob", "Cid"]
    (bob,) = rows.with_email("bob@example.test")  # the key is the folded address
    assert (bob.record.entity, bob.email, bob.company) == (
        "contact",
        "Bob@Example.test",
        "Fabrikam",
    )


def test_a_record_seen_twice_marks_the_index_for_a_rebuild(rows: AddressBookRows) -> None:
    twice = _contacts("Ann", "Ann")
    rows.write("contact", twice, (), bulk=True, index_inserts=True)
    assert rows.index_stale() and rows.count("contact") == 1
    rows.rebuild_if_stale()
    assert not rows.index_stale()
    _index_ok(rows)
    assert [e.record.name for e in rows.search("ann")] == ["Ann"]


def test_drops_unseen_and_other_entities(rows: AddressBookRows) -> None:
    rows.write("contact", _contacts("Ann", "Bob", "Cid"), ())
    rows.write("queue", [cached_row("queue", "q1", "Support", "support@x.test", "", None)], ())
    assert rows.is_internal_email("support@x.test") and not rows.is_internal_email("ann@x.test")
    assert rows.write("contact", (), ["id-cid", "id-nobody"]) == 1
    assert rows.drop_unseen("contact", {"id-ann"}) == 1
    rows.mark_index_stale()
    rows.rebuild_if_stale()
    assert [e.record.name for e in rows.browse()] == ["Ann", "Support"]
    rows.keep_only(["contact"])
    rows.rebuild_if_stale()
    assert rows.count() == rows.count("contact") == 1
    assert rows.search("support") == []
    _index_ok(rows)


def test_sync_state_round_trip_and_reset(rows: AddressBookRows) -> None:
    assert rows.sync_state("lead") is None and rows.last_synced("lead") is None
    rows.write("lead", [cached_row("lead", "l1", "Lee", "lee@x.test", "Lee Ltd", "me")], ())
    rows.save_sync_state("lead", "all", "https://crm.test/leads?$deltatoken=1")
    state = rows.sync_state("lead")
    assert state is not None and (state.scope, state.delta_link) == (
        "all",
        "https://crm.test/leads?$deltatoken=1",
    )
    assert rows.last_synced("lead") is not None
    count = rows.store.conn.execute("SELECT record_count FROM ab_sync").fetchone()[0]
    assert count == 1
    rows.reset("lead")
    assert rows.sync_state("lead") is None and rows.count() == 0
    assert rows.search("lee") == [] and not rows.index_stale()
    _index_ok(rows)
