"""The address-book cache against the real emulator: first population, deltas, scopes,
fallbacks, search and look-up (offline, from the store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.resolution import Resolver
from core.store import Store
from core.sync.address_books import AddressBook
from crmserver import RunningServer


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.sqlite")
    yield s
    s.close()


@pytest.fixture
def crm(fresh_crm: RunningServer) -> Iterator[CrmClient]:
    with CrmClient(fresh_crm.url, BasicAuth(demo_data.ME.email, "demo")) as client:
        yield client


@pytest.fixture
def colleague(fresh_crm: RunningServer) -> Iterator[CrmClient]:
    user = demo_data.COLLEAGUES[0]
    with CrmClient(fresh_crm.url, BasicAuth(user.email, "demo")) as client:
        yield client


def test_first_population_then_offline_lookup(store: Store, crm: CrmClient) -> None:
    book = AddressBook(store, contacts_scope="all", internal_domains=[demo_data.INTERNAL_DOMAIN])
    results = book.sync(crm, page_size=3)
    assert all(r.full and r.error is None for r in results)
    by_entity = {r.entity: r.upserted for r in results}
    assert by_entity["contact"] == len(demo_data.CONTACTS)
    assert by_entity["account"] == len(demo_data.ACCOUNTS)
    assert by_entity["lead"] == len(demo_data.LEADS)
    assert by_entity["systemuser"] == len(demo_data.USERS)
    assert by_entity["queue"] == 2 and by_entity["equipment"] == 1
    crm.close()  # everything below works from the store alone

    contact = demo_data.CONTACTS[0]
    (ref,) = book.lookup(contact.email.upper())
    assert (ref.entity, ref.name) == ("contact", contact.full_name)
    (me,) = book.lookup(demo_data.ME.email)
    assert me.entity == "systemuser"
    assert book.is_internal(demo_data.ME.email) and book.is_internal(
        f"support@{demo_data.INTERNAL_DOMAIN}"
    )
    assert book.is_internal(f"nobody@{demo_data.INTERNAL_DOMAIN}")  # own domain
    assert not book.is_internal(contact.email)
    assert book.lookup("stranger@nowhere.example") == []
    assert isinstance(book, Resolver)


def test_search_by_name_email_and_company(store: Store, crm: CrmClient) -> None:
    book = AddressBook(store, contacts_scope="all")
    book.sync(crm)
    contact = demo_data.CONTACTS[0]
    hits = book.search(contact.first)
    assert any(h.record.name == contact.full_name for h in hits)
    hits = book.search(contact.email.split("@")[1])  # the domain alone
    assert any(h.email == contact.email for h in hits)
    company_hits = book.search(contact.account.split()[0], entities=["contact"])
    assert company_hits and all(h.company == contact.account for h in company_hits)
    lead = demo_data.LEADS[0]
    assert any(h.record.entity == "lead" for h in book.search(lead.company))
    assert book.search("") == [] and book.search("zzzqqq") == []
    assert book.search('"; DROP TABLE ab_records; --') == []
    munchen = [a for a in demo_data.ACCOUNTS if a.city == "München"]
    if munchen:  # diacritics fold: "Litware" found as typed, accents ignored in names
        assert book.search(munchen[0].name.split()[0].lower())


def test_delta_applies_changes_and_deletions(store: Store, crm: CrmClient) -> None:
    book = AddressBook(store, contacts_scope="all", entities=["contact"])
    book.sync(crm)
    before = book.count("contact")
    rows = list(crm.query("contacts", select=["fullname", "emailaddress1"], orderby="fullname asc"))
    new_id = crm.create(
        "contacts",
        {
            "firstname": "Delta",
            "lastname": "Newcomer",
            "emailaddress1": "delta.newcomer@example.test",
        },
    )
    crm.create("contacts", {"firstname": "No", "lastname": "Mail"})  # never cached
    crm.update("contacts", rows[0]["contactid"], {"lastname": "Renamed"})
    crm.update("contacts", rows[1]["contactid"], {"statecode": 1, "statuscode": 2})
    crm.update("contacts", rows[2]["contactid"], {"emailaddress1": None})
    crm.delete("contacts", rows[3]["contactid"])

    (result,) = book.sync(crm)
    assert not result.full and result.error is None
    assert book.count("contact") == before + 1 - 3
    assert [r.id for r in book.lookup("delta.newcomer@example.test")] == [new_id]
    assert book.lookup(rows[0]["emailaddress1"])[0].name.endswith("Renamed")
    for gone in rows[1:4]:
        assert book.lookup(gone["emailaddress1"]) == []
    assert book.search("Newcomer")[0].record.id == new_id
    assert not any(h.record.id == rows[3]["contactid"] for h in book.search(rows[3]["fullname"]))
    (quiet,) = book.sync(crm)
    assert (quiet.full, quiet.upserted, quiet.removed) == (False, 0, 0)


def test_only_contacts_i_own(store: Store, crm: CrmClient, colleague: CrmClient) -> None:
    theirs = colleague.create(
        "contacts",
        {"firstname": "Theirs", "lastname": "Only", "emailaddress1": "theirs.only@example.test"},
    )
    book = AddressBook(store, contacts_scope="owned", entities=["contact"])
    book.sync(crm)
    assert book.lookup("theirs.only@example.test") == []
    assert book.count("contact") == len(demo_data.CONTACTS)
    # ownership moves to me: the delta brings it in; scope change to "all" re-reads
    me = crm.who_am_i().user_id
    colleague.update("contacts", theirs, {"ownerid@odata.bind": f"/systemusers({me})"})
    book.sync(crm)
    assert [r.id for r in book.lookup("theirs.only@example.test")] == [theirs]
    crm.update(
        "contacts",
        theirs,
        {"ownerid@odata.bind": "/systemusers(" + colleague.who_am_i().user_id + ")"},
    )
    book.sync(crm)
    assert book.lookup("theirs.only@example.test") == []
    everyone = AddressBook(store, contacts_scope="all", entities=["contact"])
    (result,) = everyone.sync(crm)
    assert result.full
    assert [r.id for r in everyone.lookup("theirs.only@example.test")] == [theirs]


def test_invalid_delta_link_falls_back_to_full_read(store: Store, crm: CrmClient) -> None:
    book = AddressBook(store, contacts_scope="all", entities=["account"])
    book.sync(crm)
    with store.transaction() as conn:
        conn.execute(
            "UPDATE ab_sync SET delta_link = ? WHERE entity = 'account'",
            (crm.api_url + "accounts?$select=name&$deltatoken=expired",),
        )
        # a record the CRM no longer has must go with the full read
        conn.execute(
            "INSERT INTO ab_records (entity, record_id, name, email, email_key)"
            " VALUES ('account', 'stale-id', 'Stale', 'stale@x.test', 'stale@x.test')"
        )
    (result,) = book.sync(crm)
    assert result.full and result.removed == 1
    assert book.lookup("stale@x.test") == []
    assert book.count("account") == len(demo_data.ACCOUNTS)
    assert book.search("Stale") == []


def test_entities_dropped_from_configuration_are_forgotten(store: Store, crm: CrmClient) -> None:
    AddressBook(store, contacts_scope="all").sync(crm)
    book = AddressBook(store, contacts_scope="all", entities=["account"])
    book.sync(crm)
    assert book.count() == book.count("account") == len(demo_data.ACCOUNTS)
    assert book.search(demo_data.CONTACTS[0].last) == []


def test_reset_and_unknown_settings(store: Store, crm: CrmClient) -> None:
    book = AddressBook(store, contacts_scope="all", entities=["lead"])
    book.sync(crm)
    assert book.last_synced("lead") is not None
    book.reset()
    assert book.count() == 0 and book.last_synced("lead") is None
    assert book.search(demo_data.LEADS[0].last) == []
    with pytest.raises(ValueError, match="contacts_scope"):
        AddressBook(store, contacts_scope="mine")
    with pytest.raises(ValueError, match="opportunity"):
        AddressBook(store, entities=["opportunity"])


def test_a_refused_entity_does_not_stop_the_others(store: Store, fresh_crm: RunningServer) -> None:
    # One source points at a set the CRM does not have (as a set the user may not read).
    from dataclasses import replace

    from core.domain.entities import entity
    from core.sync.address_books import SOURCES, Source

    nowhere = replace(entity("queue"), entity_set="nosuchset")
    sources = {**SOURCES, "queue": Source(nowhere)}
    with CrmClient(fresh_crm.url, BasicAuth(demo_data.ME.email, "demo")) as crm:
        results = AddressBook(
            store, contacts_scope="all", entities=["queue", "account"], sources=sources
        ).sync(crm)
    errors = {r.entity: r.error for r in results}
    assert errors["queue"] is not None and errors["queue"].status in (400, 404)
    assert errors["account"] is None


def test_browse_by_name(store: Store, crm: CrmClient) -> None:
    book = AddressBook(store, contacts_scope="all")
    book.sync(crm)
    names = [e.record.name for e in book.browse(limit=500)]
    assert names == sorted(names, key=str.casefold) and len(names) == book.count()
    page = book.browse("account", offset=1, limit=2)
    assert [e.record.name for e in page] == sorted(a.name for a in demo_data.ACCOUNTS)[1:3]


def test_non_ascii_addresses_match_address_key(store: Store, crm: CrmClient) -> None:
    from core.domain.model import Address

    crm.create(
        "contacts",
        {"firstname": "Émile", "lastname": "Zoë", "emailaddress1": "  ÉMILE.Zoë@Exämple.test "},
    )
    book = AddressBook(store, contacts_scope="all", entities=["contact"])
    book.sync(crm)  # full read: SQLite's JSON path
    key = Address("émile.zoë@exämple.test").key
    assert [r.name for r in book.lookup(key)] == ["Émile Zoë"]
    assert book.lookup("ÉMILE.ZOË@EXÄMPLE.TEST")
    crm.create(
        "contacts", {"firstname": "Ödön", "lastname": "Ü", "emailaddress1": "ÖDÖN@Exämple.test"}
    )
    book.sync(crm)  # delta: the Python path
    assert [r.name for r in book.lookup(Address("Ödön@exämple.test").key)] == ["Ödön Ü"]
    assert book.search("exämple") and book.search("emile")
