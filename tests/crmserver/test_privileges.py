"""Issue 18: privileged systemuser columns, unique user addresses, and lookups bound only to
records the caller can read — over HTTP, directly and through ``$batch``.

In the demo seed ME is the administrator; PRIYA and TOMAS are not.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from crmserver import RunningServer, Settings, run_in_thread
from crmserver.errors import PRIVILEGE_DENIED
from crmserver.seed import user_id

from .helpers import JANE, ME, PRIYA, TOMAS, assert_odata_error, client, promote

BATCH = "batch_priv"
CHANGESET = "changeset_priv"


def batch(c: httpx.Client, method: str, url: str, body: dict[str, Any]) -> httpx.Response:
    """One request inside a change set of a ``$batch``."""
    import json

    part = (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        "Content-ID: 1\r\n\r\n"
        f"{method} {url} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{json.dumps(body)}"
    )
    changeset = f"--{CHANGESET}\r\n{part}\r\n--{CHANGESET}--\r\n"
    text = (
        f"--{BATCH}\r\nContent-Type: multipart/mixed; boundary={CHANGESET}\r\n\r\n"
        f"{changeset}\r\n--{BATCH}--\r\n"
    )
    r = c.post(
        "$batch",
        content=text.encode(),
        headers={"Content-Type": f"multipart/mixed; boundary={BATCH}"},
    )
    assert r.status_code == 200, r.text
    return r


def user(c: httpx.Client, email: str) -> dict[str, Any]:
    r = c.get(f"systemusers({user_id(email)})")
    assert r.status_code == 200, r.text
    return dict(r.json())


# -- 1. privileged columns of systemuser ----------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"tbx_isadministrator": True},
        {"internalemailaddress": "priya.new@contoso.example"},
        {"domainname": "someone.else@contoso.example"},
        {"isdisabled": True},
        {"emailrouteraccessapproval": 0},
        {"statecode": 1},
    ],
    ids=lambda c: next(iter(c)),
)
def test_non_admin_cannot_change_privileged_columns_of_themselves(
    fresh_crm: RunningServer, change: dict[str, Any]
) -> None:
    with client(fresh_crm, PRIYA) as priya, client(fresh_crm) as admin:
        before = user(admin, PRIYA)
        r = priya.patch(f"systemusers({user_id(PRIYA)})", json=change)
        err = assert_odata_error(r, 403)
        assert err["code"] == PRIVILEGE_DENIED and next(iter(change)) in err["message"]
        after = user(admin, PRIYA)
        name = next(iter(change))
        assert after[name] == before[name]
        assert after["tbx_isadministrator"] is False
        # the harmless columns of their own record stay theirs to edit
        r = priya.patch(f"systemusers({user_id(PRIYA)})", json={"title": "Head of Sales"})
        assert r.status_code == 204, r.text
        assert user(admin, PRIYA)["title"] == "Head of Sales"


def test_privileged_columns_refused_through_property_put_and_batch(
    fresh_crm: RunningServer,
) -> None:
    me_url = f"systemusers({user_id(PRIYA)})"
    with client(fresh_crm, PRIYA) as priya, client(fresh_crm) as admin:
        r = priya.put(f"{me_url}/tbx_isadministrator", json={"value": True})
        assert assert_odata_error(r, 403)["code"] == PRIVILEGE_DENIED
        base = fresh_crm.url + "/api/data/v9.2/"
        r = batch(priya, "PATCH", base + me_url, {"tbx_isadministrator": True})
        assert "HTTP/1.1 403" in r.text and PRIVILEGE_DENIED in r.text
        assert user(admin, PRIYA)["tbx_isadministrator"] is False
        # a new business unit is the admin's to hand out, not the user's to take
        unit = admin.post("businessunits", json={"name": "Elsewhere"})
        assert unit.status_code == 204, unit.text
        unit_url = unit.headers["OData-EntityId"]
        r = priya.patch(me_url, json={"businessunitid@odata.bind": unit_url})
        assert assert_odata_error(r, 403)["code"] == PRIVILEGE_DENIED
        assert user(admin, PRIYA)["_businessunitid_value"] != unit_url[-37:-1]


def test_admin_may_change_privileged_columns_and_create_users(fresh_crm: RunningServer) -> None:
    with client(fresh_crm) as admin, client(fresh_crm, TOMAS) as tomas:
        r = admin.patch(f"systemusers({user_id(TOMAS)})", json={"tbx_isadministrator": True})
        assert r.status_code == 204, r.text
        assert user(admin, TOMAS)["tbx_isadministrator"] is True
        # now an administrator, Tomás may do what one may
        r = tomas.patch(f"systemusers({user_id(PRIYA)})", json={"emailrouteraccessapproval": 0})
        assert r.status_code == 204, r.text
        new = {"lastname": "Root", "tbx_isadministrator": True, "internalemailaddress": "r@x.ex"}
        with client(fresh_crm, PRIYA) as priya:
            assert_odata_error(priya.post("systemusers", json=new), 403)
        assert admin.post("systemusers", json=new).status_code == 204


# -- 2. user addresses: unique, admin-set, and the only way into a colleague's mail ----------


def test_user_addresses_are_unique_even_for_admins(fresh_crm: RunningServer) -> None:
    with client(fresh_crm) as admin:
        r = admin.patch(
            f"systemusers({user_id(TOMAS)})", json={"internalemailaddress": PRIYA.upper()}
        )
        err = assert_odata_error(r, 409)
        assert PRIYA.upper() in err["message"] or PRIYA in err["message"]
        assert user(admin, TOMAS)["internalemailaddress"] == TOMAS
        new = {"lastname": "Twin", "internalemailaddress": f" {ME} "}
        assert_odata_error(admin.post("systemusers", json=new), 409)
        base = fresh_crm.url + "/api/data/v9.2/"
        r = batch(
            admin, "POST", base + "systemusers", {"lastname": "T", "internalemailaddress": ME}
        )
        assert "HTTP/1.1 409" in r.text
        # an unused address is fine, and a user keeps their own
        r = admin.patch(
            f"systemusers({user_id(TOMAS)})",
            json={"internalemailaddress": "tomas.f@contoso.example", "lastname": "Ferreira"},
        )
        assert r.status_code == 204, r.text
        r = admin.patch(f"systemusers({user_id(PRIYA)})", json={"internalemailaddress": PRIYA})
        assert r.status_code == 204, r.text


def test_claiming_a_colleagues_address_gives_no_access_to_their_mail(
    fresh_crm: RunningServer,
) -> None:
    with client(fresh_crm, PRIYA) as priya, client(fresh_crm, TOMAS) as tomas:
        r = priya.patch(f"systemusers({user_id(PRIYA)})", json={"internalemailaddress": TOMAS})
        assert_odata_error(r, 403)
        email_id = promote(tomas, From=JANE, To=TOMAS, Subject="Salary review")
        assert tomas.get(f"emails({email_id})").status_code == 200
        assert_odata_error(priya.get(f"emails({email_id})"), 404)
        parties = tomas.get(f"emails({email_id})/email_activity_parties").json()["value"]
        assert user_id(PRIYA) not in {p["_partyid_value"] for p in parties}


def test_an_address_two_users_already_share_resolves_to_neither(
    fresh_crm: RunningServer,
) -> None:
    """A database from before uniqueness may hold a claimed address: fail closed."""
    import sqlite3

    db = sqlite3.connect(fresh_crm.settings.db_path, timeout=30)
    with db:
        db.execute(
            "UPDATE systemuser SET internalemailaddress = ? WHERE systemuserid = ?",
            (TOMAS, user_id(PRIYA)),
        )
    db.close()
    with client(fresh_crm) as me:
        email_id = promote(me, From=JANE, To=TOMAS, Subject="Who is Tomás?")
        parties = me.get(f"emails({email_id})/email_activity_parties").json()["value"]
        to = [p for p in parties if p["participationtypemask"] == 2]
        assert [(p["_partyid_value"], p["addressused"]) for p in to] == [(None, TOMAS)]


# -- 3. lookups bound only to records the caller can read -----------------------------------


def private_email(server: RunningServer) -> str:
    """An e-mail only ME (its owner and recipient) may read."""
    with client(server) as me:
        return promote(me, From=JANE, To=ME, Subject=f"Private {uuid.uuid4().hex[:6]}")


def assert_like_missing(r: httpx.Response) -> None:
    """Refused exactly as a bind to a record that does not exist is (no existence oracle)."""
    assert assert_odata_error(r, 404)["code"] == "0x80040217"


def test_binding_to_an_unreadable_email_is_refused(crm_server: RunningServer) -> None:
    secret = private_email(crm_server)
    bind = {"parentactivityid@odata.bind": f"/emails({secret})"}
    with client(crm_server, PRIYA) as priya:
        assert_odata_error(priya.get(f"emails({secret})"), 404)
        assert_like_missing(priya.post("emails", json={"subject": "Leech", **bind}))
        pointer = {"parentactivityid@odata.bind": f"/activitypointers({secret})"}
        assert_like_missing(priya.post("emails", json={"subject": "Leech", **pointer}))
        missing = {"parentactivityid@odata.bind": f"/emails({uuid.uuid4()})"}
        r = priya.post("emails", json={"subject": "Leech", **missing})
        assert_like_missing(r)
        mine = priya.post("emails", json={"subject": "Mine"})
        assert mine.status_code == 204, mine.text
        own_url = mine.headers["OData-EntityId"]
        assert_like_missing(priya.patch(own_url, json=bind))
        r = batch(priya, "PATCH", own_url, bind)
        assert "HTTP/1.1 404" in r.text
        ref = {"@odata.id": f"{crm_server.url}/api/data/v9.2/emails({secret})"}
        r = priya.put(own_url + "/parentactivityid/$ref", json=ref)
        assert_like_missing(r)
        got = priya.get(own_url, params={"$select": "_parentactivityid_value"}).json()
        assert got["_parentactivityid_value"] is None
    with client(crm_server) as me:  # the owner may bind to it
        r = me.post("emails", json={"subject": "Follow-up", **bind})
        assert r.status_code == 204, r.text


def test_binding_to_an_owner_only_record_is_refused(tmp_path: Path) -> None:
    settings = Settings(db_path=tmp_path / "o.db", seed="demo", owner_only=("lead",))
    with run_in_thread(settings) as server, client(server, PRIYA) as p, client(server) as me:
        lead = me.get("leads", params={"$top": "1"}).json()["value"][0]["leadid"]
        body = {"subject": "Call", "regardingobjectid_lead_task@odata.bind": f"/leads({lead})"}
        assert_like_missing(p.post("tasks", json=body))
        base = server.url + "/api/data/v9.2/"
        assert "HTTP/1.1 404" in batch(p, "POST", base + "tasks", body).text
        assert me.post("tasks", json=body).status_code == 204
        # a promoted e-mail from the lead still arrives; its party is just not the lead
        address = me.get(f"leads({lead})").json()["emailaddress1"]
        email_id = promote(p, From=address, To=PRIYA)
        parties = p.get(f"emails({email_id})/email_activity_parties").json()["value"]
        assert lead not in {x["_partyid_value"] for x in parties}


# -- settings and mailbox columns that are an administrator's --------------------------------


def own_settings_and_mailbox(c: httpx.Client, email: str) -> tuple[dict[str, Any], str]:
    """The caller's usersettings row and the id of their default mailbox."""
    uid = user_id(email)
    settings = c.get(f"usersettingscollection({uid})")
    assert settings.status_code == 200, settings.text
    box = c.get(f"systemusers({uid})", params={"$select": "_defaultmailbox_value"})
    assert box.status_code == 200, box.text
    return dict(settings.json()), box.json()["_defaultmailbox_value"]


def test_a_user_cannot_take_a_colleagues_tracking_token_number(fresh_crm: RunningServer) -> None:
    """With Tomás's token number Priya's outgoing mail would carry tokens the CRM correlates
    with Tomás's mail (and his replies with hers)."""
    with client(fresh_crm, PRIYA) as priya, client(fresh_crm, TOMAS) as tomas:
        mine, _ = own_settings_and_mailbox(priya, PRIYA)
        his, _ = own_settings_and_mailbox(tomas, TOMAS)
        url = f"usersettingscollection({user_id(PRIYA)})"
        r = priya.patch(url, json={"trackingtokenid": his["trackingtokenid"]})
        assert "trackingtokenid" in assert_odata_error(r, 403)["message"]
        assert priya.get(url).json()["trackingtokenid"] == mine["trackingtokenid"]
        # Her own options stay hers; sending back the current number is no change.
        same = {"outlooksyncinterval": 30, "trackingtokenid": mine["trackingtokenid"]}
        assert priya.patch(url, json=same).status_code == 204
    with client(fresh_crm) as admin:
        r = admin.patch(url, json={"trackingtokenid": 990})
        assert r.status_code == 204, r.text


def test_a_user_cannot_readdress_their_own_mailbox(fresh_crm: RunningServer) -> None:
    with client(fresh_crm, PRIYA) as priya:
        _, box = own_settings_and_mailbox(priya, PRIYA)
        r = priya.patch(f"mailboxes({box})", json={"emailaddress": TOMAS})
        assert "emailaddress" in assert_odata_error(r, 403)["message"]
        assert priya.get(f"mailboxes({box})").json()["emailaddress"] == PRIYA
        # Choosing how her mail is delivered is her own option.
        r = priya.patch(f"mailboxes({box})", json={"outgoingemaildeliverymethod": 0})
        assert r.status_code == 204, r.text
