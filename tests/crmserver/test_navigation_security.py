"""Row-level security through navigation paths and in delta tombstones (issue 18, items 3-4).

A navigation to a row the caller cannot read behaves as if the row were absent: ``$filter``
sees null, ``$expand`` gives null, lookup annotations carry no name. A delta lists only the
deletions of rows the caller could read.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from crmserver import RunningServer, Settings, run_in_thread

from .helpers import JANE, ME, PRIYA, TOMAS, assert_odata_error, client, promote

SECRET = "<p>Xylophone: the merger closes Friday</p>"
FORMATTED = "_parentactivityid_value@OData.Community.Display.V1.FormattedValue"


def _create(c: httpx.Client, entity_set: str, body: dict[str, object]) -> str:
    r = c.post(entity_set, json=body)
    assert r.status_code == 204, r.text
    return r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def _subjects(c: httpx.Client, flt: str) -> list[str]:
    r = c.get("emails", params={"$filter": flt, "$select": "subject"})
    assert r.status_code == 200, r.text
    return sorted(e["subject"] for e in r.json()["value"])


def _pointing_at(owner: httpx.Client, reader: httpx.Client, subject: str) -> tuple[str, str]:
    """``owner``'s private e-mail with a secret body, and a mail ``owner`` shares with
    ``reader`` whose ``parentactivityid`` points at the private one (a reply in a thread)."""
    private = promote(owner, From=JANE, To=PRIYA, Subject=f"{subject} secret", Body=SECRET)
    shared = promote(
        owner,
        From=JANE,
        To=f"{PRIYA};{TOMAS}",
        Subject=subject,
        ExtraProperties={"parentactivityid@odata.bind": f"/emails({private})"},
    )
    assert_odata_error(reader.get(f"emails({private})"), 404)
    r = reader.get(f"emails({shared})", params={"$select": "_parentactivityid_value"})
    assert r.status_code == 200 and r.json()["_parentactivityid_value"] == private, r.text
    return private, shared


def test_filter_through_navigation_cannot_read_a_private_email(crm_https: RunningServer) -> None:
    with client(crm_https, PRIYA) as a, client(crm_https, TOMAS) as b:
        _, mine = _pointing_at(a, b, "nav-filter-probe")
        hit = "startswith(parentactivityid/description,'<p>X')"
        miss = "startswith(parentactivityid/description,'<p>Q')"
        mine_only = f"activityid eq {mine}"
        # the oracle: a right guess and a wrong guess must answer alike
        assert _subjects(b, f"{mine_only} and {hit}") == []
        assert _subjects(b, f"{mine_only} and {miss}") == []
        assert (
            _subjects(b, f"{mine_only} and parentactivityid/subject eq 'nav-filter-probe secret'")
            == []
        )
        # the unreadable target behaves as if absent: its columns are null
        assert _subjects(b, f"{mine_only} and parentactivityid/subject eq null") == [
            "nav-filter-probe"
        ]
        assert _subjects(b, f"{mine_only} and not (parentactivityid/description ne null)") == [
            "nav-filter-probe"
        ]


def test_filter_through_navigation_still_reads_a_readable_target(
    crm_https: RunningServer,
) -> None:
    with client(crm_https, TOMAS) as b:
        own = _create(b, "emails", {"subject": "nav-own-parent", "description": SECRET})
        child = _create(
            b,
            "emails",
            {"subject": "nav-own-child", "parentactivityid@odata.bind": f"/emails({own})"},
        )
        flt = f"activityid eq {child} and startswith(parentactivityid/description,'<p>X')"
        assert _subjects(b, flt) == ["nav-own-child"]
        # a shared mail (B is a recipient) is readable through a navigation as well
        shared = promote(b, From=JANE, To=f"{TOMAS};{PRIYA}", Subject="nav-shared", Body=SECRET)
    with client(crm_https, PRIYA) as a:
        reply = _create(
            a,
            "emails",
            {"subject": "nav-reply", "parentactivityid@odata.bind": f"/emails({shared})"},
        )
        flt = f"activityid eq {reply} and parentactivityid/subject eq 'nav-shared'"
        assert _subjects(a, flt) == ["nav-reply"]


def test_expand_orderby_select_and_annotations_do_not_leak(crm_https: RunningServer) -> None:
    with client(crm_https, PRIYA) as a, client(crm_https, TOMAS) as b:
        private, mine = _pointing_at(a, b, "nav-expand-probe")
        one = {"$filter": f"activityid eq {mine}"}
        r = b.get("emails", params={**one, "$expand": "parentactivityid($select=description)"})
        assert r.status_code == 200, r.text
        assert r.json()["value"][0]["parentactivityid"] is None
        r = b.get(f"emails({mine})", params={"$expand": "parentactivityid($select=description)"})
        assert r.status_code == 200, r.text
        assert r.json()["parentactivityid"] is None
        for params in (
            {"$orderby": "parentactivityid/description"},
            {"$select": "subject,parentactivityid/description"},
        ):
            r = b.get("emails", params={**one, **params})
            assert SECRET not in r.text and "Xylophone" not in r.text
            assert r.status_code in (200, 400), r.text
        # the lookup's formatted value is the target's name: none for an unreadable target
        r = b.get(
            "emails",
            params={**one, "$select": "subject,_parentactivityid_value"},
            headers={"Prefer": 'odata.include-annotations="*"'},
        )
        assert r.status_code == 200, r.text
        row = r.json()["value"][0]
        assert row["_parentactivityid_value"] == private  # the id itself is B's own data
        assert row.get(FORMATTED) is None
        assert "nav-expand-probe secret" not in r.text
        r = b.get(  # the same for one record read by its key
            f"emails({mine})",
            params={"$select": "subject,_parentactivityid_value"},
            headers={"Prefer": 'odata.include-annotations="*"'},
        )
        assert r.status_code == 200, r.text
        assert r.json().get(FORMATTED) is None and "nav-expand-probe secret" not in r.text


def test_owner_only_entity_through_navigation(tmp_path: Path) -> None:
    settings = Settings(db_path=tmp_path / "o.db", seed="demo", owner_only=("lead",))
    with run_in_thread(settings) as server, client(server, PRIYA) as p, client(server) as me:
        lead = me.get("leads", params={"$top": "1"}).json()["value"][0]["leadid"]
        assert_odata_error(p.get(f"leads({lead})"), 404)
        shared = promote(
            me,
            From=JANE,
            To=f"{ME};{PRIYA}",
            Subject="nav-lead-probe",
            ExtraProperties={"regardingobjectid_lead_email@odata.bind": f"/leads({lead})"},
        )
        nav = "regardingobjectid_lead_email/fullname"
        absent = f"activityid eq {shared} and {nav} eq null"
        present = f"activityid eq {shared} and {nav} ne null"
        assert _subjects(p, absent) == ["nav-lead-probe"]
        assert _subjects(p, present) == []
        # the owner still reads through the same navigation
        assert _subjects(me, present) == ["nav-lead-probe"]


def _delta_link(c: httpx.Client) -> str:
    r = c.get("emails", params={"$select": "subject"}, headers={"Prefer": "odata.track-changes"})
    assert r.status_code == 200, r.text
    return str(r.json()["@odata.deltaLink"])


def _deleted_ids(c: httpx.Client, link: str) -> set[str]:
    r = c.get(link)
    assert r.status_code == 200, r.text
    return {v["id"] for v in r.json()["value"] if v.get("reason") == "deleted"}


def test_delta_lists_only_deletions_the_caller_could_read(fresh_crm_https: RunningServer) -> None:
    server = fresh_crm_https
    with client(server, PRIYA) as a, client(server, TOMAS) as b, client(server, ME) as me:
        private = promote(a, From=JANE, To=PRIYA, Subject="delta private")
        shared = promote(a, From=JANE, To=f"{PRIYA};{TOMAS}", Subject="delta shared")
        links = {name: _delta_link(c) for name, c in (("a", a), ("b", b), ("me", me))}
        assert a.delete(f"emails({private})").status_code == 204
        assert a.delete(f"emails({shared})").status_code == 204
        assert _deleted_ids(a, links["a"]) >= {private, shared}
        seen_by_b = _deleted_ids(b, links["b"])
        assert private not in seen_by_b
        assert shared in seen_by_b  # B was a recipient: B could read it
        seen_by_me = _deleted_ids(me, links["me"])
        assert private not in seen_by_me and shared not in seen_by_me
