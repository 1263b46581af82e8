"""Distributed mode: a mailbox's passes land on whichever worker takes the job, and each
machine keeps its own per-mailbox state. A pass on machine B after passes on machine A starts
from B's empty (or stale) state: it must track what arrived since A's last pass, never
duplicate what A tracked, never track what the owner's option left untracked or mail that
was there before the router began, and never send again what A's pass sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from core.domain import demo_data
from core.domain.model import TrackState
from core.outbox.queue import Outbox
from core.store import Store
from crmserver import RunningServer
from router.context import RouterContext
from router.processing import run_mailbox
from tests.plugins.mailservers import DovecotServer, SmtpServer, free_port

from .processing_env import SAM, SUPPORT, RouterEnv, mime
from .test_processing_outgoing import email, send_from_crm

JANE = demo_data.CONTACTS[0].email


@pytest.fixture
def env(
    fresh_crm_https: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[RouterEnv]:
    e = RouterEnv(fresh_crm_https, dovecot, smtp_server, tmp_path)
    e.register_service()
    e.mailbox_for(SAM.email)
    yield e


def machine(env: RouterEnv, name: str) -> RouterContext:
    """The router's context on one machine: its own state directory."""
    ctx = env.context()
    ctx.state_dir = env.tmp / f"state-{name}"
    return ctx


def dated(sender: str, subject: str, days_ago: float = 0.0) -> tuple[str, bytes]:
    mid, raw = mime(sender, SAM.email, subject)
    when = format_datetime(datetime.now(UTC) - timedelta(days=days_ago))
    head, _, body = raw.partition(b"\n\n")
    lines = [ln for ln in head.split(b"\n") if not ln.startswith(b"Date:")]
    return mid, b"\n".join([*lines, f"Date: {when}".encode()]) + b"\n\n" + body


def tracked(env: RouterEnv, message_id: str) -> int:
    return len(env.emails(message_id))  # Sam owns what the router tracks for him


def test_a_pass_on_another_machine_tracks_new_mail_once_and_leaves_the_rest(
    env: RouterEnv,
) -> None:
    a, b = machine(env, "a"), machine(env, "b")
    box = env.mailbox_id(SAM.email)
    env.set_filter(SAM.email, 2)  # mail from the CRM's contacts, accounts and leads
    old, raw = dated(JANE, "From before the router began", days_ago=3)
    env.deliver(SAM.email, raw)
    assert run_mailbox(a, box).errors == ()  # the baseline on A
    known, raw = mime(JANE, SAM.email, "A question from a contact")
    env.deliver(SAM.email, raw)
    stranger, raw = mime("someone@nowhere.example", SAM.email, "Not from a CRM record")
    env.deliver(SAM.email, raw)
    on_a = run_mailbox(a, box)
    assert on_a.errors == () and on_a.promoted == 1
    assert (tracked(env, known), tracked(env, stranger), tracked(env, old)) == (1, 0, 0)

    since, raw = mime(JANE, SAM.email, "Arrived between the pass on A and the pass on B")
    env.deliver(SAM.email, raw)
    on_b = run_mailbox(b, box)  # B has never seen this mailbox
    assert on_b.errors == ()
    assert tracked(env, since) == 1  # not lost
    assert tracked(env, known) == 1  # decided again on B: found by Message-ID, no duplicate
    assert tracked(env, stranger) == 0  # the owner's option still says no
    assert tracked(env, old) == 0  # mail from before the router stays untracked
    with Store.open(b.state_path(box)) as store:
        assert store.tracking.state_of(since) is TrackState.TRACKED
        assert store.tracking.state_of(stranger) is TrackState.NOT_TRACKED

    later, raw = mime(JANE, SAM.email, "Back on A, whose state is stale")
    env.deliver(SAM.email, raw)
    again = run_mailbox(a, box)
    assert again.errors == ()
    assert [tracked(env, m) for m in (known, since, later, stranger, old)] == [1, 1, 1, 0, 0]


def test_mail_a_stale_state_queued_for_sending_is_not_sent_again(
    env: RouterEnv, smtp_server: SmtpServer
) -> None:
    """A claimed a Pending Send mail, its SMTP server was down; meanwhile the mail was sent
    from another machine's pass. When A's pass comes round again it must not send it."""
    box = env.mailbox_id(SAM.email)
    env.smtp_url = f"smtp+insecure://127.0.0.1:{free_port()}"  # nothing listens there
    down = machine(env, "a")
    activity = send_from_crm(env, "Sent elsewhere meanwhile")
    assert run_mailbox(down, box).sent == 0
    with env.http(SAM.email) as http:  # what the other machine's pass did
        http.patch(f"emails({activity})", json={"statecode": 1, "statuscode": 3}).raise_for_status()
    env.smtp_url = None
    up = machine(env, "a")  # the same machine, its SMTP server back
    with Store.open(up.state_path(box)) as store:
        assert len(Outbox(store).pending()) == 1  # the send A queued, waiting
        Outbox(store).reset_backoff()  # as if its backoff had passed
    before = len(smtp_server.received)
    run = run_mailbox(up, box)
    assert run.errors == ()
    assert len(smtp_server.received) == before
    assert email(env, activity)["statuscode"] == 3
    with Store.open(up.state_path(box)) as store:
        assert Outbox(store).pending() == []  # done: nothing left to send


def test_queue_mail_decided_again_on_another_machine_is_not_queued_again(env: RouterEnv) -> None:
    """The Support queue's mail became a queue item on A and an agent removed it from the
    queue; B decides the mail again (its state is new) and must not put it back."""
    env.mailbox_for(SUPPORT)
    a, b = machine(env, "a"), machine(env, "b")
    box = env.mailbox_id(SUPPORT)
    run_mailbox(a, box)  # baseline
    mid, raw = mime(JANE, SUPPORT, "Where is my order?")
    env.deliver(SUPPORT, raw)
    on_a = run_mailbox(a, box)
    assert on_a.errors == () and (on_a.promoted, on_a.queued) == (1, 1)
    [row] = a.crm.query("emails", select=["activityid"], filter=f"messageid eq '{mid}'")
    items = f"_objectid_value eq {row['activityid']}"
    [item] = a.crm.query("queueitems", select=["queueitemid"], filter=items)
    a.crm.update("queueitems", item["queueitemid"], {"statecode": 1})  # removed from it
    on_b = run_mailbox(b, box)
    assert on_b.errors == () and on_b.queued == 0
    rows = list(a.crm.query("queueitems", select=["queueitemid", "statecode"], filter=items))
    assert [(r["queueitemid"], r["statecode"]) for r in rows] == [(item["queueitemid"], 1)]
    assert (
        len(list(a.crm.query("emails", select=["activityid"], filter=f"messageid eq '{mid}'"))) == 1
    )
