"""Connections (``connections``): an e-mail activity linked to further records through typed
polymorphic binds, served by the generic CRUD and $filter like any other table."""

from __future__ import annotations

import re

from crmserver import RunningServer
from crmserver.seed import guid

from .helpers import JANE, assert_odata_error, client, promote

FABRIKAM = guid("account", "Fabrikam Inc.")
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def test_connection_links_an_email_to_records(crm_https: RunningServer) -> None:
    with client(crm_https) as c:
        email = promote(c, Subject="Linked to two records")
        ids = []
        for bind, target in (
            ("record2id_account@odata.bind", f"/accounts({FABRIKAM})"),
            ("record2id_contact@odata.bind", f"/contacts({guid('contact', JANE)})"),
        ):
            r = c.post(
                "connections",
                json={"record1id_email@odata.bind": f"/emails({email})", bind: target},
            )
            assert r.status_code == 204, r.text
            found = re.search(rf"/connections\(({GUID})\)$", r.headers["OData-EntityId"])
            assert found
            ids.append(found.group(1))
        r = c.get(
            "connections",
            params={
                "$filter": f"_record1id_value eq {email} and statecode eq 0",
                "$select": "connectionid,_record2id_value",
            },
            headers={"Prefer": 'odata.include-annotations="*"'},
        )
        assert r.status_code == 200, r.text
        rows = r.json()["value"]
        assert {row["_record2id_value"] for row in rows} == {FABRIKAM, guid("contact", JANE)}
        kinds = {row["_record2id_value@Microsoft.Dynamics.CRM.lookuplogicalname"] for row in rows}
        assert kinds == {"account", "contact"}
        names = {row["_record2id_value@OData.Community.Display.V1.FormattedValue"] for row in rows}
        assert "Fabrikam Inc." in names
        assert c.delete(f"connections({ids[0]})").status_code == 204
        left = c.get("connections", params={"$filter": f"_record1id_value eq {email}"})
        assert [row["connectionid"] for row in left.json()["value"]] == [ids[1]]


def test_connection_to_a_missing_record_is_refused(crm_https: RunningServer) -> None:
    with client(crm_https) as c:
        email = promote(c, Subject="Linked to nothing")
        r = c.post(
            "connections",
            json={
                "record1id_email@odata.bind": f"/emails({email})",
                "record2id_account@odata.bind": "/accounts(00000000-0000-0000-0000-00000000abcd)",
            },
        )
        assert_odata_error(r, 404)


def test_connection_roles_are_a_table(crm_https: RunningServer) -> None:
    with client(crm_https) as c:
        r = c.post("connectionroles", json={"name": "Stakeholder"})
        assert r.status_code == 204, r.text
        role = r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        email = promote(c, Subject="With a role")
        r = c.post(
            "connections",
            json={
                "record1id_email@odata.bind": f"/emails({email})",
                "record2id_account@odata.bind": f"/accounts({FABRIKAM})",
                "record2roleid@odata.bind": f"/connectionroles({role})",
                "name": "Stakeholder link",
            },
        )
        assert r.status_code == 204, r.text
        row = c.get("connections", params={"$filter": f"_record2roleid_value eq {role}"}).json()[
            "value"
        ]
        assert [x["name"] for x in row] == ["Stakeholder link"]
