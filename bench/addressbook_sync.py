"""Figures ``first_population`` and ``delta`` of the address-book cache (issue 6).

``first_population``: the first sync of 100,000 contacts + 10,000 accounts + 10,000 leads
(``size`` = contacts; accounts and leads are a tenth each) from the emulator on loopback into a
fresh store, search index included, at the app's page size (``core.sync.address_books.PAGE_SIZE``),
against fetching the same change-tracking rows in 5,000-row pages with a bare httpx client and
discarding them. Target: ratio <= 1.2 (issue 21; it was 1.5), without a longer GUI stall
(``gui_folder`` max_stall: the app's page size stays ``PAGE_SIZE``).

``delta``: a sync after 100 contacts changed, against one 100-row page of contacts fetched
with a bare client. Target: ratio <= 3.

Run: ``python -m bench.addressbook_sync [--size N]`` or ``python -m bench addressbook_sync``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench._harness import emulator_process, figure, print_figures
from core.crm import BasicAuth, CrmClient
from core.crm.client import ODATA_HEADERS
from core.domain import demo_data
from core.store import Store
from core.sync.address_books import SOURCES, AddressBook

BENCH = "addressbook_sync"
DEFAULT_SIZE = 100_000
PAGE = 5000
CHANGES = 100
ROUNDS = 3


def _seed(db: Path, contacts: int) -> None:
    from crmserver.seed import seed_bulk, seed_demo
    from crmserver.storage import Storage

    storage = Storage(db)
    seed_demo(storage)
    seed_bulk(
        storage, contacts=contacts, accounts=max(1, contacts // 10), leads=max(1, contacts // 10)
    )
    storage.conn.close()


def _bare_fetch(api: str, entities: list[str]) -> int:
    """Fetch every change-tracking page of ``entities`` and throw the rows away."""
    rows = 0
    with httpx.Client(
        base_url=api,
        headers=ODATA_HEADERS,
        timeout=120,
        auth=(demo_data.ME.email, demo_data.DEMO_PASSWORD),
    ) as client:
        for logical in entities:
            source = SOURCES[logical]
            url: str | None = source.set_name
            params: dict[str, str] | None = {"$select": ",".join(source.select())}
            prefer = f"odata.maxpagesize={PAGE},odata.track-changes"
            if source.company_lookup:
                prefer += ',odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
            while url:
                body = client.get(url, params=params, headers={"Prefer": prefer}).json()
                rows += len(body["value"])
                url = body.get("@odata.nextLink")
                params = None
    return rows


def _bare_page(api: str) -> int:
    with httpx.Client(
        base_url=api,
        headers=ODATA_HEADERS,
        timeout=60,
        auth=(demo_data.ME.email, demo_data.DEMO_PASSWORD),
    ) as client:
        body = client.get(
            "contacts",
            params={"$select": ",".join(SOURCES["contact"].select())},
            headers={"Prefer": f"odata.maxpagesize={CHANGES}"},
        ).json()
        return len(body["value"])


ENTITIES = ["contact", "account", "lead"]


def run(size: int | None = None) -> list[dict[str, Any]]:
    contacts = size or DEFAULT_SIZE
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        db = Path(tmp) / "org.db"
        started = time.perf_counter()
        _seed(db, contacts)
        print(
            f"# seeded {contacts} contacts in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        with emulator_process(db) as url:
            api = url + "/api/data/v9.2/"
            _bare_page(api)  # warm up: connection, auth cache
            auth = BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD)
            stores: list[Store] = []
            try:
                with CrmClient(url, auth, timeout=120) as crm:
                    first, book = _first_population(api, crm, Path(tmp), stores)
                    return [first, _delta(api, crm, book)]
            finally:
                for store in stores:
                    store.close()


def _first_population(
    api: str, crm: CrmClient, tmp: Path, stores: list[Store]
) -> tuple[dict[str, Any], AddressBook]:
    """ROUNDS interleaved rounds of (baseline, ours), medians, each of ours into a fresh
    store (the machine's noise drifts; see harness). Returns the last round's book."""
    base_times, our_times = [], []
    fetched = cached = 0
    book: AddressBook | None = None
    for round_ in range(ROUNDS):
        t0 = time.perf_counter()
        fetched = _bare_fetch(api, ENTITIES)
        base_times.append(time.perf_counter() - t0)
        store = Store.open(tmp / f"store{round_}.sqlite")
        stores.append(store)
        book = AddressBook(store, contacts_scope="all", entities=ENTITIES)
        t0 = time.perf_counter()
        book.sync(crm)  # the app's page size (core.sync.address_books.PAGE_SIZE)
        our_times.append(time.perf_counter() - t0)
        cached = book.count()
    assert book is not None
    ours = statistics.median(our_times)
    baseline = statistics.median(base_times)
    first = figure(
        BENCH,
        "first_population",
        value=ours,
        unit="s",
        baseline=baseline,
        ratio=ours / baseline,
        target=1.2,
        rows_fetched=fetched,
        rows_cached=cached,
        rounds=ROUNDS,
    )
    return first, book


def _delta(api: str, crm: CrmClient, book: AddressBook) -> dict[str, Any]:
    """100 changed contacts per round, three rounds; the figure is the contacts delta (one
    entity set, as the baseline is one page of one set)."""
    ids = [
        r["contactid"]
        for r in crm.query(
            "contacts", select=["contactid"], top=CHANGES * 3, filter="emailaddress1 ne null"
        )
    ]
    ours_times, base_times, whole_times = [], [], []
    for round_ in range(3):
        for n, cid in enumerate(ids[round_ * CHANGES : (round_ + 1) * CHANGES]):
            crm.update(
                "contacts",
                cid,
                {"jobtitle": f"Changed {round_}.{n}", "lastname": f"Changed{round_}x{n}"},
            )
        t0 = time.perf_counter()
        result = book.sync_entity(crm, "contact")
        ours_times.append(time.perf_counter() - t0)
        assert result.upserted == CHANGES and not result.full, result
        t0 = time.perf_counter()
        book.sync(crm)  # all three sets, nothing changed
        whole_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _bare_page(api)
        base_times.append(time.perf_counter() - t0)
    d_ours = statistics.median(ours_times)
    d_base = statistics.median(base_times)
    return figure(
        BENCH,
        "delta",
        value=d_ours,
        unit="s",
        baseline=d_base,
        ratio=d_ours / d_base,
        target=3.0,
        changes=CHANGES,
        idle_sync_all_sets_s=round(statistics.median(whole_times), 6),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.addressbook_sync", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--size", type=int, default=None, help="contacts (default 100,000)")
    args = parser.parse_args(argv)
    print_figures(run(args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
