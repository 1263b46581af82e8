"""The router sends a server-side user's CRM e-mail in Pending Send: through SMTP with its
tracking token, saved to Sent Items, marked Sent in the CRM; when sending fails, an alert
(``tracelog``) on the mailbox says so and the e-mail is not marked Sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from core.crm import CrmPermanentError
from core.domain import demo_data
from core.mail import open_backend
from crmserver import RunningServer
from crmserver.seed import guid, user_id
from router import outgoing, processing
from router.processing import run_mailbox
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer, free_port

from .processing_env import SAM, SUPPORT, RouterEnv

JANE = demo_data.CONTACTS[0].email


@pytest.fixture
def env(
    fresh_crm_https: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[RouterEnv]:
    e = RouterEnv(fresh_crm_https, dovecot, smtp_server, tmp_path)
    e.register_service()
    e.mailbox_for(SAM.email)
    yield e


def send_from_crm(env: RouterEnv, subject: str) -> str:
    """Sam writes an e-mail in the CRM and presses Send: it waits in Pending Send."""
    with env.http(SAM.email) as http:
        r = http.post(
            "emails",
            json={
                "subject": subject,
                "description": "<p>Your quote is attached.</p>",
                "email_activity_parties": [
                    {
                        "partyid_systemuser@odata.bind": f"/systemusers({user_id(SAM.email)})",
                        "participationtypemask": 1,
                    },
                    {
                        "partyid_contact@odata.bind": f"/contacts({guid('contact', JANE)})",
                        "participationtypemask": 2,
                    },
                ],
            },
        )
        r.raise_for_status()
        activity = r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        http.post(
            f"emails({activity})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": True}
        ).raise_for_status()
        assert http.get(f"emails({activity})").json()["statuscode"] == 6
    return activity


def email(env: RouterEnv, activity: str) -> dict[str, Any]:
    with env.http(SAM.email) as http:
        return dict(http.get(f"emails({activity})").json())


def sent_subjects(env: RouterEnv) -> list[str]:
    backend = open_backend(env.dovecot.url(), user=env.users[SAM.email], password=PASSWORD)
    with backend:
        folder = backend.folder("sent").path
        return [h.subject for batch in backend.sync(folder, None, 100) for h in batch.added]


def test_pending_send_mail_is_sent_with_its_token_and_marked_sent(
    env: RouterEnv, smtp_server: SmtpServer
) -> None:
    ctx = env.context()
    box = env.mailbox_id(SAM.email)
    activity = send_from_crm(env, "Your quote")
    before = len(smtp_server.received)
    run = run_mailbox(ctx, box)
    assert run.errors == () and run.sent == 1
    row = email(env, activity)
    assert row["statuscode"] == 3 and row["trackingtoken"]
    [(sender, rcpts, raw)] = smtp_server.received[before:]
    assert JANE in rcpts and sender == SAM.email
    assert str(message_from_bytes(raw)["Subject"]) == row["subject"]
    assert row["trackingtoken"] in row["subject"]
    assert row["subject"] in sent_subjects(env)
    again = run_mailbox(ctx, box)
    assert again.sent == 0 and len(smtp_server.received) == before + 1


def test_a_failing_smtp_server_raises_an_alert_on_the_mailbox(env: RouterEnv) -> None:
    env.smtp_url = f"smtp+insecure://127.0.0.1:{free_port()}"  # nothing listens there
    ctx = env.context()
    box = env.mailbox_id(SAM.email)
    activity = send_from_crm(env, "A quote that cannot leave")
    run = run_mailbox(ctx, box)
    assert run.sent == 0 and run.errors
    assert email(env, activity)["statuscode"] != 3
    alerts = list(
        ctx.crm.query(
            "tracelogs", select=["text", "level"], filter=f"_regardingobjectid_value eq {box}"
        )
    )
    assert alerts and all(a["level"] == 3 for a in alerts)
    assert any("outbox" in a["text"] or "send" in a["text"].lower() for a in alerts)


def test_two_passes_at_once_send_each_pending_mail_once(
    env: RouterEnv, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers on one mailbox at once (its lock expired; two machines with their own
    state): both reach the claim together, and the CRM hands each mail to one of them."""
    first = env.context()
    second = env.context()
    second.state_dir = env.tmp / "state-of-another-machine"
    box = env.mailbox_id(SAM.email)
    activities = [send_from_crm(env, f"Quote {n}") for n in range(6)]
    before = len(smtp_server.received)
    together = threading.Barrier(2, timeout=60)
    claim = outgoing.queue_sends

    def claim_together(*args: Any) -> int:
        together.wait()  # both passes claim at the same moment
        return claim(*args)

    monkeypatch.setattr(outgoing, "queue_sends", claim_together)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda ctx: run_mailbox(ctx, box), (first, second)))
    assert all(run.errors == () for run in runs), [run.errors for run in runs]
    assert sum(run.sent for run in runs) == 6
    subjects = [str(message_from_bytes(raw)["Subject"]) for _, _, raw in smtp_server.received]
    mine = [s for s in subjects[before:] if s.startswith("Quote ")]
    assert len(mine) == 6 and len(set(mine)) == 6  # each mail sent once
    assert all(email(env, a)["statuscode"] == 3 for a in activities)


def test_the_claim_asks_for_this_mailboxs_mail_only(env: RouterEnv) -> None:
    """Another server-side mailbox's Pending Send mail is not handed to this mailbox's pass."""
    ctx = env.context()
    sam_box = env.mailbox_id(SAM.email)
    send_from_crm(env, "Sam's own")
    other = outgoing.hand_out(ctx.crm, processing.mailbox(ctx, env.mailbox_id(SUPPORT)))
    assert other == []
    [row] = outgoing.hand_out(ctx.crm, processing.mailbox(ctx, sam_box))
    assert row["subject"].startswith("Sam's own") and row["statuscode"] == 7


def test_a_hand_out_condition_the_crm_cannot_honour_is_refused_not_ignored(
    env: RouterEnv,
) -> None:
    """Ignoring a criterion would hand out (and mark Sending) mail the caller did not ask for."""
    ctx = env.context()
    send_from_crm(env, "Stays in Pending Send")
    query = {"Criteria": {"Conditions": [{"AttributeName": "subject", "Operator": "Equal",
                                          "Values": [{"Value": "x"}]}]}}  # fmt: skip
    with pytest.raises(CrmPermanentError):
        ctx.crm.execute_action("BackgroundSendEmail", {"Query": query})
    sams = outgoing.hand_out(ctx.crm, processing.mailbox(ctx, env.mailbox_id(SAM.email)))
    assert [row["subject"].startswith("Stays in Pending Send") for row in sams] == [True]
