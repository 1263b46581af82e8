"""User B against user A, endpoint by endpoint and verb by verb (issue 18's security module).

PRIYA owns a private e-mail (with a secret body, a party list and an attachment), her user
settings and her mailbox. TOMAS is an ordinary colleague. Every probe below is one request
TOMAS makes, directly or inside a ``$batch``; each must be refused (403 or 404, never 500),
leak nothing of the secret, and leave PRIYA's records exactly as they were — read back by
PRIYA after all probes ran. Forged and malformed paging/delta tokens are answered 400.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from crmserver import RunningServer
from crmserver.entities import ENTITIES
from crmserver.query import encode_skiptoken
from crmserver.seed import user_id

from .helpers import JANE, PRIYA, TOMAS, client, promote

SECRET = "Quokka-7731 acquisition terms"
REFUSED = (403, 404)


@dataclass(frozen=True)
class Victim:
    email: str
    party: str
    attachment: str
    mailbox: str
    settings_url: str


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    url: str
    body: Any = None
    expect: tuple[int, ...] = REFUSED
    empty_value: bool = False  # a 200 collection that must not list the victim's rows


def _victim(server: RunningServer) -> Victim:
    with client(server, PRIYA) as priya:
        email = promote(
            priya,
            From=JANE,
            To=PRIYA,
            Subject=f"Private {uuid.uuid4().hex[:8]}",
            Body=f"<p>{SECRET}</p>",
        )
        r = priya.post(
            "activitymimeattachments",
            json={
                "objectid_email@odata.bind": f"/emails({email})",
                "objecttypecode": "email",
                "filename": "terms.txt",
                "body": base64.b64encode(SECRET.encode()).decode(),
            },
        )
        assert r.status_code == 204, r.text
        attachment = r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        parties = priya.get(f"emails({email})/email_activity_parties").json()["value"]
        uid = user_id(PRIYA)
        me = priya.get(f"systemusers({uid})", params={"$select": "_defaultmailbox_value"})
        return Victim(
            email=email,
            party=parties[0]["activitypartyid"],
            attachment=attachment,
            mailbox=me.json()["_defaultmailbox_value"],
            settings_url=f"usersettingscollection({uid})",
        )


def _probes(v: Victim) -> Iterator[Probe]:
    e = f"emails({v.email})"
    priya = user_id(PRIYA)
    mine = f"/systemusers({user_id(TOMAS)})"
    # reads
    yield Probe("read e-mail", "GET", e)
    yield Probe("read e-mail column", "GET", f"{e}/description")
    yield Probe("read e-mail parties", "GET", f"{e}/email_activity_parties")
    yield Probe("read e-mail expanded", "GET", f"{e}?$expand=email_activity_parties")
    yield Probe("read as activitypointer", "GET", f"activitypointers({v.email})")
    yield Probe("read party", "GET", f"activityparties({v.party})")
    yield Probe("read attachment", "GET", f"activitymimeattachments({v.attachment})")
    for name, url in (
        ("filter by key", f"emails?$filter=activityid eq {v.email}"),
        ("filter on body", "emails?$filter=contains(description,'Quokka')"),
        ("pointers by key", f"activitypointers?$filter=activityid eq {v.email}"),
        ("parties of it", f"activityparties?$filter=_activityid_value eq {v.email}"),
        ("attachments of it", f"activitymimeattachments?$filter=_objectid_value eq {v.email}"),
        ("attachments by name", "activitymimeattachments?$filter=filename eq 'terms.txt'"),
        (
            "search on body",
            "emails?$filter=contains(subject,'Private') or contains(description,'7731')",
        ),
    ):
        yield Probe(name, "GET", url, expect=(200,), empty_value=True)
    # writes to her e-mail and what hangs off it
    yield Probe("patch e-mail", "PATCH", e, {"subject": "mine now"})
    yield Probe("patch e-mail owner", "PATCH", e, {"ownerid@odata.bind": mine})
    yield Probe("put e-mail column", "PUT", f"{e}/subject", {"value": "mine now"})
    yield Probe("delete e-mail column", "DELETE", f"{e}/description")
    yield Probe("delete e-mail", "DELETE", e)
    yield Probe(
        "send her e-mail", "POST", f"{e}/Microsoft.Dynamics.CRM.SendEmail", {"IssueSend": False}
    )
    yield Probe(
        "join her e-mail as a party",
        "POST",
        "activityparties",
        {
            "activityid_email@odata.bind": f"/{e}",
            "partyid_systemuser@odata.bind": mine,
            "participationtypemask": 2,
        },
    )
    yield Probe(
        "join through the navigation",
        "POST",
        f"{e}/email_activity_parties",
        {"partyid_systemuser@odata.bind": mine, "participationtypemask": 2},
    )
    yield Probe("patch party", "PATCH", f"activityparties({v.party})", {"addressused": "x@y"})
    yield Probe("delete party", "DELETE", f"activityparties({v.party})")
    yield Probe(
        "attach to her e-mail",
        "POST",
        "activitymimeattachments",
        {"objectid_email@odata.bind": f"/{e}", "objecttypecode": "email", "filename": "x.txt"},
    )
    yield Probe(
        "patch attachment", "PATCH", f"activitymimeattachments({v.attachment})", {"filename": "y"}
    )
    yield Probe("delete attachment", "DELETE", f"activitymimeattachments({v.attachment})")
    yield Probe(
        "reply bound to it",
        "POST",
        "emails",
        {"subject": "re", "parentactivityid@odata.bind": f"/{e}"},
    )
    # her settings, mailbox and user record
    yield Probe("read her settings", "PATCH", v.settings_url, {"outlooksyncinterval": 1})
    yield Probe("her token number", "PATCH", v.settings_url, {"trackingtokenid": 4242})
    yield Probe("her mailbox address", "PATCH", f"mailboxes({v.mailbox})", {"emailaddress": TOMAS})
    yield Probe(
        "her delivery method",
        "PATCH",
        f"mailboxes({v.mailbox})",
        {"incomingemaildeliverymethod": 0},
    )
    yield Probe("delete her mailbox", "DELETE", f"mailboxes({v.mailbox})")
    yield Probe("her name", "PATCH", f"systemusers({priya})", {"lastname": "Pwned"})
    yield Probe("her address", "PATCH", f"systemusers({priya})", {"internalemailaddress": "t@x.ex"})
    yield Probe("disable her", "PATCH", f"systemusers({priya})", {"isdisabled": True})
    yield Probe(
        "make myself admin", "PATCH", mine.lstrip("/"), {"tbx_isadministrator": True}, expect=(403,)
    )


def _skiptokens(v: Victim) -> Iterator[tuple[str, str]]:
    """Forged or malformed ``$skiptoken``s: a cursor placed just before her e-mail, and
    cursors whose values are of the wrong type."""
    email = ENTITIES["email"]
    before = str(uuid.UUID(int=uuid.UUID(v.email).int - 1))
    yield "cursor before it", encode_skiptoken(email, 1, [before], before, {})
    yield "cursor of objects", encode_skiptoken(email, 1, [{"a": 1}], before, {})
    yield "cursor too long", encode_skiptoken(email, 1, [1, 2, 3], before, {})
    yield "delta cursor not a number", encode_skiptoken(email, 1, ["x"], before, {"v": "y"})
    yield "not a cookie", "garbage"
    payload = base64.urlsafe_b64encode(json.dumps([1]).encode()).decode()
    yield (
        "cursor not an object",
        f'<cookie pagenumber="2" pagingcookie="tbx%253D%2522{payload}%2522" />',
    )


def _batch(c: httpx.Client, probe: Probe) -> int:
    """``probe`` as the only request of a change set; the status the batch gives it."""
    body = "" if probe.body is None else json.dumps(probe.body)
    part = (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        "Content-ID: 1\r\n\r\n"
        f"{probe.method} {c.base_url}{probe.url} HTTP/1.1\r\n"
        f"Content-Type: application/json\r\n\r\n{body}"
    )
    text = (
        "--b\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n"
        f"--cs\r\n{part}\r\n--cs--\r\n\r\n--b--\r\n"
    )
    r = c.post(
        "$batch", content=text.encode(), headers={"Content-Type": "multipart/mixed; boundary=b"}
    )
    assert r.status_code == 200, r.text
    assert SECRET not in r.text
    status = r.text.split("HTTP/1.1 ", 1)[1][:3]
    return int(status)


def _snapshot(c: httpx.Client, v: Victim) -> dict[str, Any]:
    """What PRIYA sees of everything the probes aimed at."""

    def get(url: str) -> Any:
        r = c.get(url)
        assert r.status_code == 200, (url, r.text)
        body = r.json()
        body.pop("@odata.etag", None)
        for row in body.get("value", []):
            row.pop("@odata.etag", None)
        return {k: val for k, val in body.items() if k not in ("versionnumber", "modifiedon")}

    return {
        "email": get(f"emails({v.email})"),
        "parties": get(f"emails({v.email})/email_activity_parties"),
        "attachment": get(f"activitymimeattachments({v.attachment})"),
        "settings": get(v.settings_url),
        "mailbox": get(f"mailboxes({v.mailbox})"),
        "user": get(f"systemusers({user_id(PRIYA)})"),
    }


@pytest.fixture(scope="module")
def victim(crm_https: RunningServer) -> Victim:
    return _victim(crm_https)


def test_every_probe_is_refused_and_changes_nothing(
    crm_https: RunningServer, victim: Victim
) -> None:
    with client(crm_https, PRIYA) as priya:
        before = _snapshot(priya, victim)
    probes = list(_probes(victim))
    answered: list[str] = []
    with client(crm_https, TOMAS) as tomas:
        for probe in probes:
            r = tomas.request(probe.method, probe.url, json=probe.body)
            assert r.status_code in probe.expect, (probe.name, r.status_code, r.text)
            assert SECRET not in r.text, probe.name
            if probe.empty_value:
                ids = json.dumps(r.json()["value"])
                assert victim.email not in ids and victim.attachment not in ids, probe.name
            answered.append(probe.name)
        for probe in probes:
            if probe.method == "GET":
                continue
            assert _batch(tomas, probe) in probe.expect, f"$batch: {probe.name}"
            answered.append(f"$batch {probe.name}")
    with client(crm_https, PRIYA) as priya:
        assert _snapshot(priya, victim) == before
    assert len(answered) >= 60  # the module's figure: probes tried, all passed


def test_forged_paging_tokens_are_refused_or_read_only_what_the_caller_may(
    crm_https: RunningServer, victim: Victim
) -> None:
    with client(crm_https, TOMAS) as tomas:
        for name, token in _skiptokens(victim):
            for delta in (False, True):
                headers = {"Prefer": "odata.track-changes"} if delta else {}
                r = tomas.get(
                    "emails",
                    params={"$select": "subject,description", "$skiptoken": token},
                    headers=headers,
                )
                assert r.status_code in (200, 400), (name, delta, r.status_code, r.text)
                assert SECRET not in r.text and victim.email not in r.text, (name, delta)
        r = tomas.get("emails", params={"$deltatoken": "1!01/01/2026 00:00:00", "$skiptoken": "x"})
        assert r.status_code in (200, 400), r.text
