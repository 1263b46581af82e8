"""A client process that replays an outbox against the CRM until nothing is left to do.

Run by ``test_kill.py`` as a subprocess that is SIGKILLed at random points: it prints
``ready`` once its store and CRM client are open, then replays.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from core.crm import BasicAuth, CrmClient
from core.domain.crm_settings import OrgSettings
from core.outbox.operations import CrmApplier, LocalEffects
from core.outbox.queue import Checkpoint, Operation, Outbox
from core.outbox.results import OpResult
from core.store import Store


def main(
    store_path: str, crm_url: str, user: str, password: str, crash_after_apply: str = "0"
) -> int:
    """``crash_after_apply`` = k > 0: SIGKILL this process right after the k-th CRM call
    returns, before the outbox records it — the exact crash window under test."""
    store = Store.open(store_path)
    crm = CrmClient(crm_url, BasicAuth(user, password), timeout=30)
    outbox = Outbox(store)
    effects = LocalEffects(store, OrgSettings())
    applier = CrmApplier(crm)
    applied = [0]

    def apply(op: Operation, checkpoint: Checkpoint) -> OpResult:
        result = applier(op, checkpoint)
        applied[0] += 1
        if applied[0] == int(crash_after_apply):
            print(f"crashing after {op.kind} {op.message_id}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    print("ready", flush=True)
    while True:
        result = outbox.replay(apply, effects.commit, on_parked=effects.parked)
        waiting = store.conn.execute(
            "SELECT count(*) FROM outbox WHERE state = 'queued' AND next_attempt_at > ?",
            (time.time(),),
        ).fetchone()[0]
        if not result.stopped and not waiting and not outbox.ready():
            break
        time.sleep(0.05)
    print("drained", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
