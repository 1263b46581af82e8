"""A client process that replays an outbox against the CRM until nothing is left to do.

Run by ``test_kill.py`` as a subprocess that is SIGKILLed at random points: it prints
``ready`` once its store and CRM client are open, then replays.
"""

from __future__ import annotations

import sys
import time

from core.crm import BasicAuth, CrmClient
from core.outbox import Outbox
from core.settings import OrgSettings
from core.store import Store
from core.sync.operations import CrmApplier, LocalEffects


def main(store_path: str, crm_url: str, user: str, password: str) -> int:
    store = Store.open(store_path)
    crm = CrmClient(crm_url, BasicAuth(user, password), timeout=30)
    outbox = Outbox(store)
    effects = LocalEffects(store, OrgSettings())
    print("ready", flush=True)
    while True:
        result = outbox.replay(CrmApplier(crm), effects.commit, on_parked=effects.parked)
        waiting = store.conn.execute(
            "SELECT count(*) FROM outbox WHERE state = 'queued' AND next_attempt_at > ?",
            (time.time(),)).fetchone()[0]
        if not result.stopped and not waiting and not outbox.ready():
            break
        time.sleep(0.05)
    print("drained", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
