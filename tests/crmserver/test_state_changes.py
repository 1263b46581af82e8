"""A PATCH that changes an activity's state saves what the state rules derive from it."""

from __future__ import annotations

import httpx


def test_statecode_alone_brings_its_default_statuscode(crm_client: httpx.Client) -> None:
    r = crm_client.post(
        "emails",
        headers={"Prefer": "return=representation"},
        json={"subject": "Close me", "description": "<p>x</p>"},
    )
    assert r.status_code == 201, r.text
    key = r.json()["activityid"]
    r = crm_client.patch(f"emails({key})", json={"statecode": 1})
    assert r.status_code == 204, r.text
    row = crm_client.get(f"emails({key})", params={"$select": "statecode,statuscode"}).json()
    assert (row["statecode"], row["statuscode"]) == (1, 2)  # Completed, not Draft
