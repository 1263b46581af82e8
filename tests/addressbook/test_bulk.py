"""Full reads at some scale: many pages and transactions, a re-read that drops what the CRM
no longer has, and a first population interrupted half-way (the search index must come back
whole, never corrupt)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.store import Store
from core.sync.address_books import AddressBook
from crmserver import RunningServer, Settings, run_in_thread

CONTACTS = 1200


@pytest.fixture
def bulk_crm(tmp_path: Path) -> Iterator[RunningServer]:
    from crmserver.seed import seed_bulk, seed_demo
    from crmserver.storage import Storage

    db = tmp_path / "bulk-org.db"
    storage = Storage(db)
    seed_demo(storage)
    seed_bulk(storage, contacts=CONTACTS, accounts=40, leads=100)
    storage.conn.close()
    with run_in_thread(Settings(db_path=db)) as server:
        yield server


@pytest.fixture
def crm(bulk_crm: RunningServer) -> Iterator[CrmClient]:
    with CrmClient(bulk_crm.url, BasicAuth(demo_data.ME.email, "demo")) as client:
        yield client


def _expected(crm: CrmClient) -> int:
    return sum(
        1
        for _ in crm.query(
            "contacts", select=["contactid"], filter="statecode eq 0 and emailaddress1 ne null"
        )
    )


def _fts_ok(store: Store) -> None:
    store.conn.execute("INSERT INTO ab_fts (ab_fts) VALUES ('integrity-check')")


def test_many_pages_and_a_reread(tmp_path: Path, crm: CrmClient) -> None:
    expected = _expected(crm)
    seen: list[int] = []
    with Store.open(tmp_path / "s.sqlite") as store:
        book = AddressBook(store, contacts_scope="all", entities=["contact"], bulk_rows=250)
        (result,) = book.sync(crm, page_size=100, progress=lambda _e, n: seen.append(n))
        assert result.full and result.upserted == book.count("contact") == expected
        assert len(seen) >= expected // 250 and seen == sorted(seen)
        _fts_ok(store)

        doomed = [
            r["contactid"]
            for r in crm.query(
                "contacts", select=["contactid"], filter="emailaddress1 ne null", top=7
            )
        ]
        for cid in doomed:
            crm.delete("contacts", cid)
        book.reset("contact")  # forget the delta link: a full read again …
        (again,) = book.sync(crm, page_size=100)
        assert again.full and book.count("contact") == expected - 7
        _fts_ok(store)

        with store.transaction() as conn:  # … or with rows kept and the link expired
            conn.execute(
                "UPDATE ab_sync SET delta_link = ?",
                (crm.api_url + "contacts?$select=fullname&$deltatoken=expired",),
            )
        crm.delete(
            "contacts",
            next(
                crm.query("contacts", select=["contactid"], filter="emailaddress1 ne null", top=1)
            )["contactid"],
        )
        (third,) = book.sync(crm, page_size=100)
        assert third.full and third.removed == 1
        assert book.count("contact") == expected - 8
        _fts_ok(store)


class Interrupted(Exception):
    pass


def test_interrupted_first_population_recovers(tmp_path: Path, crm: CrmClient) -> None:
    expected = _expected(crm)

    def stop_half_way(_entity: str, count: int) -> None:
        if count >= CONTACTS // 2:
            raise Interrupted

    with Store.open(tmp_path / "s.sqlite") as store:
        book = AddressBook(store, contacts_scope="all", entities=["contact"], bulk_rows=200)
        with pytest.raises(Interrupted):
            book.sync(crm, page_size=100, progress=stop_half_way)
        assert 0 < book.count("contact") < expected
        _fts_ok(store)  # rebuilt on the way out
    with Store.open(tmp_path / "s.sqlite") as store:
        book = AddressBook(store, contacts_scope="all", entities=["contact"], bulk_rows=200)
        (result,) = book.sync(crm, page_size=100)
        assert result.full and book.count("contact") == expected
        _fts_ok(store)
        some = book.browse("contact", limit=1)[0]
        assert some in book.search(some.email)
        # and deltas work on top of it
        crm.update("contacts", some.record.id, {"firstname": "Zyxwvut"})
        (delta,) = book.sync(crm)
        assert not delta.full and delta.upserted == 1
        assert book.search("zyxwvut")[0].record.id == some.record.id
        _fts_ok(store)
