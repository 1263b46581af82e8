"""Benchmark ``delta``: after 100 changes among N contacts, the time of the change-tracking
delta request against a plain 100-row page in the same run. Target: ratio <= 3 (the cost
follows the number of changes, not the size of the table).

Run: ``python -m bench crm_delta [--size N]`` or ``python -m bench.crm_delta [N]``.
"""

from __future__ import annotations

import sys

from bench._harness import figure, median_time, print_figures
from bench.crm_paging import DEFAULT_SIZE, client, seeded_server

CHANGES = 100


def run(size: int | None = None) -> list[dict[str, object]]:
    size = size or DEFAULT_SIZE
    track = {"Prefer": "odata.track-changes,odata.maxpagesize=5000"}
    with seeded_server(size) as (server, _db), client(server) as c:
        r = c.get("contacts", params={"$select": "fullname,emailaddress1"}, headers=track)
        while "@odata.deltaLink" not in r.json():
            r = c.get(r.json()["@odata.nextLink"], headers=track)
        delta_link = r.json()["@odata.deltaLink"]
        page = c.get("contacts", params={"$select": "contactid", "$top": str(CHANGES)}).json()
        ids = [row["contactid"] for row in page["value"]]
        for i, key in enumerate(ids):
            if i % 10 == 9:
                c.delete(f"contacts({key})").raise_for_status()
            else:
                c.patch(f"contacts({key})", json={"jobtitle": f"Changed {i}"}).raise_for_status()

        def delta() -> None:
            body = c.get(delta_link, headers=track).json()
            assert len(body["value"]) == CHANGES, len(body["value"])

        def plain_page() -> None:
            body = c.get(
                "contacts",
                params={"$select": "fullname,emailaddress1"},
                headers={"Prefer": f"odata.maxpagesize={CHANGES}"},
            ).json()
            assert len(body["value"]) == CHANGES

        ours = median_time(delta, repeat=5)
        base = median_time(plain_page, repeat=5)
    return [
        figure(
            "crm_delta",
            "delta",
            value=ours,
            unit="s",
            baseline=base,
            ratio=ours / base,
            target=3,
            size=size,
            changes=CHANGES,
        )
    ]


if __name__ == "__main__":
    print_figures(run(int(sys.argv[1]) if len(sys.argv) > 1 else None))
