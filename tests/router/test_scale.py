"""Scale and faults: 200 users' mailboxes (Maildir, two new mails each) processed by the
router's own processing in three worker processes on a real Redis, the emulator as the CRM,
while worker processes are SIGKILLed twenty times at random moments of the run (and started
again). At the end every mail is an e-mail activity exactly once (looked up by Message-ID),
every mailbox's run is recorded, no mailbox was ever processed by two live workers at once,
and the emulator's database and every state file pass SQLite's integrity check.

The mailboxes were processed before (the CRM says when: ``lastsuccessfulsynccompletedon``), so
a worker whose state is new decides the mail since then instead of taking it as a baseline
(``router/__init__.py``). Kills are paced by progress (the n-th after n/22 of the passes), so
they fall inside the run however fast the machine is; the time limits are hang guards only.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.mail.maildir import MaildirBackend
from crmserver import RunningServer
from crmserver.auth import hash_password
from crmserver.seed import add_user, user_id
from crmserver.storage import Storage
from router.state import RedisState
from tests.plugins.mailservers import DovecotServer, SmtpServer
from tests.plugins.redis import RedisServer

from .conftest import RouterProcesses, wait_until
from .processing_env import CLIENT_ID, RouterEnv, mime

MAILBOXES = 200
MAILS_EACH = 2
KILLS = 20
WORKERS = 3
DOMAIN = "scale.contoso.example"
PROCESSOR = "tests.router.scale_processor:from_config"


def users() -> list[str]:
    return [f"user{n:03d}@{DOMAIN}" for n in range(MAILBOXES)]


def provision(crm: RunningServer) -> None:
    """200 users whose incoming mail the router processes (all mail tracked), each last
    processed ten minutes ago."""
    storage = Storage(str(crm.settings.db_path))
    try:
        hashed = hash_password("unused")
        for address in users():
            add_user(
                storage,
                first="Scale",
                last=address.split("@")[0],
                email=address,
                password="",
                password_hash=hashed,
            )
        ids = [user_id(a) for a in users()]
        marks = ",".join("?" * len(ids))
        last = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with storage.transaction():
            storage.execute(
                "UPDATE mailbox SET incomingemaildeliverymethod = 2,"
                f" outgoingemaildeliverymethod = 0, lastsuccessfulsynccompletedon = ?"
                f" WHERE regardingobjectid IN ({marks})",
                (last, *ids),
            )
            storage.execute(
                "UPDATE usersettings SET incomingemailfilteringmethod = 0"
                f" WHERE systemuserid IN ({marks})",
                tuple(ids),
            )
    finally:
        storage.close()


def deliver(root: Path) -> dict[str, list[str]]:
    """Each user's Maildir with its new mail; the Message-IDs per user."""
    sent: dict[str, list[str]] = {}
    for n, address in enumerate(users()):
        backend = MaildirBackend(root / f"box{n:03d}")
        inbox = backend.folder("inbox").path
        for k in range(MAILS_EACH):
            sender = f"customer{k}@fabrikam{n % 7}.example"
            mid, raw = mime(sender, address, f"Order {n}-{k}", message_id=f"<{uuid.uuid4().hex}@s>")
            backend.append(inbox, raw, is_read=False)
            sent.setdefault(address, []).append(mid)
        backend.close()
    return sent


def config(env: RouterEnv, redis_url: str, root: Path) -> Path:
    lines = [
        "[crm]",
        f'url = "{env.crm.url}"',
        f'client_id = "{CLIENT_ID}"',
        f'ca_file = "{env.crm.ca_file}"',
        "[router]",
        f'state_dir = "{env.tmp / "state"}"',
        "[scale]",
        f'redis = "{redis_url}"',
        f'domain = "{DOMAIN}"',
    ]
    for n, address in enumerate(users()):
        lines += [f'[mailboxes."{address}"]', f'url = "maildir:{root / f"box{n:03d}"}"']
    path = env.tmp / "router.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def env(
    fresh_crm_https: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[RouterEnv]:
    e = RouterEnv(fresh_crm_https, dovecot, smtp_server, tmp_path)
    e.register_service()
    yield e


def tracked_counts(env: RouterEnv) -> dict[str, int]:
    """Message-ID → e-mail activities with it, over every e-mail the service can read."""
    ctx_crm = env.context().crm
    counts: dict[str, int] = {}
    for row in ctx_crm.query("emails", select=["messageid"], page_size=5000):
        mid = row.get("messageid")
        if mid:
            counts[mid] = counts.get(mid, 0) + 1
    return counts


def integrity(path: Path) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def test_200_mailboxes_three_workers_twenty_kills_every_mail_tracked_once(
    env: RouterEnv,
    router_procs: RouterProcesses,
    fresh_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Worker processes have no keyring of the test's: the secrets come from the environment.
    monkeypatch.setenv("TRACKBOX_CRM_PASSWORD", "router-secret")
    monkeypatch.setenv("TRACKBOX_MAIL_PASSWORD", "maildir-needs-none")
    provision(env.crm)
    root = env.tmp / "maildirs"
    sent = deliver(root)
    cfg = config(env, fresh_redis.url, root)
    common = ["--broker", fresh_redis.url, "--config", str(cfg), "--processor", PROCESSOR]
    fast = ["--heartbeat-timeout", "2", "--lock-ttl", "3", "--busy-delay", "0.3"]
    fast += ["--min-backoff", "0.5"]

    def worker() -> Any:
        return router_procs.start("worker", *common, *fast, "--workers", "2")

    workers = [worker() for _ in range(WORKERS)]
    scheduler = router_procs.start("run", *common, *fast, "--workers", "0", "--once")
    client = fresh_redis.client()
    rng = random.Random(19)
    kills = 0
    try:
        while scheduler.poll() is None and kills < KILLS:
            threshold = (kills + 1) * MAILBOXES // (KILLS + 2)
            wait_until(
                lambda t=threshold: (
                    int(client.get("t:done") or 0) >= t or scheduler.poll() is not None
                ),
                f"{threshold} passes",
                timeout=300,
            )
            if scheduler.poll() is not None:
                break
            victim = rng.randrange(WORKERS)
            router_procs.kill(workers[victim], signal.SIGKILL)
            workers[victim] = worker()
            kills += 1
        code = wait_until(
            lambda: scheduler.poll() is not None and (scheduler.returncode,), "the run", 300
        )
    finally:
        overlaps = client.smembers("t:overlaps")
        rows = RedisState(client).snapshot()
        client.close()
    assert kills == KILLS, f"the run ended after {kills} kills"
    assert code == (0,), router_procs.logs()
    assert overlaps == set()  # never two live workers on one mailbox

    scale_rows = [r for r in rows if r.address.endswith(DOMAIN)]
    assert len(scale_rows) == MAILBOXES
    assert all(r.last_finished and not r.gave_up and not r.run_errors for r in scale_rows), [
        (r.address, r.run_errors, r.last_error) for r in scale_rows if r.run_errors or r.gave_up
    ][:5]

    counts = tracked_counts(env)
    expected = [mid for mids in sent.values() for mid in mids]
    missing = [m for m in expected if counts.get(m, 0) == 0]
    doubled = [m for m in expected if counts.get(m, 0) > 1]
    assert (len(missing), len(doubled)) == (0, 0), (missing[:3], doubled[:3])

    assert integrity(Path(env.crm.settings.db_path)) == "ok"
    states = sorted((env.tmp / "state").glob("*.sqlite"))
    assert len(states) >= MAILBOXES  # one per mailbox, and the address book
    assert {integrity(p) for p in states} == {"ok"}
