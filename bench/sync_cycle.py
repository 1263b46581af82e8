"""Figure ``replay``: replay an outbox of N promotions against the emulator on loopback, as a
ratio against making the same ``DeliverPromoteEmail`` calls directly with the CRM client (no
queue, no local effects) in the same run. The difference is the price of durability: the
queue rows, the transaction that marks each operation done together with its tracked state
and correlation-index entry, and the Message-ID look-up that reads back the regarding record.
Default N = 500 (the size of the kill test). Target: ratio <= 2.5.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._harness import figure
from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.crm_settings import OrgSettings
from core.domain.model import Address, MailRef, MessageHeader, Reason
from core.outbox.kinds import Promote
from core.outbox.operations import CrmApplier, LocalEffects
from core.outbox.queue import Outbox
from core.store import Store

DEFAULT_SIZE = 500


def _header(run: str, i: int) -> MessageHeader:
    return MessageHeader(
        ref=MailRef("Inbox", str(i)),
        message_id=f"<bench-{run}-{i}@x.example>",
        subject=f"Order {i}",
        sender=Address("jane.doe@fabrikam.example"),
        to=(Address(demo_data.ME.email),),
    )


def run(size: int | None = None) -> list[dict[str, Any]]:
    from crmserver import Settings, run_in_thread

    n = size or DEFAULT_SIZE
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_in_thread(Settings(db_path=Path(tmp) / "org.db", seed="demo")) as server,
    ):
        crm = CrmClient(server.url, BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD))
        direct_run, queued_run = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
        start = time.perf_counter()
        for i in range(n):
            h = _header(direct_run, i)
            crm.deliver_promote_email(
                message_id=h.message_id,
                subject=h.subject,
                sender=h.sender or "",
                to=h.to,
                received_on=None,
                body="<p>small</p>",
            )
        baseline = time.perf_counter() - start
        with Store.open(Path(tmp) / "store.sqlite") as store:
            outbox = Outbox(store)
            with store.transaction():
                for i in range(n):
                    h = _header(queued_run, i)
                    outbox.enqueue(Promote(h, Reason("manual", "bench"), body="<p>small</p>"))
            effects = LocalEffects(store, OrgSettings())
            start = time.perf_counter()
            result = outbox.replay(CrmApplier(crm), effects.commit)
            value = time.perf_counter() - start
            assert len(result.done) == n, result
        crm.close()
    return [
        figure(
            "sync_cycle",
            "replay",
            value=value,
            unit="s",
            baseline=baseline,
            ratio=value / baseline,
            target=2.5,
            operations=n,
            per_operation_ms=round(value / n * 1000, 2),
        )
    ]
