"""Benchmark the router's scale-out: N users' mailboxes (Maildir, a few new mails each, all
tracked) processed by the router's own processing against the emulator (its own process), with
1, 2 and 4 worker processes on a Redis (``redis-server`` started here), and in the embedded mode
(one process, no Redis). Each configuration starts from the same CRM database and mailboxes.

Throughput = mailboxes / (last pass finished - first pass started), from the router's own run
records, so process start-up is not counted. Figures (``ratio`` = our cost / the baseline's,
lower is better; ``scale_out`` = throughput / 1 worker's, higher is better):

- ``router_workers_2`` / ``router_workers_4``: cost per mailbox with 2 / 4 worker processes
  against 1 (target for 2: <= 0.625, i.e. a scale-out of 1.6, the issue's ``throughput_scaling``
  on 2 cores);
- ``router_embedded``: the embedded mode against 1 Redis worker process with as many threads.

A sizing note (mailboxes per worker process per 5-minute interval) goes to stderr.

Run: ``python -m bench router [--size MAILBOXES]``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from bench._harness import emulator_process, figure, print_figures
from core.domain.mailbox_delivery import MailboxDelivery
from core.mail.maildir import MaildirBackend
from crmserver.auth import hash_password
from crmserver.seed import ROUTER_USER_ID, add_user, seed_demo, user_id
from crmserver.storage import Storage

DEFAULT_SIZE = 100
MAILS_EACH = 3
THREADS = 2  # worker threads per process
DOMAIN = "bench-router.example"
CLIENT_ID = "trackbox-router-bench"
SECRET = "bench-router-secret"
ROOT = Path(__file__).resolve().parent.parent
INTERVAL_S = 300.0


class Filtered:
    """The router's processing, limited to the benchmark's mailboxes (the demo's own
    server-side mailboxes have no mail server here)."""

    def __init__(self, config: Path) -> None:
        from router.cli import context_processor

        self.inner = context_processor(config)
        self.context = getattr(self.inner, "context", None)  # its state_dir, for the CLI
        self.domain = "@" + str(tomllib.loads(config.read_text())["bench"]["domain"])

    def list_mailboxes(self) -> Sequence[MailboxDelivery]:
        return [b for b in self.inner.list_mailboxes() if b.address.endswith(self.domain)]

    def run_mailbox(self, mailbox_id: str) -> Any:
        return self.inner.run_mailbox(mailbox_id)


def processor(config: Path | None) -> Filtered:
    """``--processor bench.router:processor``."""
    assert config is not None
    return Filtered(config)


def users(n: int) -> list[str]:
    return [f"user{i:04d}@{DOMAIN}" for i in range(n)]


def prepare_db(db: Path, n: int) -> None:
    storage = Storage(db)
    try:
        seed_demo(storage)
        hashed = hash_password("unused")
        for address in users(n):
            add_user(storage, first="Bench", last=address[:8], email=address, password="",
                     password_hash=hashed)  # fmt: skip
        storage.add_application(CLIENT_ID, hash_password(SECRET), ROUTER_USER_ID, "router")
        ids = [user_id(a) for a in users(n)]
        marks = ",".join("?" * len(ids))
        last = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with storage.transaction():
            storage.execute(
                "UPDATE mailbox SET incomingemaildeliverymethod = 2, outgoingemaildeliverymethod"
                f" = 0, lastsuccessfulsynccompletedon = ? WHERE regardingobjectid IN ({marks})",
                (last, *ids),
            )
            storage.execute(
                "UPDATE usersettings SET incomingemailfilteringmethod = 0"
                f" WHERE systemuserid IN ({marks})",
                tuple(ids),
            )
    finally:
        storage.close()


def prepare_mail(root: Path, n: int) -> None:
    for i, address in enumerate(users(n)):
        backend = MaildirBackend(root / f"box{i:04d}")
        inbox = backend.folder("inbox").path
        for k in range(MAILS_EACH):
            msg = EmailMessage()
            msg["From"], msg["To"] = f"customer{k}@fabrikam{i % 7}.example", address
            msg["Subject"] = f"Order {i}-{k}"
            msg["Date"] = format_datetime(datetime.now(UTC))
            msg["Message-ID"] = f"<{uuid.uuid4().hex}@bench.example>"
            msg.set_content("Hello.")
            backend.append(inbox, msg.as_bytes(), is_read=False)
        backend.close()


def write_config(path: Path, url: str, state: Path, mail: Path, n: int) -> None:
    lines = ["[crm]", f'url = "{url}"', f'client_id = "{CLIENT_ID}"', "[router]",
             f'state_dir = "{state}"', "[bench]", f'domain = "{DOMAIN}"']  # fmt: skip
    for i, address in enumerate(users(n)):
        lines += [f'[mailboxes."{address}"]', f'url = "maildir:{mail / f"box{i:04d}"}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server(root: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root),
            "--save", "", "--appendonly", "no", "--daemonize", "no"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _router(*args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRACKBOX_CRM_PASSWORD": SECRET,
           "TRACKBOX_MAIL_PASSWORD": "maildir-needs-none"}  # fmt: skip
    env.pop("TRACKBOX_ROUTER_BROKER", None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "router.cli", *args, "--processor", "bench.router:processor"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _span(rows: Sequence[Any], n: int) -> float:
    mine = [r for r in rows if r.address.endswith(DOMAIN)]
    if len(mine) != n or not all(r.last_finished and not r.run_errors for r in mine):
        bad = [(r.address, r.run_errors, r.last_error) for r in mine if r.run_errors][:3]
        raise RuntimeError(f"{len(mine)} of {n} mailboxes processed cleanly: {bad}")
    start = min(r.last_started for r in mine)
    end = max(r.last_finished for r in mine)
    return float((end - start).total_seconds())


def one_run(work: Path, template: Path, mail: Path, n: int, processes: int | None,
            redis_url: str | None) -> float:  # fmt: skip
    """Mailboxes per second for one configuration (``processes`` None: embedded)."""
    work.mkdir()
    db = work / "crm.db"
    shutil.copy(template, db)
    shutil.copytree(mail, work / "mail")
    log = work / "router.log"
    with emulator_process(db) as url:
        config = work / "router.toml"
        write_config(config, url, work / "state", work / "mail", n)
        common = ["--config", str(config), "--state-dir", str(work / "state")]
        if processes is None:
            proc = _router("run", *common, "--once", "--workers", str(THREADS), log=log)
            _wait(proc, log)
            from router.cli import STATE_FILE
            from router.state import SqliteState

            return n / _span(SqliteState(work / "state" / STATE_FILE).snapshot(), n)
        return _distributed(work, common, n, processes, redis_url, log)


def _distributed(work: Path, common: list[str], n: int, processes: int, redis_url: str | None,
                 log: Path) -> float:  # fmt: skip
    import redis

    from router.state import RedisState

    assert redis_url is not None
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    broker = ["--broker", redis_url, *common]
    workers = [_router("worker", *broker, "--workers", str(THREADS), log=log)
               for _ in range(processes)]  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while client.zcard("trackbox-router-dramatiq:__heartbeats__") < processes:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker processes did not start: " + log.read_text()[-2000:])
            time.sleep(0.1)
        _wait(_router("run", *broker, "--once", "--workers", "0", log=log), log)
        return n / _span(RedisState(client).snapshot(), n)
    finally:
        for w in workers:
            os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            w.wait(timeout=60)
        client.close()


def _wait(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.wait(timeout=1800) != 0:
        raise RuntimeError("trackbox-router run --once failed: " + log.read_text()[-3000:])


def run(size: int | None = None) -> list[dict[str, Any]]:
    n = size or DEFAULT_SIZE
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp_name:
        tmp = Path(tmp_name)
        template, mail = tmp / "template.db", tmp / "mail"
        prepare_db(template, n)
        prepare_mail(mail, n)
        rates: dict[str, float] = {}
        (tmp / "redis").mkdir()
        with redis_server(tmp / "redis") as redis_url:
            for procs in (1, 2, 4):
                rates[f"redis-{procs}"] = one_run(tmp / f"redis-{procs}", template, mail, n,
                                                  procs, redis_url)  # fmt: skip
            rates["embedded"] = one_run(tmp / "embedded", template, mail, n, None, None)
    return _figures(rates, n)


def _figures(rates: dict[str, float], n: int) -> list[dict[str, Any]]:
    one = rates["redis-1"]
    out = []
    for procs, target in ((2, 0.625), (4, None)):
        rate = rates[f"redis-{procs}"]
        out.append(
            figure(
                "router",
                f"router_workers_{procs}",
                value=1 / rate,
                unit="s/mailbox",
                baseline=1 / one,
                ratio=one / rate,
                target=target,
                scale_out=round(rate / one, 3),
                mailboxes_per_s=round(rate, 2),
                mailboxes=n,
                mails_each=MAILS_EACH,
                threads_per_process=THREADS,
            )  # fmt: skip
        )
    emb = rates["embedded"]
    out.append(
        figure(
            "router",
            "router_embedded",
            value=1 / emb,
            unit="s/mailbox",
            baseline=1 / one,
            ratio=one / emb,
            target=None,
            mailboxes_per_s=round(emb, 2),
            mailboxes=n,
            threads=THREADS,
        )  # fmt: skip
    )
    per_worker = one * INTERVAL_S
    print(
        f"# sizing: one worker process ({THREADS} threads) processed {one:.1f} mailboxes/s "
        f"({MAILS_EACH} new mails each) = about {per_worker:.0f} mailboxes per "
        f"{INTERVAL_S / 60:.0f}-minute interval; 2 processes {rates['redis-2']:.1f}/s, "
        f"4 processes {rates['redis-4']:.1f}/s; embedded {emb:.1f}/s. Plan for half of that "
        "(a first pass, big mailboxes, a slower CRM).",
        file=sys.stderr,
        flush=True,
    )
    return out


if __name__ == "__main__":
    print_figures(run(int(sys.argv[1]) if len(sys.argv) > 1 else None))
