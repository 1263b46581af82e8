"""Security: OAuth2 token endpoint and bearer tokens, registered applications, per-user
e-mail privacy, request size limit, no stack traces."""

from __future__ import annotations

import subprocess
import sys

import httpx

from crmserver import RunningServer
from crmserver.seed import user_id

from .helpers import JANE, ME, PRIYA, TOMAS, assert_odata_error, client, promote


def token(server: RunningServer, **form: str) -> httpx.Response:
    return httpx.post(server.url + "/oauth2/v2.0/token", data=form)


def test_client_credentials_with_form_fields_and_bearer(crm_server: RunningServer) -> None:
    r = token(
        crm_server,
        grant_type="client_credentials",
        client_id=ME,
        client_secret="demo",
        scope="https://org.example/.default",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    api = crm_server.url + "/api/data/v9.2/WhoAmI"
    r = httpx.get(api, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert r.status_code == 200 and r.json()["UserId"] == user_id(ME)
    r = httpx.get(api, headers={"Authorization": "Bearer not-a-token"})
    assert_odata_error(r, 401)


def test_client_credentials_with_basic_client_auth(crm_server: RunningServer) -> None:
    r = httpx.post(
        crm_server.url + "/oauth2/v2.0/token",
        auth=(PRIYA, "demo"),
        data={"grant_type": "client_credentials"},
    )
    assert r.status_code == 200, r.text
    r = httpx.post(
        crm_server.url + "/oauth2/v2.0/token",
        auth=(PRIYA, "wrong"),
        data={"grant_type": "client_credentials"},
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_password_grant_and_errors(crm_server: RunningServer) -> None:
    r = token(
        crm_server,
        grant_type="password",
        username=TOMAS,
        password="demo",
        client_id="any-public-client",
    )
    assert r.status_code == 200, r.text
    r = token(crm_server, grant_type="password", username=TOMAS, password="nope")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = token(crm_server, grant_type="authorization_code", code="x")
    assert r.status_code == 400 and r.json()["error"] in {"invalid_request", "invalid_grant"}
    r = token(crm_server, grant_type="urn:example:made-up", code="x")
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_registered_application(fresh_crm: RunningServer) -> None:
    db = str(fresh_crm.settings.db_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crmserver.cli",
            "app",
            "add",
            "--db",
            db,
            "--client-id",
            "sync-daemon",
            "--user",
            PRIYA,
            "--password-stdin",
        ],
        input="s3cret\n",
        text=True,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    r = token(
        fresh_crm, grant_type="client_credentials", client_id="sync-daemon", client_secret="s3cret"
    )
    assert r.status_code == 200, r.text
    who = httpx.get(
        fresh_crm.url + "/api/data/v9.2/WhoAmI",
        headers={"Authorization": f"Bearer {r.json()['access_token']}"},
    )
    assert who.json()["UserId"] == user_id(PRIYA)
    r = token(
        fresh_crm, grant_type="client_credentials", client_id="sync-daemon", client_secret="wrong"
    )
    assert r.status_code == 401


def test_user_a_cannot_read_or_change_user_b_emails(crm_server: RunningServer) -> None:
    with client(crm_server, PRIYA) as a, client(crm_server, TOMAS) as b:
        private = promote(b, From=JANE, To=TOMAS, Subject="Tomás only")
        assert b.get(f"emails({private})").status_code == 200
        assert_odata_error(a.get(f"emails({private})"), 404)
        assert_odata_error(a.patch(f"emails({private})", json={"subject": "x"}), 404)
        assert_odata_error(a.delete(f"emails({private})"), 404)
        listed = a.get("emails", params={"$select": "subject"}).json()["value"]
        assert private not in {e["activityid"] for e in listed}
        parties = a.get(
            "activityparties", params={"$filter": f"_activityid_value eq {private}"}
        ).json()["value"]
        assert parties == []
        assert_odata_error(
            a.post(
                f"emails({private})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": False}
            ),
            404,
        )
        # a mail both take part in is visible to both, but only its owner may change it
        shared = promote(b, From=JANE, To=f"{TOMAS};{PRIYA}", Subject="Both")
        assert a.get(f"emails({shared})").status_code == 200
        assert_odata_error(a.patch(f"emails({shared})", json={"subject": "x"}), 403)


def test_request_size_limit(crm_client: httpx.Client) -> None:
    r = crm_client.post(
        "contacts",
        content=b"{" + b" " * (33 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert_odata_error(r, 413)


def test_versions_and_service_document(crm_server: RunningServer) -> None:
    for version in ("9.0", "9.1", "9.2"):
        r = httpx.get(f"{crm_server.url}/api/data/v{version}/WhoAmI", auth=(ME, "demo"))
        assert r.status_code == 200
    r = httpx.get(f"{crm_server.url}/api/data/v8.2/WhoAmI", auth=(ME, "demo"))
    assert_odata_error(r, 404)
    r = httpx.get(f"{crm_server.url}/api/data/v9.2/", auth=(ME, "demo"))
    sets = {v["name"] for v in r.json()["value"]}
    assert {"contacts", "emails", "usersettingscollection", "mailboxes"} <= sets


def test_owner_only_reading_is_configurable(tmp_path) -> None:
    import pytest

    from crmserver import Settings, run_in_thread

    with pytest.raises(ValueError, match="owner_only"):
        Settings(db_path=tmp_path / "x.db", owner_only=("email",))
    settings = Settings(db_path=tmp_path / "o.db", seed="demo", owner_only=("lead",))
    with run_in_thread(settings) as server, client(server, PRIYA) as p, client(server) as me:
        assert me.get("leads/$count").text == "4"  # the demo leads belong to ME
        assert p.get("leads/$count").text == "0"
        assert p.get("contacts/$count").text == "10"  # still organisation-wide
        lead = me.get("leads", params={"$top": "1"}).json()["value"][0]["leadid"]
        assert_odata_error(p.get(f"leads({lead})"), 404)
