"""The router on a queue's mailbox: mail becomes an e-mail activity in the queue; the
queue's e-mail-to-case rule opens a case for the customer and acknowledges it; a reply
carrying the acknowledgement's token joins the same case and opens no new one."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from core.domain import demo_data
from crmserver import RunningServer
from crmserver.seed import guid
from router.context import RouterContext
from router.processing import run_mailbox
from tests.plugins.mailservers import DovecotServer, SmtpServer

from .processing_env import SUPPORT, RouterEnv, mime

JANE = demo_data.CONTACTS[0].email
SUPPORT_QUEUE = guid("queue", "Support")


@pytest.fixture
def env(
    fresh_crm_https: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[RouterEnv]:
    e = RouterEnv(fresh_crm_https, dovecot, smtp_server, tmp_path)
    e.register_service()
    e.mailbox_for(SUPPORT)
    yield e


def email_of(ctx: RouterContext, message_id: str) -> dict[str, Any]:
    [row] = ctx.crm.query(
        "emails",
        select=["activityid", "subject", "_regardingobjectid_value"],
        filter=f"messageid eq '{message_id}'",
    )
    return row


def cases_of(ctx: RouterContext, contact_id: str) -> list[dict[str, Any]]:
    return list(
        ctx.crm.query(
            "incidents",
            select=["incidentid", "title", "ticketnumber", "_customerid_value"],
            filter=f"_customerid_value eq {contact_id}",
        )
    )


def test_queue_mail_is_queued_and_opens_one_case(env: RouterEnv, smtp_server: SmtpServer) -> None:
    ctx = env.context()
    box = env.mailbox_id(SUPPORT)
    run_mailbox(ctx, box)  # baseline
    jane = guid("contact", JANE)
    before = len(cases_of(ctx, jane))
    mid, raw = mime(JANE, SUPPORT, "The printer is on fire")
    env.deliver(SUPPORT, raw)
    sent_before = len(smtp_server.received)
    run = run_mailbox(ctx, box)
    assert run.errors == ()
    assert (run.promoted, run.queued, run.cases, run.sent) == (1, 1, 1, 1)
    email = email_of(ctx, mid)
    [item] = ctx.crm.query(
        "queueitems", select=["_queueid_value"], filter=f"_objectid_value eq {email['activityid']}"
    )
    assert item["_queueid_value"] == SUPPORT_QUEUE
    cases = cases_of(ctx, jane)
    assert len(cases) == before + 1
    case = next(c for c in cases if c["title"] == "The printer is on fire")
    assert case["ticketnumber"]
    assert email["_regardingobjectid_value"] == case["incidentid"]
    [(_, rcpts, ack_raw)] = smtp_server.received[sent_before:]
    assert JANE in rcpts
    ack_subject = str(message_from_bytes(ack_raw)["Subject"])
    assert "CRM:" in ack_subject  # the acknowledgement carries its tracking token

    reply_mid, reply = mime(JANE, SUPPORT, f"Re: {ack_subject}", body="It is still burning.")
    env.deliver(SUPPORT, reply)
    again = run_mailbox(ctx, box)
    assert again.errors == ()
    assert (again.promoted, again.cases) == (1, 0)
    assert email_of(ctx, reply_mid)["_regardingobjectid_value"] == case["incidentid"]
    assert len(cases_of(ctx, jane)) == before + 1


def test_a_rule_item_filter_excludes_mail(env: RouterEnv) -> None:
    with env.http() as http:  # the administrator narrows the rule to one domain
        http.patch(
            f"convertruleitems({guid('convertruleitem', 'Support: e-mail to case')})",
            json={"tbx_fromdomain": "northwind.example"},
        ).raise_for_status()
    ctx = env.context()
    box = env.mailbox_id(SUPPORT)
    run_mailbox(ctx, box)
    mid, raw = mime(JANE, SUPPORT, "Only a question")
    env.deliver(SUPPORT, raw)
    run = run_mailbox(ctx, box)
    assert run.errors == ()
    assert (run.promoted, run.queued, run.cases) == (1, 1, 0)
    assert email_of(ctx, mid)["_regardingobjectid_value"] is None
