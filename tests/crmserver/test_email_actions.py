"""E-mail messages: GetTrackingTokenEmail, SendEmail (Pending Send), BackgroundSendEmail,
CheckPromoteEmail, DeliverIncomingEmail, correlation on promotion, attachments and the size
limit, organisation and user settings."""

from __future__ import annotations

import base64

import httpx

from crmserver import RunningServer
from crmserver.seed import guid, user_id

from .helpers import JANE, ME, PRIYA, assert_odata_error, client, promote, unique_message_id

FABRIKAM = guid("account", "Fabrikam Inc.")


def org_id(c: httpx.Client) -> str:
    return str(c.get("WhoAmI").json()["OrganizationId"])


def draft(c: httpx.Client, subject: str = "Offer", to: str = JANE) -> str:
    r = c.post(
        "emails",
        headers={"Prefer": "return=representation"},
        json={
            "subject": subject,
            "regardingobjectid_account_email@odata.bind": f"/accounts({FABRIKAM})",
            "email_activity_parties": [
                {
                    "partyid_systemuser@odata.bind": f"/systemusers({user_id(ME)})",
                    "participationtypemask": 1,
                },
                {
                    "partyid_contact@odata.bind": f"/contacts({guid('contact', to)})",
                    "participationtypemask": 2,
                },
            ],
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["activityid"])


def test_tracking_tokens_count_up(fresh_crm: RunningServer) -> None:
    with client(fresh_crm) as c, client(fresh_crm, PRIYA) as p:
        r = c.post("GetTrackingTokenEmail", json={"Subject": "Hello"})
        assert r.status_code == 200, r.text
        assert r.json()["@odata.context"].endswith("GetTrackingTokenEmailResponse")
        assert r.json()["TrackingToken"] == "CRM:0001001"
        assert (
            c.post("GetTrackingTokenEmail", json={"Subject": "x"}).json()["TrackingToken"]
            == "CRM:0001002"
        )
        assert p.post("GetTrackingTokenEmail", json={}).json()["TrackingToken"] == "CRM:0002001"
        # the administrator changes the token format
        r = c.patch(
            f"organizations({org_id(c)})",
            json={"trackingprefix": "TBX:", "trackingtokenidbase": 500, "trackingtokeniddigits": 4},
        )
        assert r.status_code == 204, r.text
        assert p.post("GetTrackingTokenEmail", json={}).json()["TrackingToken"] == "TBX:00502002"


def test_send_email_client_routed_goes_pending_then_background_send(
    fresh_crm: RunningServer,
) -> None:
    with client(fresh_crm) as c, client(fresh_crm, PRIYA) as p:
        email_id = draft(c)
        r = c.post(
            f"emails({email_id})/Microsoft.Dynamics.CRM.SendEmail",
            json={"IssueSend": True, "TrackingToken": ""},
        )
        assert r.status_code == 200, r.text
        assert r.json()["Subject"] == "Offer CRM:0001001"
        row = c.get(f"emails({email_id})").json()
        assert (row["statecode"], row["statuscode"]) == (1, 6)
        assert row["trackingtoken"] == "CRM:0001001"
        # another user gets nothing; the owner gets it once, then it is Sending (7)
        assert p.post("BackgroundSendEmail", json={"Query": {}}).json()["EntityCollection"] == []
        r = c.post(
            "BackgroundSendEmail",
            json={
                "Query": {
                    "@odata.type": "Microsoft.Dynamics.CRM.QueryExpression",
                    "EntityName": "email",
                }
            },
        )
        body = r.json()
        assert body["@odata.context"].endswith("BackgroundSendEmailResponse")
        assert [e["activityid"] for e in body["EntityCollection"]] == [email_id]
        assert body["HasAttachments"] == [False]
        parties = body["EntityCollection"][0]["email_activity_parties"]
        assert {p["participationtypemask"] for p in parties} == {1, 2}
        assert c.get(f"emails({email_id})").json()["statuscode"] == 7
        assert c.post("BackgroundSendEmail", json={"Query": {}}).json()["EntityCollection"] == []
        # the client reports it sent
        r = c.patch(
            f"emails({email_id})",
            json={"statecode": 1, "statuscode": 3, "messageid": unique_message_id()},
        )
        assert r.status_code == 204, r.text


def test_send_email_without_issue_send_marks_sent(crm_client: httpx.Client) -> None:
    email_id = draft(crm_client, "Notes")
    r = crm_client.post(
        f"emails({email_id})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": False}
    )
    assert r.status_code == 200
    row = crm_client.get(f"emails({email_id})").json()
    assert (row["statecode"], row["statuscode"]) == (1, 3) and row["senton"]
    # a completed e-mail is read-only
    assert_odata_error(crm_client.patch(f"emails({email_id})", json={"subject": "x"}), 400)
    assert_odata_error(
        crm_client.post(
            f"emails({email_id})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": True}
        ),
        400,
    )


def test_reply_correlates_by_token_and_in_reply_to(crm_client: httpx.Client) -> None:
    email_id = draft(crm_client, "Pricing")
    crm_client.post(
        f"emails({email_id})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": False}
    )
    sent = crm_client.get(f"emails({email_id})").json()
    reply = promote(crm_client, Subject=f"RE: {sent['subject']}")
    row = crm_client.get(f"emails({reply})").json()
    assert row["_regardingobjectid_value"] == FABRIKAM
    assert row["correlationmethod"] == 4
    assert row["_correlatedactivityid_value"] == email_id
    assert row["trackingtoken"] == sent["trackingtoken"]
    # a reply to the reply by Message-ID
    second = promote(
        crm_client, Subject="RE: no token", ExtraProperties={"inreplyto": row["messageid"]}
    )
    row2 = crm_client.get(f"emails({second})").json()
    assert (row2["correlationmethod"], row2["_parentactivityid_value"]) == (3, reply)
    assert row2["_regardingobjectid_value"] == FABRIKAM


def test_token_only_mode_ignores_threads(fresh_crm: RunningServer) -> None:
    with client(fresh_crm) as c:
        first = promote(
            c,
            ExtraProperties={
                "regardingobjectid_account_email@odata.bind": f"/accounts({FABRIKAM})"
            },
        )
        mid = c.get(f"emails({first})").json()["messageid"]
        assert (
            c.patch(
                f"organizations({org_id(c)})", json={"tbx_tokenonlycorrelation": True}
            ).status_code
            == 204
        )
        reply = promote(c, ExtraProperties={"inreplyto": mid})
        row = c.get(f"emails({reply})").json()
        assert row["_regardingobjectid_value"] is None and row["correlationmethod"] == 0


def test_check_promote_email(crm_client: httpx.Client) -> None:
    mid = unique_message_id()
    r = crm_client.get(
        "CheckPromoteEmail(MessageId=@m,Subject=@s,DirectionCode=0)",
        params={"@m": f"'{mid}'", "@s": "'Hi'"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["ShouldPromote"] is True
    promote(crm_client, MessageId=mid)
    r = crm_client.get(
        "CheckPromoteEmail(MessageId=@m,Subject=@s,DirectionCode=0)",
        params={"@m": f"'{mid}'", "@s": "'Hi'"},
    )
    assert r.json() | {"@odata.context": ""} == {
        "@odata.context": "",
        "ShouldPromote": False,
        "ReasonCode": 0,
    }


def test_deliver_incoming_email_collection_bound(crm_client: httpx.Client) -> None:
    r = crm_client.post(
        "emails/Microsoft.Dynamics.CRM.DeliverIncomingEmail",
        json={
            "MessageId": unique_message_id(),
            "Subject": "Inbound",
            "From": JANE,
            "To": ME,
            "Cc": "",
            "Bcc": "",
            "ReceivedOn": "2026-11-21T08:00:00Z",
            "SubmittedBy": "",
            "Importance": "1",
            "Body": "b",
            "Attachments": [],
            "ExtraProperties": {},
            "ValidateBeforeCreate": False,
        },
    )
    assert r.status_code == 200, r.text
    row = crm_client.get(f"emails({r.json()['EmailId']})").json()
    assert row["directioncode"] is False and row["statuscode"] == 4


def test_attachments_and_size_limit(fresh_crm: RunningServer) -> None:
    with client(fresh_crm) as c:
        small = base64.b64encode(b"hello").decode()
        big = base64.b64encode(b"x" * 2048).decode()
        c.patch(f"organizations({org_id(c)})", json={"maxuploadfilesize": 1024})
        email_id = promote(
            c,
            Attachments=[
                {"filename": "a.txt", "mimetype": "text/plain", "body": small},
                {"filename": "big.bin", "mimetype": "application/octet-stream", "body": big},
            ],
        )
        row = c.get(
            f"emails({email_id})",
            params={
                "$expand": "email_activity_mime_attachment($select=filename,filesize,mimetype)"
            },
        ).json()
        assert row["attachmentcount"] == 1 and row["notifications"] == 1
        [att] = row["email_activity_mime_attachment"]
        assert (att["filename"], att["filesize"]) == ("a.txt", 5)


def test_settings_need_administrator(crm_server: RunningServer) -> None:
    with client(crm_server, PRIYA) as p:
        org = p.get("organizations").json()["value"][0]
        assert org["trackingprefix"] and org["emailcorrelationenabled"] is True
        assert org["hashfilterkeywords"] and org["hashminaddresscount"] == 2
        assert_odata_error(
            p.patch(f"organizations({org['organizationid']})", json={"ignoreinternalemail": True}),
            403,
        )
        mine = p.get(f"usersettingscollection({user_id(PRIYA)})").json()
        assert mine["incomingemailfilteringmethod"] == 1
        assert (
            p.patch(
                f"usersettingscollection({user_id(PRIYA)})",
                json={"incomingemailfilteringmethod": 2},
            ).status_code
            == 204
        )
        assert_odata_error(p.get(f"usersettingscollection({user_id(ME)})"), 404)
        assert_odata_error(
            p.patch(
                f"usersettingscollection({user_id(PRIYA)})",
                json={"incomingemailfilteringmethod": 9},
            ),
            400,
        )
        boxes = p.get(
            "mailboxes", params={"$filter": f"_regardingobjectid_value eq {user_id(PRIYA)}"}
        ).json()["value"]
        assert boxes[0]["outgoingemaildeliverymethod"] == 1
        assert boxes[0]["incomingemaildeliverymethod"] == 1


def test_conversation_index_correlation(crm_client: httpx.Client) -> None:
    from core.domain.conversation_index import ConversationIndex

    root = ConversationIndex.new()
    first = promote(
        crm_client,
        ExtraProperties={
            "conversationindex": base64.b64encode(root.raw).decode(),
            "regardingobjectid_account_email@odata.bind": f"/accounts({FABRIKAM})",
        },
    )
    child = base64.b64encode(root.raw + b"\x00\x00\x01\x02\x03").decode()
    reply = promote(
        crm_client, Subject="Something else", ExtraProperties={"conversationindex": child}
    )
    row = crm_client.get(f"emails({reply})").json()
    assert row["correlationmethod"] == 5
    assert row["_parentactivityid_value"] == first
    assert row["_regardingobjectid_value"] == FABRIKAM
    assert row["baseconversationindexhash"] == root.root_hash


def test_smart_matching_when_enabled(fresh_crm: RunningServer) -> None:
    with client(fresh_crm) as c:
        first = promote(
            c,
            Subject="Quarterly figures",
            From=JANE,
            To=f"{ME};{PRIYA}",
            ExtraProperties={
                "regardingobjectid_account_email@odata.bind": f"/accounts({FABRIKAM})"
            },
        )
        # smart matching is off by default: the same subject and people do not correlate
        r = c.get(
            "CheckPromoteEmail(MessageId=@m,Subject=@s)",
            params={"@m": "'<x@y>'", "@s": "'RE: quarterly figures'"},
        )
        assert r.json()["ReasonCode"] == 6
        c.patch(f"organizations({org_id(c)})", json={"enablesmartmatching": True})
        reply = promote(c, Subject="Re: Quarterly Figures", From=PRIYA, To=f"{JANE};{ME}")
        row = c.get(f"emails({reply})").json()
        assert row["correlationmethod"] == 6
        assert row["_regardingobjectid_value"] == FABRIKAM
        assert row["_correlatedactivityid_value"] == first


def test_invalid_org_settings_are_400(fresh_crm: RunningServer) -> None:
    with client(fresh_crm) as c:
        oid = org_id(c)
        err = assert_odata_error(
            c.patch(f"organizations({oid})", json={"trackingprefix": "X" * 30}), 400
        )
        assert "trackingprefix" in err["message"]
        assert_odata_error(c.patch(f"organizations({oid})", json={"trackingtokeniddigits": 0}), 400)
        assert_odata_error(c.post("organizations", json={"name": "second"}), 405)
        assert_odata_error(c.delete(f"organizations({oid})"), 405)


def test_check_incoming_email_follows_user_filter(fresh_crm: RunningServer) -> None:
    def check(c: httpx.Client, sender: str, to: str, subject: str = "Hi") -> dict[str, object]:
        r = c.get(
            "CheckIncomingEmail(MessageId=@m,Subject=@s,From=@f,To=@t)",
            params={
                "@m": f"'{unique_message_id()}'",
                "@s": f"'{subject}'",
                "@f": f"'{sender}'",
                "@t": f"'{to}'",
            },
        )
        assert r.status_code == 200, r.text
        return r.json()

    with client(fresh_crm, PRIYA) as p:
        # default 1: only responses to CRM e-mail
        assert check(p, JANE, PRIYA)["ShouldDeliver"] is False
        p.patch(
            f"usersettingscollection({user_id(PRIYA)})", json={"incomingemailfilteringmethod": 2}
        )
        verdict = check(p, JANE, PRIYA)
        assert verdict["ShouldDeliver"] is True and verdict["ReasonCode"] == 5
        assert check(p, "stranger@nowhere.example", PRIYA)["ShouldDeliver"] is False
        assert check(p, JANE, "nobody@nowhere.example")["ReasonCode"] == 3
