"""Benchmark ``page_all``: page through N contacts (5,000 per page) over loopback HTTP from the
emulator, against reading the same rows straight from the SQLite file and encoding them to
JSON in the same run. Target: ratio <= 3.

Run: ``python -m bench crm_paging [--size N]`` or ``python -m bench.crm_paging [N]``.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench._harness import figure, median_time, print_figures
from crmserver import RunningServer, Settings, run_in_thread
from crmserver.seed import seed_bulk
from crmserver.storage import Storage

DEFAULT_SIZE = 100_000
PAGE = 5000
USER = "bench.user@crm-users.example"


@contextmanager
def seeded_server(size: int) -> Iterator[tuple[RunningServer, Path]]:
    """A server over a fresh database with ``size`` contacts and one user."""
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        storage = Storage(db)
        from crmserver.seed import add_user

        add_user(storage, first="Bench", last="User", email=USER, password="bench")
        seed_bulk(storage, accounts=max(1, size // 100), contacts=size)
        storage.close()
        with run_in_thread(Settings(db_path=db)) as server:
            yield server, db


def client(server: RunningServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url + "/api/data/v9.2/",
        auth=(USER, "bench"),
        headers={"Accept": "application/json", "OData-Version": "4.0"},
        timeout=300,
    )


def page_all_http(c: httpx.Client) -> int:
    rows = 0
    headers = {"Prefer": f"odata.maxpagesize={PAGE}"}
    r = c.get("contacts", headers=headers)
    while True:
        r.raise_for_status()
        body = r.json()
        rows += len(body["value"])
        link = body.get("@odata.nextLink")
        if not link:
            return rows
        r = c.get(link, headers=headers)


def read_db_json(db: Path) -> int:
    """Baseline: the same rows and columns, straight from the file, encoded to JSON by page."""
    conn = sqlite3.connect(db)
    cur = conn.execute("SELECT * FROM contact ORDER BY contactid")
    names = [d[0] for d in cur.description]
    rows = 0
    while batch := cur.fetchmany(PAGE):
        json.dumps({"value": [dict(zip(names, r, strict=True)) for r in batch]})
        rows += len(batch)
    conn.close()
    return rows


def run(size: int | None = None) -> list[dict[str, object]]:
    size = size or DEFAULT_SIZE
    with seeded_server(size) as (server, db), client(server) as c:
        got = page_all_http(c)
        assert got == size, f"paged {got} contacts, expected {size}"
        ours = median_time(lambda: page_all_http(c), repeat=3)
        base = median_time(lambda: read_db_json(db), repeat=3)
    return [
        figure(
            "crm_paging",
            "page_all",
            value=ours,
            unit="s",
            baseline=base,
            ratio=ours / base,
            target=3,
            size=size,
            page=PAGE,
        )
    ]


if __name__ == "__main__":
    print_figures(run(int(sys.argv[1]) if len(sys.argv) > 1 else None))
