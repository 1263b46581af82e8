"""Benchmark the tracked state read from the CRM (issue 13), with a 100,000-message mailbox of
which 20,000 mails are tracked in the CRM:

- ``first_pull``: the first full pull of the CRM's e-mails into the local copy, updating the
  stored messages they name, against fetching the same pages (same columns, page size and
  annotations) with a bare HTTP client and discarding them. Target: ratio <= 1.5.
- ``refresh``: a refresh after 10 CRM-side changes (7 mails tracked from elsewhere, 3
  untracked: the change-tracking delta and the local updates), against one 100-row page of
  e-mails. Target: ratio <= 3.

The emulator runs in its own process here, as a CRM does: the client's parsing and SQLite
writes then overlap the server's work instead of sharing one interpreter lock with it.

Run: ``python -m bench tracked_state [--size N]`` (N = mailbox size; a fifth of it tracked).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench._harness import emulator_process, figure, median_time, print_figures
from core.crm import BasicAuth, CrmClient
from core.crm.client import LOOKUP_ANNOTATIONS
from core.domain.correlation import Correlator
from core.domain.crm_settings import OrgSettings
from core.domain.model import Address, MailRef, MessageHeader
from core.store import SqliteCorrelationIndex, Store
from core.store.crm_emails import CrmEmailCopy
from core.sync.tracked_state import (
    EMAIL_COLUMNS,
    PAGE_SIZE,
    RefreshResult,
    TrackedStateRefresh,
)
from crmserver.entities import ENTITIES
from crmserver.seed import _base, add_user, ensure_organisation
from crmserver.storage import Storage

DEFAULT_SIZE = 100_000
CHANGES = 10
USER = "bench.user@crm-users.example"
PASSWORD = "bench"


def message_id(n: int) -> str:
    return f"<bench.{n}@customer{n % 997}.example>"


def seed_crm(db: Path, tracked: int) -> str:
    """The emulator's database: one user who owns ``tracked`` e-mail activities."""
    storage = Storage(db)
    ensure_organisation(storage)
    me = add_user(storage, first="Bench", last="User", email=USER, password=PASSWORD)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    rows = [
        _base(
            "email",
            {
                "activityid": f"00000000-0000-4000-8000-{n:012d}",
                "subject": f"Order {n} CRM:0001{n % 1000:03d}",
                "messageid": message_id(n),
                "directioncode": False,
                "sender": f"buyer{n}@customer{n % 997}.example",
                "torecipients": USER,
                "senton": (start + timedelta(minutes=n)).isoformat(),
                "statecode": 1,
                "statuscode": 4,
            },
            me,
        )
        for n in range(tracked)
    ]
    for i in range(0, len(rows), 5000):
        storage.insert_many(ENTITIES["email"], rows[i : i + 5000])
    storage.close()
    return me


def seed_store(path: Path, size: int) -> None:
    """The mailbox: ``size`` messages; every fifth one's Message-ID is tracked in the CRM."""
    store = Store.open(path)
    start = datetime(2021, 1, 1, tzinfo=UTC)
    batch: list[MessageHeader] = []
    for n in range(size):
        mid = message_id(n // 5) if n % 5 == 0 else f"<local.{n}@mail.example>"
        batch.append(
            MessageHeader(
                MailRef("Inbox", str(n + 1)),
                mid,
                subject=f"Order {n}",
                sender=Address(f"buyer{n}@customer{n % 997}.example"),
                to=(Address(USER),),
                date=start + timedelta(minutes=n),
                size=4000,
            )
        )
        if len(batch) == 5000:
            store.upsert_headers(batch)
            batch = []
    store.upsert_headers(batch)
    store.close()


def refresh(store: Store, crm: CrmClient, me: str) -> RefreshResult:
    correlator = Correlator(OrgSettings(), SqliteCorrelationIndex(store))
    return TrackedStateRefresh(store, crm, correlator, me).run()


def bare_pull(c: httpx.Client) -> int:
    """Baseline: the same pages, read and decoded, nothing kept."""
    headers = {"Prefer": f"odata.track-changes,odata.maxpagesize={PAGE_SIZE},{LOOKUP_ANNOTATIONS}"}
    r = c.get("emails", params={"$select": ",".join(EMAIL_COLUMNS)}, headers=headers)
    rows = 0
    while True:
        body = r.raise_for_status().json()
        rows += len(body["value"])
        link = body.get("@odata.nextLink")
        if not link:
            return rows
        r = c.get(link, headers=headers)


def run(size: int | None = None) -> list[dict[str, object]]:
    size = size or DEFAULT_SIZE
    tracked = size // 5
    with tempfile.TemporaryDirectory(prefix="tracked-state-bench-") as tmp:
        root = Path(tmp)
        me = seed_crm(root / "crm.db", tracked)
        seed_store(root / "seed.sqlite", size)
        with (
            emulator_process(root / "crm.db") as url,
            CrmClient(url, BasicAuth(USER, PASSWORD), timeout=300) as crm,
            httpx.Client(
                base_url=url + "/api/data/v9.2/",
                auth=(USER, PASSWORD),
                headers={"Accept": "application/json", "OData-Version": "4.0"},
                timeout=300,
            ) as c,
        ):
            assert bare_pull(c) == tracked
            stores: list[Store] = []
            try:
                pulled = measure_first_pull(root, crm, c, me, stores, size)
                return [pulled, measure_refresh(stores[-1], crm, c, me, size)]
            finally:
                for store in stores:
                    store.close()


def measure_first_pull(
    root: Path, crm: CrmClient, c: httpx.Client, me: str, stores: list[Store], size: int
) -> dict[str, object]:
    """``first_pull``: each run on a fresh copy of the seeded mailbox (kept in ``stores``)."""
    tracked = size // 5

    def first_pull() -> None:
        path = root / f"run{len(stores)}.sqlite"
        shutil.copy(root / "seed.sqlite", path)
        store = Store.open(path)
        stores.append(store)
        result = refresh(store, crm, me)
        assert result.full and len(result.changes) == tracked, result

    ours = median_time(first_pull, repeat=3)
    base = median_time(lambda: bare_pull(c), repeat=3)
    return figure(
        "tracked_state",
        "first_pull",
        value=ours,
        unit="s",
        baseline=base,
        ratio=ours / base,
        target=1.5,
        size=size,
        tracked=tracked,
    )


def make_changes(c: httpx.Client) -> None:
    """The CRM-side changes a refresh reads: 7 mails tracked from elsewhere, 3 untracked."""
    for i in range(CHANGES):
        if i % 3 == 2:  # untracked in the CRM
            c.delete(f"emails(00000000-0000-4000-8000-{i * 37:012d})").raise_for_status()
        else:  # tracked in the CRM (from elsewhere) among mail not tracked here
            c.post(
                "emails",
                json={
                    "subject": f"Tracked elsewhere {i}",
                    "messageid": f"<local.{i * 5 + 1}@mail.example>",
                    "directioncode": False,
                },
            ).raise_for_status()


def measure_refresh(
    store: Store, crm: CrmClient, c: httpx.Client, me: str, size: int
) -> dict[str, object]:
    """``refresh``: the same 10 changes read again and again from the same delta link."""
    copy = CrmEmailCopy(store)
    link = copy.state().delta_link
    assert link
    make_changes(c)

    def one_refresh() -> None:
        copy.save_delta_link(link)  # the same 10 changes each time
        result = refresh(store, crm, me)
        assert not result.full and result.emails + result.removed == CHANGES, result

    def plain_page() -> None:
        body = c.get(
            "emails",
            params={"$select": ",".join(EMAIL_COLUMNS)},
            headers={"Prefer": "odata.maxpagesize=100"},
        ).json()
        assert len(body["value"]) == 100

    ours = median_time(one_refresh, repeat=5)
    base = median_time(plain_page, repeat=5)
    return figure(
        "tracked_state",
        "refresh",
        value=ours,
        unit="s",
        baseline=base,
        ratio=ours / base,
        target=3,
        size=size,
        changes=CHANGES,
    )


if __name__ == "__main__":
    print_figures(run(int(sys.argv[1]) if len(sys.argv) > 1 else None))
