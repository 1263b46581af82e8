"""The router on the forward mailbox: each message attached (``message/rfc822``) to a mail a
user forwarded is tracked as the original, for the forwarding user; the wrapper never is."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.domain import demo_data
from core.domain.model import TrackState
from core.store import Store
from crmserver import RunningServer
from crmserver.seed import user_id
from router.forward import originals
from router.processing import list_mailboxes, run_mailbox
from tests.plugins.mailservers import DovecotServer, SmtpServer

from .processing_env import ADMIN, RouterEnv, mime

FORWARD = "crm-forward@contoso.example"
JANE = demo_data.CONTACTS[0].email


@pytest.fixture
def env(
    fresh_crm_https: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[RouterEnv]:
    e = RouterEnv(fresh_crm_https, dovecot, smtp_server, tmp_path)
    e.register_service()
    with e.http() as http:  # the administrator sets up the organisation's forward mailbox
        http.post(
            "mailboxes",
            json={
                "name": "CRM forward mailbox",
                "emailaddress": FORWARD,
                "isforwardmailbox": True,
                "incomingemaildeliverymethod": 2,
                "outgoingemaildeliverymethod": 0,
            },
        ).raise_for_status()
    e.mailbox_for(FORWARD)
    yield e


def test_forwarded_originals_are_tracked_for_the_forwarding_user(env: RouterEnv) -> None:
    ctx = env.context()
    box = env.mailbox_id(FORWARD)
    assert box in {b.mailbox_id for b in list_mailboxes(ctx)}
    run_mailbox(ctx, box)  # baseline
    env.set_filter(ADMIN, 0)
    original_mid, original = mime(JANE, ADMIN, "Our order of 40 chairs")
    wrapper_mid, wrapper = mime(ADMIN, FORWARD, "Fw: Our order of 40 chairs", attach=original)
    stray_mid, stray = mime("someone@nowhere.example", FORWARD, "Fw: spam", attach=original)
    env.deliver(FORWARD, wrapper)
    env.deliver(FORWARD, stray)
    run = run_mailbox(ctx, box)
    assert run.errors == ()
    assert run.promoted == 1
    [email] = env.emails(original_mid, reader=ADMIN)
    assert email["_ownerid_value"] == user_id(ADMIN)
    assert email["subject"] == "Our order of 40 chairs"
    assert list(ctx.crm.query("emails", filter=f"messageid eq '{wrapper_mid}'")) == []
    assert list(ctx.crm.query("emails", filter=f"messageid eq '{stray_mid}'")) == []
    with Store.open(ctx.state_path(box)) as store:
        assert store.tracking.state_of(wrapper_mid) is TrackState.NOT_TRACKED
        assert store.tracking.state_of(original_mid) is TrackState.TRACKED
        [audit] = store.tracking.audit_log(original_mid)
        assert audit.reason.code == "all_email"
    again = run_mailbox(ctx, box)
    assert again.errors == () and again.promoted == 0
    assert len(env.emails(original_mid, reader=ADMIN)) == 1


def test_an_attached_message_sent_base64_encoded_is_read_too() -> None:
    _, original = mime(JANE, ADMIN, "Encoded original")
    wrapper = (
        b"From: " + ADMIN.encode() + b"\r\nSubject: Fw\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(original)
        + b"\r\n--b--\r\n"
    )
    [found] = originals(wrapper)
    assert b"Subject: Encoded original" in found
