"""$metadata, EntityDefinitions, $batch with change sets and Content-ID references,
CreateMultiple/UpdateMultiple, the main.aspx record page, and the command line."""

from __future__ import annotations

import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx

from crmserver import RunningServer, Settings, run_in_thread
from crmserver.seed import guid

from .helpers import JANE, ME, PRIYA, assert_odata_error, client, promote

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


def test_csdl_metadata(crm_client: httpx.Client) -> None:
    r = crm_client.get("$metadata", params={"annotations": "true"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    sets = {s.get("Name"): s for s in root.iter(EDM + "EntitySet")}
    assert {"contacts", "emails", "usersettingscollection", "activityparties"} <= set(sets)
    contact = next(t for t in root.iter(EDM + "EntityType") if t.get("Name") == "contact")
    props = {p.get("Name") for p in contact.iter(EDM + "Property")}
    assert {"contactid", "emailaddress1", "_parentcustomerid_value"} <= props
    navs = {n.get("Name") for n in contact.iter(EDM + "NavigationProperty")}
    assert "parentcustomerid_account" in navs
    actions = {a.get("Name") for a in root.iter(EDM + "Action")}
    assert {"DeliverPromoteEmail", "SendEmail", "BackgroundSendEmail"} <= actions
    assert any(
        a.get("Term") == "Org.OData.Capabilities.V1.ChangeTracking"
        for a in sets["contacts"].iter(EDM + "Annotation")
    )


def test_entity_definitions(crm_client: httpx.Client) -> None:
    r = crm_client.get(
        "EntityDefinitions",
        params={
            "$select": "LogicalName,EntitySetName,PrimaryIdAttribute",
            "$filter": "LogicalName eq 'usersettings'",
        },
    )
    assert r.status_code == 200, r.text
    [row] = r.json()["value"]
    assert row["EntitySetName"] == "usersettingscollection"
    assert row["PrimaryIdAttribute"] == "systemuserid"
    r = crm_client.get(
        "EntityDefinitions(LogicalName='email')/Attributes",
        params={"$filter": "AttributeType eq 'Lookup'", "$select": "LogicalName,Targets"},
    )
    lookups = {a["LogicalName"]: a for a in r.json()["value"]}
    assert "contact" in lookups["regardingobjectid"]["Targets"]
    r = crm_client.get("EntityDefinitions(LogicalName='contact')", params={"$expand": "Attributes"})
    assert any(a["LogicalName"] == "emailaddress1" for a in r.json()["Attributes"])
    r = crm_client.get("EntityDefinitions(LogicalName='contact')/Keys")
    assert r.json()["value"] == []
    r = crm_client.get("EntityDefinitions(LogicalName='contact')/ManyToOneRelationships")
    assert any(
        x["ReferencingEntityNavigationPropertyName"] == "parentcustomerid_account"
        for x in r.json()["value"]
    )
    assert_odata_error(crm_client.get("EntityDefinitions(LogicalName='nosuch')"), 404)
    assert_odata_error(crm_client.get("EntityDefinitions", params={"$filter": "x eq"}), 400)


def batch_body(boundary: str, parts: list[str]) -> bytes:
    return ("".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--\r\n").encode()


def http_part(request: str, content_id: str | None = None) -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id:
        head += f"Content-ID: {content_id}\r\n"
    return head + "\r\n" + request


def test_batch_change_set_with_content_id(crm_server: RunningServer) -> None:
    base = crm_server.url + "/api/data/v9.2/"
    name = f"BatchCo-{uuid.uuid4().hex[:6]}"
    cs = batch_body(
        "changeset_1",
        [
            http_part(
                f"POST {base}accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
                f'{{"name": "{name}"}}',
                "1",
            ),
            http_part(
                "POST contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
                '{"lastname": "Batchson", "parentcustomerid_account@odata.bind": "$1"}',
                "2",
            ),
            http_part(
                'PATCH $1 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{"telephone1": "123"}',
                "3",
            ),
        ],
    )
    body = batch_body(
        "batch_1",
        [
            "Content-Type: multipart/mixed; boundary=changeset_1\r\n\r\n" + cs.decode(),
            http_part(
                f"GET {base}accounts?$select=name&$filter=name%20eq%20'{name}' HTTP/1.1\r\n"
                "Accept: application/json\r\n\r\n"
            ),
        ],
    )
    with client(crm_server) as c:
        r = c.post(
            "$batch", content=body, headers={"Content-Type": "multipart/mixed; boundary=batch_1"}
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("multipart/mixed; boundary=batchresponse_")
        text = r.text
        assert text.count("HTTP/1.1 204 No Content") == 3
        assert "HTTP/1.1 200 OK" in text and name in text
        contact = c.get(
            "contacts",
            params={"$filter": "lastname eq 'Batchson'", "$select": "_parentcustomerid_value"},
        ).json()
        account = c.get(
            "accounts", params={"$filter": f"name eq '{name}'", "$select": "telephone1"}
        ).json()["value"][0]
        assert contact["value"][0]["_parentcustomerid_value"] == account["accountid"]
        assert account["telephone1"] == "123"


def test_failed_change_set_rolls_back(crm_client: httpx.Client) -> None:
    cs = batch_body(
        "cs",
        [
            http_part(
                "POST leads HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
                '{"lastname": "Rollback Me"}',
                "1",
            ),
            http_part(
                'POST leads HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{"nosuchcolumn": 1}',
                "2",
            ),
        ],
    )
    body = batch_body("b", ["Content-Type: multipart/mixed; boundary=cs\r\n\r\n" + cs.decode()])
    r = crm_client.post(
        "$batch", content=body, headers={"Content-Type": "multipart/mixed; boundary=b"}
    )
    assert r.status_code == 200
    assert "HTTP/1.1 400 Bad Request" in r.text and "Content-ID: 2" in r.text
    left = crm_client.get("leads", params={"$filter": "lastname eq 'Rollback Me'"}).json()
    assert left["value"] == []
    assert_odata_error(
        crm_client.post("$batch", content=b"x", headers={"Content-Type": "application/json"}), 400
    )


def test_create_and_update_multiple(crm_client: httpx.Client) -> None:
    r = crm_client.post(
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "Multi 1"},
                {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "Multi 2"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    ids = r.json()["Ids"]
    assert len(ids) == 2
    r = crm_client.post(
        "contacts/Microsoft.Dynamics.CRM.UpdateMultiple",
        json={
            "Targets": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.contact",
                    "contactid": ids[0],
                    "jobtitle": "Updated",
                }
            ]
        },
    )
    assert r.status_code == 204, r.text
    assert crm_client.get(f"contacts({ids[0]})").json()["jobtitle"] == "Updated"
    r = crm_client.post(
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "wrong type"}]},
    )
    assert_odata_error(r, 400)


def test_record_page_escapes_and_shows_email(crm_server: RunningServer) -> None:
    with client(crm_server) as c:
        email_id = promote(
            c,
            Subject="<script>alert(1)</script> Offer",
            Body="<b>x</b>",
            ExtraProperties={
                "regardingobjectid_account_email@odata.bind": (
                    f"/accounts({guid('account', 'Fabrikam Inc.')})"
                )
            },
        )
    url = f"{crm_server.url}/main.aspx"
    params = {"etn": "email", "id": email_id, "pagetype": "entityrecord"}
    r = httpx.get(url, params=params, auth=(ME, "demo"))
    assert r.status_code == 200
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text
    assert JANE in r.text and "Fabrikam Inc." in r.text and "Received" in r.text
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert httpx.get(url, params=params).status_code == 401
    assert httpx.get(url, params=params, auth=(PRIYA, "demo")).status_code == 404


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmserver.cli", *args],
        input=stdin,
        text=True,
        capture_output=True,
        check=False,
        timeout=120,
    )


def test_cli_user_and_seed(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    done = run_cli(
        "user",
        "add",
        "--db",
        db,
        "--name",
        "Sam Admin",
        "--email",
        "sam@org.example",
        "--password-stdin",
        "--admin",
        stdin="pw1\n",
    )
    assert done.returncode == 0, done.stderr
    done = run_cli(
        "seed",
        "--db",
        db,
        "--accounts",
        "20",
        "--contacts",
        "300",
        "--leads",
        "50",
        "--users",
        "2",
        "--opportunities",
        "5",
        "--incidents",
        "5",
    )
    assert done.returncode == 0, done.stderr
    listed = run_cli("user", "list", "--db", db).stdout
    assert "sam@org.example" in listed and "[admin]" in listed
    assert len(listed.strip().splitlines()) == 3
    with (
        run_in_thread(Settings(db_path=db)) as server,
        httpx.Client(base_url=server.url + "/api/data/v9.2/", auth=("sam@org.example", "pw1")) as c,
    ):
        assert c.get("contacts/$count").text == "300"
        with_mail = int(c.get("contacts/$count", params={"$filter": "emailaddress1 ne null"}).text)
        assert 250 < with_mail < 300
        shared = c.get("leads", params={"$select": "emailaddress1"}).json()["value"]
        assert shared
    again = run_cli("seed", "--db", str(tmp_path / "det.db"), "--contacts", "5", "--users", "1")
    assert again.returncode == 0, again.stderr


def test_cli_serve_prints_its_url(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmserver.cli",
            "serve",
            "--db",
            str(tmp_path / "s.db"),
            "--port",
            "0",
            "--seed",
            "demo",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        r = httpx.get(url + "/api/data/v9.2/WhoAmI", auth=(ME, "demo"), timeout=30)
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
