"""Reconnect replays at once: operations that backed off for many minutes while the CRM was
unreachable run in the first cycle that reaches it — also in another process (a fresh
workspace and Outbox on the same store), which never saw the CRM go away."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.model import Address, MailRef, MessageHeader, Reason
from core.mail import MailBackend, MailUnavailable
from core.outbox.kinds import Promote
from core.outbox.operations import CrmApplier
from core.outbox.queue import OpState, Outbox
from core.store import Store
from core.sync.cycle import SyncCycle
from core.workspace.facade import Workspace
from crmserver import RunningServer

ME = Address(demo_data.ME.email, demo_data.ME.full_name)
AUTH = BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD)


def unreachable_url() -> str:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def header(n: int) -> MessageHeader:
    return MessageHeader(
        ref=MailRef("Inbox", str(n)),
        message_id=f"<reconnect-{uuid.uuid4().hex}@test.example>",
        subject=f"Reconnect {n}",
        sender=Address("jane.doe@fabrikam.example"),
        to=(ME,),
    )


def no_mailbox() -> MailBackend:
    raise MailUnavailable("no mailbox in this test")


def back_off_offline(store_path: Path, rounds: int) -> list[str]:
    """Queue three promotions and replay them ``rounds`` times against a CRM that is not
    there, a fake clock jumping to the next due time (each replay stops at its first failure,
    so the three take turns): their retry delays grow to minutes."""
    clock = [time.time()]
    with Store.open(store_path) as store:
        outbox = Outbox(store, clock=lambda: clock[0])
        mids = []
        for n in range(3):
            h = header(n)
            store.upsert_headers([h])
            outbox.enqueue(Promote(h, Reason("manual", "by test"), body="<p>hi</p>"))
            mids.append(h.message_id)
        with CrmClient(unreachable_url(), AUTH, timeout=2, get_retries=0) as away:
            for _ in range(rounds):
                result = outbox.replay(CrmApplier(away))
                assert result.stopped == "offline"
                clock[0] = max(clock[0], min(op.next_attempt_at for op in outbox.pending()))
        delays = [op.next_attempt_at - time.time() for op in outbox.pending()]
        codes = {op.last_error_code for op in outbox.pending()}
    assert min(delays) > 5 * 60, delays  # backed off for minutes, in real time too
    assert codes == {"CrmUnavailable"}
    return mids


def test_the_first_cycle_that_reaches_the_crm_drains_the_queue(
    crm_server: RunningServer, tmp_path: Path
) -> None:
    store_path = tmp_path / "store.sqlite"
    mids = back_off_offline(store_path, rounds=36)

    # Another process: a fresh workspace, whose CRM was never seen unreachable.
    crm = CrmClient(crm_server.url, AUTH, timeout=30, get_retries=0)
    ws = Workspace(store_path=store_path, open_mailbox=no_mailbox, crm=crm, owner=ME)
    try:
        report = SyncCycle(ws.cycle_services()).run()
        assert report.online
        assert report.counts.get("outbox_done") == 3
        with Store.open(store_path) as store:
            left = Outbox(store).pending()
            assert left == [], [(op.state, op.last_error_code) for op in left]
        for mid in mids:
            found = list(crm.query("emails", select=["activityid"], filter=f"messageid eq '{mid}'"))
            assert len(found) == 1, (mid, found)  # each exactly once
    finally:
        ws.close()
        crm.close()


def test_a_throttled_or_mailbox_deferral_keeps_its_due_time(tmp_path: Path) -> None:
    """Only what the CRM's absence held back is made due: not a throttled operation (the CRM
    said when) nor one waiting for the mailbox."""
    with Store.open(tmp_path / "store.sqlite") as store:
        outbox = Outbox(store)
        ids = [
            outbox.enqueue(Promote(header(n), Reason("manual", "t"), body="x")) for n in range(3)
        ]
        later = time.time() + 3600
        codes = ["CrmThrottled 429", "MailUnavailable", "CrmUnavailable 503"]
        for op_id, code in zip(ids, codes, strict=True):
            outbox.rows.defer(op_id, 4, later, code, "away", "2024-01-01T00:00:00+00:00")
        assert outbox.replay_offline_now() == 1
        due = {op.id: op.next_attempt_at for op in outbox.pending()}
        assert due == {ids[0]: later, ids[1]: later, ids[2]: 0.0}
        assert all(op.state is OpState.QUEUED and op.attempts == 4 for op in outbox.pending())
