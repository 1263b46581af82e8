"""Change tracking: odata.track-changes → deltaLink; following it returns changed rows and
$deletedEntity entries; option restrictions; paging of the initial load."""

from __future__ import annotations

import httpx

from crmserver import RunningServer

from .helpers import assert_odata_error, client

TRACK = {"Prefer": "odata.track-changes"}


def initial(
    c: httpx.Client, set_name: str = "accounts", size: int | None = None
) -> tuple[list[dict[str, object]], str]:
    headers = dict(TRACK)
    if size:
        headers["Prefer"] += f",odata.maxpagesize={size}"
    field = "name" if set_name == "accounts" else "fullname"
    r = c.get(set_name, params={"$select": field}, headers=headers)
    rows: list[dict[str, object]] = []
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        rows.extend(body["value"])
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return rows, body["@odata.deltaLink"]
        r = c.get(body["@odata.nextLink"], headers=headers)


def test_delta_returns_changes_and_deletions(fresh_crm: RunningServer) -> None:
    with client(fresh_crm) as c:
        rows, link = initial(c)
        assert "$deltatoken=" in link and len(rows) == 6
        empty = c.get(link, headers=TRACK).json()
        assert empty["value"] == [] and empty["@odata.context"].endswith("accounts(name)/$delta")
        new = c.post("accounts", json={"name": "Delta One"}).headers["OData-EntityId"]
        new_id = new.rsplit("(", 1)[1].rstrip(")")
        gone = c.post("accounts", json={"name": "Short-lived"}).headers["OData-EntityId"]
        gone_id = gone.rsplit("(", 1)[1].rstrip(")")
        assert c.delete(f"accounts({gone_id})").status_code == 204
        changed_id = rows[0]["accountid"]
        assert c.patch(f"accounts({changed_id})", json={"name": "Renamed"}).status_code == 204
        body = c.get(link, headers=TRACK).json()
        changed = [v for v in body["value"] if "id" not in v]
        deleted = [v for v in body["value"] if "id" in v]
        assert {v["accountid"] for v in changed} == {new_id, changed_id}
        assert deleted == [
            {"@odata.context": deleted[0]["@odata.context"], "id": gone_id, "reason": "deleted"}
        ]
        assert deleted[0]["@odata.context"].endswith("$metadata#accounts/$deletedEntity")
        assert body["value"][-1] == deleted[0]  # deletions come last
        again = c.get(body["@odata.deltaLink"], headers=TRACK).json()
        assert again["value"] == []


def test_initial_load_pages_then_delta_link(fresh_crm: RunningServer) -> None:
    with client(fresh_crm) as c:
        rows, link = initial(c, "contacts", size=3)
        assert len(rows) == len({r["contactid"] for r in rows}) == 10
        c.patch(f"contacts({rows[0]['contactid']})", json={"jobtitle": "Changed"})
        body = c.get(link, headers=TRACK).json()
        assert [v["contactid"] for v in body["value"]] == [rows[0]["contactid"]]


def test_delta_pages_when_many_changes(fresh_crm: RunningServer) -> None:
    with client(fresh_crm) as c:
        _, link = initial(c, "leads")
        for i in range(7):
            c.post("leads", json={"lastname": f"Delta {i}"})
        headers = {"Prefer": "odata.track-changes,odata.maxpagesize=3"}
        r = c.get(link, headers=headers)
        seen = []
        while True:
            body = r.json()
            seen.extend(v["leadid"] for v in body["value"])
            if "@odata.deltaLink" in body:
                break
            r = c.get(body["@odata.nextLink"], headers=headers)
        assert len(seen) == len(set(seen)) == 7


def test_track_changes_rejects_filter_and_bad_tokens(crm_client: httpx.Client) -> None:
    r = crm_client.get("contacts", params={"$filter": "lastname eq 'x'"}, headers=TRACK)
    assert_odata_error(r, 400)
    assert_odata_error(crm_client.get("contacts", params={"$deltatoken": "abc"}), 400)
    assert_odata_error(crm_client.get("contacts", params={"$deltatoken": "99999999999!x"}), 400)
    assert_odata_error(crm_client.get("organizations", headers=TRACK), 400)


def test_expired_delta_token(crm_client: httpx.Client) -> None:
    r = crm_client.get("contacts", params={"$deltatoken": "1001!01/01/2020 00:00:00"})
    err = assert_odata_error(r, 400)
    assert "expired" in err["message"]


# -- property: a mirror kept by deltas equals a full read ---------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

OPS = st.lists(
    st.tuples(
        st.sampled_from(["create", "update", "delete"]), st.integers(min_value=0, max_value=50)
    ),
    max_size=12,
)


def full(c: httpx.Client) -> dict[str, str | None]:
    rows, _ = initial(c, "leads", size=500)
    return {str(r["leadid"]): r["fullname"] for r in rows}  # type: ignore[misc]


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(OPS, min_size=1, max_size=3))
def test_delta_mirror_matches_full_read(
    crm_server: RunningServer, batches: list[list[tuple[str, int]]]
) -> None:
    with client(crm_server) as c:
        rows, link = initial(c, "leads", size=500)
        mirror = {str(r["leadid"]): r["fullname"] for r in rows}
        for ops in batches:
            alive = {k for k in mirror if str(mirror[k] or "").startswith("Prop")}
            for op, n in ops:
                mine = sorted(alive)
                if op == "create" or not mine:
                    r = c.post("leads", json={"lastname": f"Prop {n}"})
                    r.raise_for_status()
                    alive.add(r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")"))
                elif op == "update":
                    key = mine[n % len(mine)]
                    c.patch(f"leads({key})", json={"lastname": f"Prop {n} v2"}).raise_for_status()
                else:
                    key = mine[n % len(mine)]
                    c.delete(f"leads({key})").raise_for_status()
                    alive.discard(key)
            headers = {"Prefer": "odata.track-changes,odata.maxpagesize=4"}
            r = c.get(link, headers=headers)
            while True:
                body = r.json()
                for v in body["value"]:
                    if "reason" in v:
                        mirror.pop(v["id"], None)
                    else:
                        mirror[v["leadid"]] = v["fullname"]
                if "@odata.deltaLink" in body:
                    link = body["@odata.deltaLink"]
                    break
                r = c.get(body["@odata.nextLink"], headers=headers)
            assert mirror == full(c)
