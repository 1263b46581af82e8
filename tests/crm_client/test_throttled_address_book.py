"""The address book's first population as a good citizen: 2,000 contacts read one per page
(2,000 requests) from an emulator that admits a few hundred a second. The sync is throttled,
waits out every Retry-After (no violation), and stores every contact exactly once."""

from __future__ import annotations

from pathlib import Path

from core.store import Store
from core.sync.address_books import AddressBook
from crmserver.limits import Limits, ProtectionStats
from crmserver.seed import add_user, seed_bulk
from crmserver.storage import Storage
from tests.crm_client.test_throttling import crm_for, limited

CONTACTS = 2000
READER = "book.reader@crm-users.example"


def test_a_2000_page_first_population_completes_under_the_limit(tmp_path: Path) -> None:
    db = tmp_path / "bulk.db"
    storage = Storage(db)
    add_user(storage, first="Book", last="Reader", email=READER, password="pw")
    seed_bulk(storage, contacts=CONTACTS)
    expected = {
        str(r["contactid"]).lower()
        for r in storage.query(
            "SELECT contactid FROM contact WHERE statecode = 0 AND emailaddress1 IS NOT NULL"
            " AND emailaddress1 != ''"
        )
    }
    total = int(storage.scalar("SELECT COUNT(*) FROM contact"))
    storage.close()
    assert total == CONTACTS and len(expected) > CONTACTS * 0.9
    stats = ProtectionStats()
    pages: list[int] = []
    with (
        limited(db, Limits(requests=300, window=1), stats, seed=None) as server,
        crm_for(server, READER, "pw") as crm,
        Store.open(tmp_path / "profile.sqlite") as store,
    ):
        book = AddressBook(store, contacts_scope="all", entities=["contact"], bulk_rows=500)
        real = crm.track_changes_pages

        def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            for page in real(*args, **kwargs):
                pages.append(len(page.rows))
                yield page

        crm.track_changes_pages = counted  # type: ignore[method-assign]  # count the pages
        (result,) = book.sync(crm, page_size=1)
        stored = [
            str(r[0]).lower()
            for r in store.conn.execute("SELECT record_id FROM ab_records WHERE entity='contact'")
        ]
        count = book.count("contact")
    assert result.full and result.error is None
    assert len(pages) >= CONTACTS and max(pages) == 1  # one contact per page, every one read
    assert sorted(stored) == sorted(expected)  # every contact kept, none twice
    assert result.upserted == len(expected) == count
    assert stats.throttled >= 1  # the limit did bite …
    assert stats.violations == 0  # … and no request came inside a Retry-After window
