"""The regarding picker's search against the real emulator: cache first (offline), then the
CRM (accounts, contacts, leads, open opportunities, active cases), a contact's account and its
opportunities/cases, recently used records kept in the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.crm import BasicAuth, CrmClient, CrmUnavailable
from core.domain import demo_data
from core.domain.model import RecordRef
from core.store import Store
from core.sync.address_books import AddressBook
from core.workspace.regarding import RECENT_LIMIT, RegardingHit, RegardingSearch, browse, group_hits
from crmserver import RunningServer


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.sqlite")
    yield s
    s.close()


@pytest.fixture
def crm(crm_server: RunningServer) -> Iterator[CrmClient]:
    with CrmClient(crm_server.url, BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD)) as c:
        yield c


@pytest.fixture
def cached(store: Store, crm: CrmClient) -> Store:
    AddressBook(store, contacts_scope="all").sync(crm)
    return store


def test_local_search_uses_the_cache_only_and_groups_by_type(cached: Store) -> None:
    offline = CrmClient("http://127.0.0.1:9", BasicAuth("x", "y"))  # nothing listens there
    search = RegardingSearch(lambda: cached, offline)
    hits = search.local("fabrikam")
    groups = [h.group for h in hits]
    assert groups == sorted(groups, key=["account", "contact", "lead"].index)
    names = [h.record.name for h in hits]
    assert "Fabrikam Inc." in names and "Jane Doe" in names
    assert all(h.source == "cache" for h in hits)
    assert not any(h.record.entity in ("systemuser", "queue") for h in search.local("support"))
    with pytest.raises(CrmUnavailable):
        search.remote("fabrikam")


def test_remote_search_finds_opportunities_and_cases(cached: Store, crm: CrmClient) -> None:
    search = RegardingSearch(lambda: cached, crm)
    hits = search.remote("fabrikam")
    entities = {h.record.entity for h in hits}
    assert {"account", "contact", "opportunity"} <= entities, hits
    assert all(h.source == "crm" for h in hits)
    cases = search.remote("VAT")
    assert [h.record.name for h in cases if h.group == "incident"] == ["Invoice shows wrong VAT"]
    assert search.remote("a name nobody has") == []
    assert search.remote("o'nobody-by-this-name") == []  # quotes are escaped, no OData error


def test_related_gives_the_contacts_account_and_its_open_work(
    cached: Store, crm: CrmClient
) -> None:
    search = RegardingSearch(lambda: cached, crm)
    (jane,) = [h.record for h in search.local("jane doe") if h.record.entity == "contact"]
    related = search.related(jane)
    assert related[0].record.entity == "account"
    assert related[0].record.name == "Fabrikam Inc."
    assert all(h.parent == jane for h in related)
    kinds = {h.record.entity for h in related}
    assert {"opportunity", "incident"} <= kinds


def test_recently_used_records_come_first_and_persist(cached: Store, tmp_path: Path) -> None:
    search = RegardingSearch(lambda: cached)
    for i in range(RECENT_LIMIT + 3):
        search.remember(RecordRef("account", f"id-{i}", f"Recent {i}"))
    search.remember(RecordRef("account", "id-3", "Recent 3"))
    recent = search.recent()
    assert len(recent) == RECENT_LIMIT
    assert recent[0].record.id == "id-3"
    assert search.local("")[0].record.id == "id-3"  # blank search shows recent ones
    reopened = Store.open(cached.path)
    try:
        assert RegardingSearch(lambda: reopened).recent()[0].record.name == "Recent 3"
    finally:
        reopened.close()
    hits = search.local("recent 12")
    assert hits[0].group == "recent" and hits[0].record.id == "id-12"


def test_damaged_recent_entries_are_skipped(store: Store) -> None:
    store.snapshots.save(
        "recent_regarding", {"records": [{"nope": 1}, {"entity": "lead", "id": "L1"}]}
    )
    assert [h.record.id for h in RegardingSearch(lambda: store).recent()] == ["L1"]


def test_group_hits_orders_and_deduplicates() -> None:
    a = RegardingHit(RecordRef("contact", "C1", "c"), "contact")
    b = RegardingHit(RecordRef("account", "A1", "a"), "account")
    r = RegardingHit(RecordRef("contact", "c1", "c"), "recent", source="recent")
    assert group_hits([a, b, r, a]) == [b, a]  # the recent copy of C1 is a duplicate
    assert group_hits([r, a, b]) == [r, b]


def test_browse_lists_the_cache_by_name(cached: Store) -> None:
    accounts = browse(cached, "account")
    names = [h.record.name for h in accounts]
    assert names == sorted(names, key=str.casefold)
    assert len(accounts) == len(demo_data.ACCOUNTS)
    assert len(browse(cached, limit=5)) == 5
