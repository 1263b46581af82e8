"""Effect exactly once: a client process replaying a 500-operation outbox is SIGKILLed 20
times (at random points, and five times exactly between a CRM call's success and the local
record of it) and restarted; the CRM (read back over its HTTP API) must then hold every
promoted mail exactly once, no untracked mail, and every regarding set."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from core.domain import demo_data
from core.domain.model import Address, MailRef, MessageHeader, Reason, RecordRef, TrackState
from core.outbox.kinds import OperationPayload, Promote, SetRegarding, Untrack
from core.outbox.queue import Outbox
from core.store import Store
from crmserver import RunningServer
from tests.plugins.crm import crm_http_client

ROOT = Path(__file__).resolve().parents[2]
KILLS = 20


def _header(run: str, i: int) -> MessageHeader:
    return MessageHeader(
        ref=MailRef("Inbox", str(i)),
        message_id=f"<kill-{run}-{i}@test.example>",
        subject=f"Order {i}",
        sender=Address("jane.doe@fabrikam.example", "Jane Doe"),
        to=(Address(demo_data.ME.email, demo_data.ME.full_name),),
    )


def _build_queue(
    store: Store, run: str, rng: random.Random, contact: RecordRef
) -> tuple[set[str], set[str], set[str]]:
    """380 promotions, 100 untracks (after their promotion), 20 set-regarding."""
    outbox = Outbox(store)
    promoted = [_header(run, i) for i in range(380)]
    untracked = {h.message_id for h in rng.sample(promoted, 100)}
    refiled = {
        h.message_id for h in rng.sample([h for h in promoted if h.message_id not in untracked], 20)
    }
    ops: list[OperationPayload] = [
        Promote(h, Reason("manual", "test"), body="<p>small</p>") for h in promoted
    ]
    # Follow-up operations go in at random later positions; per-message order is kept.
    for mid in list(untracked) + list(refiled):
        follow_up = Untrack(mid) if mid in untracked else SetRegarding(mid, contact)
        first = next(i for i, op in enumerate(ops) if op.message_id == mid)
        ops.insert(rng.randint(first + 1, len(ops)), follow_up)
    assert len(ops) == 500
    with store.transaction():
        for op in ops:
            outbox.enqueue(op)
    return {h.message_id for h in promoted}, untracked, refiled


def _run(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.outbox.replayer", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    fresh_crm: RunningServer, tmp_path: Path
) -> None:
    rng = random.Random(int(os.environ.get("KILL_SEED", "0")) or None)
    run = uuid.uuid4().hex[:8]
    with crm_http_client(fresh_crm) as http:
        contact = http.get("contacts", params={"$select": "contactid", "$top": "1"}).json()
    contact_ref = RecordRef("contact", contact["value"][0]["contactid"])
    store_path = tmp_path / "store.sqlite"
    with Store.open(store_path) as store:
        promoted, untracked, refiled = _build_queue(store, run, rng, contact_ref)
    args = [str(store_path), fresh_crm.url, demo_data.ME.email, demo_data.DEMO_PASSWORD]

    kills = windows = 0
    for n in range(KILLS):
        # Five early runs die exactly between a CRM call's success and the outbox's record
        # of it (the replayer kills itself there); the others at a random point.
        in_window = n % 2 == 0 and n < 10
        proc = _run(args + ([str(rng.randint(1, 25))] if in_window else []))
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        if in_window:
            assert proc.stdout.readline().startswith("crashing after")
            windows += 1
        else:
            time.sleep(rng.uniform(0.0, 0.35))  # a random kill point, not a timing assertion
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        if proc.wait() == -signal.SIGKILL:
            kills += 1
        proc.stdout.close()
    final = _run(args)
    out, _ = final.communicate(timeout=300)
    assert final.returncode == 0 and "drained" in out
    assert kills >= KILLS // 2, "the replay finished before most kills: not a useful test"
    assert windows == 5

    found: dict[str, list[dict]] = {}
    with crm_http_client(fresh_crm) as http:
        url: str | None = "emails"
        params: dict[str, str] | None = {
            "$select": "activityid,messageid,_regardingobjectid_value",
            "$filter": f"startswith(messageid,'<kill-{run}-')",
        }
        while url:
            body = http.get(url, params=params, headers={"Prefer": "odata.maxpagesize=500"})
            body.raise_for_status()
            data = body.json()
            for row in data["value"]:
                found.setdefault(row["messageid"], []).append(row)
            url, params = data.get("@odata.nextLink"), None

    duplicated = {m: len(r) for m, r in found.items() if len(r) > 1}
    assert duplicated == {}, f"promoted more than once: {duplicated}"
    assert set(found) == promoted - untracked
    for mid in refiled:
        assert found[mid][0]["_regardingobjectid_value"] == contact_ref.id
    with Store.open(store_path) as store:
        assert Outbox(store).counts()["done"] == 500
        for mid in list(promoted)[:50]:
            expected = TrackState.NOT_TRACKED if mid in untracked else TrackState.TRACKED
            assert store.tracking.state_of(mid) is expected
