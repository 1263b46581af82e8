"""The CRM emulator killed under a replaying client: ``trackbox-crm serve`` on a file database
is SIGKILLed five times (once during a sync cycle's first CRM steps, then at random points of
the replay of ~280 operations) and restarted on the same file and port. After each kill its
database passes ``PRAGMA integrity_check``; afterwards the client's store does too, nothing is
parked, and the CRM, read over its HTTP API, holds every promoted mail exactly once with its
regarding — no operation lost or duplicated."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from imapclient import IMAPClient

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.model import Address, RecordRef, TrackState
from core.mail import open_backend
from core.store import Store
from core.workspace.facade import Workspace
from tests.e2e.mail_syncer import Client, integrity, outbox_counts
from tests.plugins.mailservers import DovecotServer, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
KILLS = 5
PROMOTED, REFILED, UNTRACKED = 200, 40, 40
ME = Address(demo_data.ME.email, demo_data.ME.full_name)


class Emulator:
    """``trackbox-crm serve`` in its own process on one database file and port."""

    def __init__(self, db: Path, log: Path) -> None:
        self.db, self.log, self.port = db, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        code = "import sys; from crmserver.cli import main; sys.exit(main(sys.argv[1:]))"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, "serve", "--db", str(self.db)]
                + ["--port", str(self.port), "--seed", "demo"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        wait_for_port(self.port, "trackbox-crm", self.log, timeout=60)

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/api/data/v9.2/",
            auth=(ME.email, demo_data.DEMO_PASSWORD),
            headers={"Accept": "application/json", "OData-Version": "4.0"},
            timeout=30,
        )


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    server = Emulator(tmp_path / "org.db", tmp_path / "crm.log")
    try:
        with server.http() as http:  # seeded and answering
            http.get("WhoAmI").raise_for_status()
        yield server
    finally:
        server.stop()


def _mime(run: str, n: int) -> bytes:
    return (
        f"From: Jane Doe <jane.doe@fabrikam.example>\r\nTo: {ME.email}\r\n"
        f"Subject: Order {n}\r\nDate: Mon, 02 Nov 2026 10:{n % 60:02d}:00 +0000\r\n"
        f"Message-ID: <ke-{run}-{n}@fabrikam.example>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nOrder {n}, please.\r\n"
    ).encode()


def _queue(
    ws: Workspace, rng: random.Random, contact: RecordRef
) -> tuple[set[str], set[str], set[str]]:
    """Track every message, then set the regarding of some and untrack others: the promoted,
    refiled and untracked Message-IDs."""
    rows = list(ws.store().message_rows("Inbox", 0, PROMOTED + 10))
    assert len(rows) == PROMOTED
    ws.enqueue_track([r.id for r in rows])
    picked = rng.sample(rows, REFILED + UNTRACKED)
    refiled, untracked = picked[:REFILED], picked[REFILED:]
    ws.enqueue_set_regarding([r.id for r in refiled], contact)
    ws.enqueue_untrack([r.id for r in untracked])
    return (
        {r.header.message_id for r in rows},
        {r.header.message_id for r in refiled},
        {r.header.message_id for r in untracked},
    )


def _crm_emails(emulator: Emulator, run: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    with emulator.http() as http:
        url: str | None = "emails"
        params: dict[str, str] | None = {
            "$select": "activityid,messageid,_regardingobjectid_value",
            "$filter": f"startswith(messageid,'<ke-{run}-')",
        }
        while url:
            page = http.get(url, params=params, headers={"Prefer": "odata.maxpagesize=500"})
            page.raise_for_status()
            data = page.json()
            for row in data["value"]:
                found.setdefault(row["messageid"], []).append(row)
            url, params = data.get("@odata.nextLink"), None
    return found


def test_sigkill_of_the_emulator_loses_and_duplicates_nothing(
    emulator: Emulator, dovecot: DovecotServer, tmp_path: Path
) -> None:
    seed = int(os.environ.get("KILL_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    user = dovecot.new_user("ke")
    with IMAPClient(dovecot.host, dovecot.imap_port, ssl=False) as imap:
        imap.login(user, dovecot.password)
        imap.multiappend("INBOX", [_mime(run, n) for n in range(PROMOTED)])
    with emulator.http() as http:
        contact = http.get("contacts", params={"$select": "contactid", "$top": "1"}).json()
    contact_ref = RecordRef("contact", contact["value"][0]["contactid"])

    store, stop = tmp_path / "store.sqlite", tmp_path / "stop"
    url = dovecot.url()
    crm = CrmClient(emulator.url, BasicAuth(ME.email, demo_data.DEMO_PASSWORD), get_retries=0)
    ws = Workspace(
        store, lambda: open_backend(url, user=user, password=dovecot.password), crm, ME, ME.email
    )
    assert ws.sync_mail().errors == ()
    promoted, refiled, untracked = _queue(ws, rng, contact_ref)
    ws.close()
    total = sum(outbox_counts(store).values())
    assert total == PROMOTED + REFILED + UNTRACKED

    stop.touch()  # the client ends once its queue is empty
    client = Client(
        ["cycle", str(store), url, user, dovecot.password, emulator.url, str(stop)],
        tmp_path / "client.log",
    )
    client.wait_for("ready")
    # The first kill lands in the first cycle's CRM steps (settings, address books, tracked
    # state); the others when the replay has done a random number of operations.
    points = [0, *sorted(rng.sample(range(10, total - 20), KILLS - 1))]
    kills = 0
    for n, point in enumerate(points):
        deadline = time.monotonic() + 120  # a hang guard, not a speed bound
        while outbox_counts(store).get("done", 0) < point:
            assert client.proc.poll() is None, client.lines[-5:]
            assert time.monotonic() < deadline, f"the replay stalled before {point} done"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.3) if n == 0 else rng.uniform(0.0, 0.05))
        emulator.kill()
        kills += 1
        assert integrity(emulator.db) == "ok", f"emulator database corrupt after kill {n + 1}"
        time.sleep(rng.uniform(0.05, 0.6))  # the client finds the CRM away meanwhile
        emulator.start()
    assert client.finish() == 0 and client.lines[-1] == "drained", client.lines[-5:]
    offline_passes = sum(1 for p in client.passes() if not p[1])

    found = _crm_emails(emulator, run)
    emulator.stop()
    assert integrity(emulator.db) == "ok"
    assert integrity(store) == "ok"
    duplicated = {m: len(r) for m, r in found.items() if len(r) > 1}
    lost = (promoted - untracked) - set(found)
    counts = outbox_counts(store)
    print(
        f"\nemulator kill test (seed {seed}): kills={kills} ops={total} "
        f"offline_passes={offline_passes} lost={len(lost)} duplicated={len(duplicated)} "
        f"parked={counts.get('parked', 0)}"
    )
    assert duplicated == {}, f"promoted more than once: {duplicated}"
    assert lost == set(), f"promotions lost: {sorted(lost)[:5]}"
    assert set(found) == promoted - untracked, "untracked mail still in the CRM"
    assert counts == {"done": total}, counts
    for mid in refiled:
        assert found[mid][0]["_regardingobjectid_value"] == contact_ref.id
    with Store.open(store) as s:
        for mid in promoted:
            expected = TrackState.NOT_TRACKED if mid in untracked else TrackState.TRACKED
            assert s.tracking.state_of(mid) is expected, mid
