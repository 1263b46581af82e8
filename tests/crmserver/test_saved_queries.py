"""Issue 20 on the emulator: system views (``savedqueries``) and personal views
(``userqueries``) run as filters with ``?savedQuery=<id>`` / ``?userQuery=<id>``, their FetchXML
subset, the 400s for what it does not cover, and who may read and write views."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from crmserver import RunningServer
from crmserver.seed import user_id

from .helpers import ME, PRIYA, assert_odata_error, client


def created_id(r: httpx.Response) -> str:
    assert r.status_code in (201, 204), r.text
    return r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def fetch(logical: str, body: str, extra: str = "") -> str:
    return (
        f'<fetch version="1.0" mapping="logical"><entity name="{logical}">{extra}'
        f"{body}</entity></fetch>"
    )


def system_view(c: httpx.Client, name: str) -> dict[str, Any]:
    r = c.get("savedqueries", params={"$filter": f"name eq '{name}'"})
    assert r.status_code == 200, r.text
    (view,) = r.json()["value"]
    return dict(view)


def personal_view(c: httpx.Client, logical: str, fetchxml: str) -> str:
    body = {
        "name": f"View {uuid.uuid4().hex[:6]}",
        "returnedtypecode": logical,
        "fetchxml": fetchxml,
    }
    return created_id(c.post("userqueries", json=body))


def test_my_active_contacts_uses_the_caller(crm_https: RunningServer) -> None:
    with client(crm_https) as me, client(crm_https, PRIYA) as priya:
        view = system_view(me, "My Active Contacts")
        assert view["returnedtypecode"] == "contact" and view["isdefault"] is True
        assert view["querytype"] == 0 and "eq-userid" in view["fetchxml"]
        tag = uuid.uuid4().hex[:8]
        hers = created_id(priya.post("contacts", json={"lastname": f"Hers {tag}"}))
        inactive = created_id(priya.post("contacts", json={"lastname": f"Gone {tag}"}))
        priya.patch(f"contacts({inactive})", json={"statecode": 1, "statuscode": 2})
        params = {"savedQuery": view["savedqueryid"]}
        rows = priya.get("contacts", params=params).json()["value"]
        assert hers in {r["contactid"] for r in rows} and inactive not in {
            r["contactid"] for r in rows
        }
        assert {r["_ownerid_value"] for r in rows} == {user_id(PRIYA)}
        assert {r["statecode"] for r in rows} == {0}
        mine = me.get("contacts", params=params).json()["value"]
        assert mine and {r["_ownerid_value"] for r in mine} == {user_id(ME)}
        # sorted by the view's order (fullname) and combined with an explicit $filter
        names = [r["fullname"] or "" for r in mine]
        assert names == sorted(names, key=str.lower)
        narrowed = priya.get("contacts", params={**params, "$filter": f"lastname eq 'Hers {tag}'"})
        assert [r["contactid"] for r in narrowed.json()["value"]] == [hers]
        count = priya.get("contacts/$count", params=params)
        assert int(count.text) == len(rows)


def test_personal_view_operators(crm_https: RunningServer) -> None:
    tag = uuid.uuid4().hex[:8]
    with client(crm_https) as c:
        people = {
            "a": {
                "lastname": f"Op{tag} Alpha",
                "jobtitle": "Buyer",
                "emailaddress2": "x@y.example",
            },
            "b": {"lastname": f"Op{tag} Beta", "jobtitle": "CTO"},
            "c": {"lastname": f"Op{tag} Gamma", "jobtitle": "Intern", "birthdate": "1990-06-15"},
            "d": {"lastname": f"Op{tag} Delta", "jobtitle": "Buyer"},
        }
        ids = {k: created_id(c.post("contacts", json=v)) for k, v in people.items()}
        conditions = (
            '<filter type="and">'
            f'<condition attribute="lastname" operator="like" value="Op{tag}%" />'
            '<filter type="or">'
            '<condition attribute="emailaddress2" operator="not-null" />'
            '<condition attribute="jobtitle" operator="in"><value>CTO</value><value>ceo</value>'
            "</condition>"
            '<condition attribute="birthdate" operator="on-or-before" value="1990-06-15" />'
            "</filter>"
            '<condition attribute="jobtitle" operator="ne" value="Director" />'
            '<condition attribute="createdon" operator="on-or-after" value="2020-01-01" />'
            '<condition attribute="parentcustomerid" operator="null" />'
            "</filter>"
        )
        view = personal_view(
            c, "contact", fetch("contact", conditions, '<attribute name="lastname" />')
        )
        rows = c.get("contacts", params={"userQuery": view}).json()["value"]
        assert {r["contactid"] for r in rows} == {ids["a"], ids["b"], ids["c"]}
        assert set(rows[0]) == {"@odata.etag", "contactid", "lastname"}  # the view's columns
        only_eq = fetch(
            "contact",
            f'<filter><condition attribute="lastname" operator="eq" value="op{tag} delta" />'
            "</filter>",
        )
        rows = c.get("contacts", params={"userQuery": personal_view(c, "contact", only_eq)})
        assert [r["contactid"] for r in rows.json()["value"]] == [ids["d"]]


def test_activity_views(crm_https: RunningServer) -> None:
    with client(crm_https) as me, client(crm_https, PRIYA) as priya:
        tag = uuid.uuid4().hex[:8]
        open_task = created_id(
            priya.post("tasks", json={"subject": f"T {tag}", "scheduledend": "2027-01-10"})
        )
        done = created_id(priya.post("tasks", json={"subject": f"D {tag}"}))
        priya.patch(f"tasks({done})", json={"statecode": 1})
        view = system_view(me, "My Open Tasks")
        rows = priya.get("tasks", params={"savedQuery": view["savedqueryid"]}).json()["value"]
        found = {r["activityid"] for r in rows}
        assert open_task in found and done not in found
        due = fetch(
            "task",
            "<filter>"
            '<condition attribute="scheduledend" operator="on-or-before" value="2027-01-10" />'
            f'<condition attribute="subject" operator="like" value="% {tag}" /></filter>',
        )
        rows = priya.get("tasks", params={"userQuery": personal_view(priya, "task", due)})
        assert [r["activityid"] for r in rows.json()["value"]] == [open_task]
        mine = system_view(me, "My Activities")
        rows = priya.get("activitypointers", params={"savedQuery": mine["savedqueryid"]}).json()
        kinds = {r["activitytypecode"] for r in rows["value"]}
        assert open_task in {r["activityid"] for r in rows["value"]} and "task" in kinds
        for name in ("My Appointments", "My Faxes", "My Letters"):
            view = system_view(me, name)
            set_name = {"appointment": "appointments", "fax": "faxes", "letter": "letters"}[
                view["returnedtypecode"]
            ]
            r = me.get(set_name, params={"savedQuery": view["savedqueryid"]})
            assert r.status_code == 200 and r.json()["value"], (name, r.text)


def test_unsupported_fetchxml_is_a_clear_400(crm_https: RunningServer) -> None:
    with client(crm_https) as c:
        cases = {
            "last-x-days": fetch(
                "contact",
                '<filter><condition attribute="createdon" operator="last-x-days" value="3" />'
                "</filter>",
            ),
            "link-entity": fetch(
                "contact", '<link-entity name="account" from="accountid" to="parentcustomerid" />'
            ),
            "nosuchcolumn": fetch(
                "contact", '<filter><condition attribute="nosuchcolumn" operator="null" /></filter>'
            ),
            "well-formed": "<fetch><entity name='contact'>",
        }
        for needle, fetchxml in cases.items():
            view = personal_view(c, "contact", fetchxml)
            err = assert_odata_error(c.get("contacts", params={"userQuery": view}), 400)
            assert needle in err["message"], err
        view = system_view(c, "My Active Contacts")["savedqueryid"]
        err = assert_odata_error(c.get("tasks", params={"savedQuery": view}), 400)
        assert "contact" in err["message"]
        assert_odata_error(c.get("contacts", params={"savedQuery": "not-a-guid"}), 400)
        assert_odata_error(c.get("contacts", params={"savedQuery": str(uuid.uuid4())}), 404)
        both = {"savedQuery": view, "userQuery": view}
        assert_odata_error(c.get("contacts", params=both), 400)
        tracked = c.get(
            "contacts", params={"savedQuery": view}, headers={"Prefer": "odata.track-changes"}
        )
        assert_odata_error(tracked, 400)


def test_personal_views_are_private_and_system_views_admin_written(
    crm_https: RunningServer,
) -> None:
    with client(crm_https) as me, client(crm_https, PRIYA) as priya:
        view = personal_view(me, "contact", fetch("contact", "<filter />"))
        got = me.get(f"userqueries({view})").json()
        assert got["_ownerid_value"] == user_id(ME) and got["returnedtypecode"] == "contact"
        assert_odata_error(priya.get(f"userqueries({view})"), 404)
        assert_odata_error(priya.get("contacts", params={"userQuery": view}), 404)
        assert_odata_error(priya.patch(f"userqueries({view})", json={"name": "Mine"}), 404)
        listed = priya.get("userqueries", params={"$filter": f"userqueryid eq {view}"}).json()
        assert listed["value"] == []
        hers = personal_view(priya, "contact", fetch("contact", "<filter />"))
        assert priya.get("contacts", params={"userQuery": hers}).status_code == 200
        # system views: everyone reads them, only an administrator writes them
        system = system_view(priya, "Active Contacts")["savedqueryid"]
        body = {"name": "Hers", "returnedtypecode": "contact", "fetchxml": fetch("contact", "")}
        assert_odata_error(priya.post("savedqueries", json=body), 403)
        assert_odata_error(priya.patch(f"savedqueries({system})", json={"name": "x"}), 403)
        made = created_id(me.post("savedqueries", json=body))
        assert priya.get("contacts", params={"savedQuery": made}).status_code == 200
        assert me.delete(f"savedqueries({made})").status_code == 204
