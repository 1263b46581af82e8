"""The sync cycle against real servers on loopback: the emulator over HTTP, Dovecot over IMAP,
the SMTP relay into Dovecot."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.crm import BasicAuth, CrmClient
from core.domain.model import Address, TrackState
from core.domain.problems import Problem
from core.sync.report import SyncProgress
from crmserver import RunningServer
from desktop.errors import describe_problem
from tests.plugins.mailservers import DovecotServer, SmtpServer
from tests.sync.env import ME, Env, mime

JANE = Address("jane.doe@fabrikam.example", "Jane Doe")


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    yield Env(fresh_crm, dovecot, smtp_server, tmp_path)


def row_of(ws, message_id: str):  # type: ignore[no-untyped-def]
    rows = ws.store().messages_by_message_id(message_id)
    assert rows, f"{message_id} not in the store"
    return rows[0]


def test_cycle_tracks_new_mail_from_a_contact_and_logs_why(env: Env) -> None:
    env.set_incoming_filter(2)  # from leads, contacts and accounts
    ws, user = env.workspace("x")
    steps: list[str] = []
    first = ws.sync_cycle(progress=lambda p: steps.append(p.step))
    assert first.ok and first.online, first.errors
    assert {"settings", "address books", "mail", "tracked state"} <= set(steps)
    assert ws.user_options().incoming_filter == 2
    assert first.counts["address_book_records"] > 0

    mid, raw = mime(JANE, ME, "Quote for 20 chairs")
    env.dovecot.deliver(user, raw)
    other_mid, other = mime(Address("stranger@nowhere.example"), ME, "Hi")
    env.dovecot.deliver(user, other)
    report = ws.sync_cycle()
    assert report.ok, report.errors
    assert report.counts["auto_tracked"] == 1
    row = row_of(ws, mid)
    assert row.track_state is TrackState.TRACKED and row.activity_id
    assert [e["activityid"] for e in env.emails(mid)] == [row.activity_id]
    [entry] = ws.store().tracking.audit_log(mid)
    assert entry.track and entry.source == "auto" and "Jane Doe" in entry.reason.text
    assert row_of(ws, other_mid).track_state is TrackState.NOT_TRACKED
    [skipped] = ws.store().tracking.audit_log(other_mid)
    assert not skipped.track and skipped.reason.text
    assert env.emails(other_mid) == []
    assert ws.last_sync() == report
    ws.close()


def test_offline_then_online_replays_the_queue(env: Env) -> None:
    ws, user = env.workspace("off")
    assert ws.sync_cycle().ok
    mid, raw = mime(JANE, ME, "Offline track")
    env.dovecot.deliver(user, raw)
    ws.sync_mail()
    rid = row_of(ws, mid).id

    ws.set_work_offline(True)
    assert not ws.online
    changes = ws.track([rid])
    assert changes.errors == ()
    assert row_of(ws, mid).track_state is TrackState.PENDING
    assert [q.kind for q in ws.queue()] == ["promote"]
    report = ws.sync_cycle()
    assert not report.online and report.errors == ()
    assert env.emails(mid) == []

    real = ws.crm
    ws.set_work_offline(False)  # replays against the real CRM at once
    assert row_of(ws, mid).track_state is TrackState.TRACKED
    assert len(env.emails(mid)) == 1
    # Now untrack while the CRM is away (nothing listens): a state, not an error.
    ws.crm = CrmClient("http://127.0.0.1:9", BasicAuth(ME.email, "x"), timeout=2, get_retries=0)
    assert ws.untrack([rid]).errors == ()
    assert row_of(ws, mid).track_state is TrackState.PENDING
    assert [(q.kind, q.attempts) for q in ws.queue()] == [("untrack", 1)]
    away = ws.sync_cycle()
    assert not away.online and away.mail_online and not ws.online
    ws.crm = real
    back = ws.sync_cycle()
    assert back.ok and back.online and ws.online
    assert env.emails(mid) == []
    assert row_of(ws, mid).track_state is TrackState.NOT_TRACKED
    assert ws.queue() == []
    ws.close()


def test_cycle_can_be_cancelled_and_never_runs_twice(env: Env) -> None:
    ws, _ = env.workspace("cancel")
    cancel = threading.Event()

    def progress(p: SyncProgress) -> None:
        if p.step == "mail":
            cancel.set()

    report = ws.sync_cycle(progress=progress, cancel=cancel)
    assert report.cancelled and not report.ok
    # A second caller while a cycle runs waits and gets that cycle's report.
    started, release = threading.Event(), threading.Event()
    reports = []

    def slow(p: SyncProgress) -> None:
        started.set()
        release.wait(10)

    t = threading.Thread(target=lambda: reports.append(ws.sync_cycle(progress=slow)))
    t.start()
    started.wait(10)
    t2 = threading.Thread(target=lambda: reports.append(ws.sync_cycle()))
    t2.start()
    release.set()
    t.join(30)
    t2.join(30)
    assert len(reports) == 2 and reports[0] is reports[1]
    ws.close()


def test_pending_send_round_trip(env: Env) -> None:
    """CRM → client → SMTP → Dovecot → tracked as Sent."""
    ws, _ = env.workspace("ps")
    assert ws.sync_cycle().ok
    recipient = env.dovecot.new_user("c")
    contact = env.create_contact(recipient)
    with env.http() as http:
        r = http.post(
            "emails",
            json={
                "subject": "Your quote",
                "description": "<p>Here it is.</p>",
                "email_activity_parties": [
                    {
                        "partyid_systemuser@odata.bind": f"/systemusers({env.user_id()})",
                        "participationtypemask": 1,
                    },
                    {
                        "partyid_contact@odata.bind": f"/contacts({contact})",
                        "participationtypemask": 2,
                    },
                ],
            },
        )
        r.raise_for_status()
        activity = r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        sent = http.post(
            f"emails({activity})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": True}
        )
        sent.raise_for_status()
        subject = sent.json()["Subject"]
        assert http.get(f"emails({activity})").json()["statuscode"] == 6  # Pending Send

    report = ws.sync_cycle()
    assert report.ok, report.errors
    assert report.counts["pending_send"] == 1
    with env.http() as http:
        email = http.get(f"emails({activity})").json()
    assert email["statuscode"] == 3 and email["messageid"]
    # Delivered through SMTP into the contact's mailbox, subject with the tracking token.
    with (
        ws.open_mailbox() as _mine,
        __import__("core.mail", fromlist=["open_backend"]).open_backend(
            env.mailbox_url(), user=recipient, password="secret-pw"
        ) as theirs,
    ):
        got = [h for b in theirs.sync("Inbox", None) for h in b.added]
    assert [(h.subject, h.message_id) for h in got] == [(subject, email["messageid"])]
    assert "CRM:" in subject
    # The copy in Sent Items shows tracked after the next cycle.
    ws.sync_cycle()
    copies = ws.store().messages_by_message_id(email["messageid"])
    assert copies and all(c.track_state is TrackState.TRACKED for c in copies)
    assert {c.header.ref.folder for c in copies} == {"Sent Items"}
    ws.close()


def test_same_message_in_two_mailboxes_is_one_activity(env: Env) -> None:
    priya = Address("priya.shah@contoso.example", "Priya Shah")
    mine, my_user = env.workspace("me2")
    hers, her_user = env.workspace("priya", owner=priya)
    assert mine.sync_cycle().ok and hers.sync_cycle().ok
    # Addressed to both: the CRM lets each see the activity (owner or party).
    mid, raw = mime(JANE, (ME, priya), "For both of you")
    env.dovecot.deliver(my_user, raw)
    env.dovecot.deliver(her_user, raw)
    mine.sync_mail()
    assert mine.track([row_of(mine, mid).id]).errors == ()
    hers.sync_cycle()
    assert row_of(hers, mid).track_state is TrackState.TRACKED_BY_OTHER
    assert hers.track([row_of(hers, mid).id]).errors == ()
    assert len(env.emails(mid)) == 1
    assert row_of(hers, mid).track_state is TrackState.TRACKED
    assert row_of(hers, mid).activity_id == row_of(mine, mid).activity_id
    mine.sync_cycle()
    assert row_of(mine, mid).track_state is TrackState.TRACKED
    mine.close()
    hers.close()


def test_an_untrusted_crm_certificate_is_reported_not_just_offline(env: Env) -> None:
    # Dovecot's IMAPS port speaks TLS with a certificate no CA here vouches for.
    ws, _ = env.workspace("tls", crm_url=f"https://127.0.0.1:{env.dovecot.imaps_port}")
    report = ws.sync_cycle()
    assert not report.online and report.mail_online
    problems = [p.problem for p in report.errors]
    assert problems == [Problem.CRM_CERTIFICATE], report.errors
    assert "certificate" in describe_problem(report.errors[0])  # the GUI's words for it
    ws.close()


class _Refuse:
    async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        return "550 5.1.1 mailbox unavailable"


def test_pending_send_refused_by_the_mail_server_parks_and_shows_failed_in_the_crm(
    env: Env,
) -> None:
    from aiosmtpd.controller import Controller

    from core.mail import open_backend
    from tests.plugins.mailservers import PASSWORD, free_port

    port = free_port()
    controller = Controller(_Refuse(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        ws, user = env.workspace("refused")
        ws.open_mailbox = lambda: open_backend(  # type: ignore[method-assign]
            env.mailbox_url(),
            user=user,
            password=PASSWORD,
            smtp_url=f"smtp+insecure://127.0.0.1:{port}",
        )
        assert ws.sync_cycle().ok
        contact = env.create_contact(env.dovecot.new_user("r"))
        with env.http() as http:
            r = http.post(
                "emails",
                json={
                    "subject": "Refused",
                    "email_activity_parties": [
                        {
                            "partyid_contact@odata.bind": f"/contacts({contact})",
                            "participationtypemask": 2,
                        }
                    ],
                },
            )
            activity = r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
            http.post(
                f"emails({activity})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": True}
            ).raise_for_status()
        report = ws.sync_cycle()
        assert report.online and report.counts["outbox_parked"] == 1
        # the sync says so: not ok, one parked-operation problem naming the mail
        assert not report.ok
        [problem] = report.errors
        assert problem.problem is Problem.OPERATION_PARKED and "550" in problem.detail
        [op] = ws.queue()
        assert op.state == "parked" and "550" in (op.last_error or "")
        with env.http() as http:
            assert http.get(f"emails({activity})").json()["statuscode"] == 8  # Failed
        ws.close()
    finally:
        controller.stop()
