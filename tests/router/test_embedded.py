"""The embedded default: ``trackbox-router run`` in one process with no Redis runs the same
actor (dramatiq's in-process broker and worker threads), records every run, retries failures
with backoff until it gives up with a recorded error, waits out a 429, and ``status`` (another
invocation) lists it all."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from router import actors
from router.broker import BrokerSettings, make_broker, start_workers
from router.cli import main
from router.limits import LocalLimiter, ServiceLimits
from router.locks import LocalLocks
from router.state import SqliteState
from tests.router import processors
from tests.router.conftest import wait_until

LOCAL = "tests.router.processors:local_from_config"


def _run_once(tmp_path: Path, **settings: object) -> int:
    config = tmp_path / "router.json"
    config.write_text(json.dumps(settings))
    args = ["run", "--once", "--config", str(config), "--state-dir", str(tmp_path / "state")]
    return main([*args, "--processor", LOCAL, "--workers", "3", "--min-backoff", "0.05"])


def test_run_once_processes_every_mailbox_in_process_and_records_a_final_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run_once(tmp_path, mailboxes=["alpha", "beta", "gamma", "broken"], fail={"broken": 99})
    assert code == 1  # a mailbox gave up
    processor = processors.LAST_LOCAL[-1]
    assert processor.effects == {"alpha:msg-1", "beta:msg-1", "gamma:msg-1"}
    assert processor.attempts["broken"] == actors.JobSettings().max_retries + 1
    assert threading.current_thread().name not in processor.threads  # the workers ran them

    state = SqliteState(tmp_path / "state" / "router-state.sqlite3")
    rows = {row.mailbox_id: row for row in state.snapshot()}
    assert rows["alpha"].last_counts == "promoted 1, queued 0, cases 0, sent 1"
    assert rows["alpha"].next_run is not None and not rows["alpha"].pending
    assert rows["broken"].gave_up and "mail server refused broken" in rows["broken"].last_error
    assert rows["broken"].failures == actors.JobSettings().max_retries + 1

    capsys.readouterr()
    assert main(["status", "--state-dir", str(tmp_path / "state")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == [
        "MAILBOX", "ADDRESS", "LAST", "RUN", "RESULT", "NEXT", "RUN", "STATE", "ALERTS", "ERRORS"
    ]  # fmt: skip
    alpha = next(line for line in lines if line.startswith("alpha "))
    assert "alpha@test.example" in alpha and "promoted 1" in alpha and alpha.endswith("-")
    broken = next(line for line in lines if line.startswith("broken "))
    assert "GAVE UP: failed 6 times; last: RuntimeError: mail server refused broken" in broken
    assert "queue: 0 queued, 0 delayed, 0 in flight" in out
    assert "scheduler leader: -" in out  # the process has ended


def test_a_429_pauses_the_identity_and_the_job_runs_after_the_wait(tmp_path: Path) -> None:
    code = _run_once(tmp_path, mailboxes=["alpha"], throttle={"alpha": 2})
    assert code == 0
    processor = processors.LAST_LOCAL[-1]
    assert processor.attempts["alpha"] == 3 and processor.effects == {"alpha:msg-1"}
    row = SqliteState(tmp_path / "state" / "router-state.sqlite3").snapshot()[0]
    assert row.failures == 0 and row.last_error == ""  # a 429 is a wait, not a failure


def test_status_before_any_run_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--state-dir", str(tmp_path / "nothing")]) == 1
    assert "no runs recorded yet" in capsys.readouterr().err


def _embedded(
    tmp_path: Path,
    processor: processors.LocalRecordingProcessor,
    settings: actors.JobSettings,
    limiter: LocalLimiter | None = None,
) -> tuple[Any, Any, Any]:
    broker = make_broker(BrokerSettings())
    actor = actors.declare(broker)
    state = SqliteState(tmp_path / "state.sqlite3")
    runtime = actors.RouterRuntime(
        processor, LocalLocks(), state, limiter or LocalLimiter(), settings
    )
    actors.install(runtime)
    return broker, actor, start_workers(broker, 4)


def test_worker_threads_never_process_one_mailbox_at_once(tmp_path: Path) -> None:
    processor = processors.LocalRecordingProcessor(["m", "n"], sleep=0.05)
    broker, actor, worker = _embedded(tmp_path, processor, actors.JobSettings(busy_delay_s=0.02))
    try:
        for _ in range(6):
            actor.send("m")
            actor.send("n")
        wait_until(
            lambda: processor.attempts.get("m") == 6 and processor.attempts.get("n") == 6,
            "twelve passes",
        )
    finally:
        worker.stop()
        broker.close()
    assert processor.overlaps == set()
    assert len(processor.threads) >= 2  # the passes did run on several threads


def test_a_pass_longer_than_its_leases_keeps_its_lock_and_its_job_slot(tmp_path: Path) -> None:
    """The lock and the CRM job slot live 0.3 s unless renewed; a pass takes 1.5 s. With one
    slot for the CRM identity, the other mailbox's job must wait for the whole pass."""
    processor = processors.LocalRecordingProcessor(["m", "n"], sleep=1.5)
    settings = actors.JobSettings(lock_ttl_s=0.3, busy_delay_s=0.05)
    limiter = LocalLimiter(ServiceLimits(crm_concurrent_jobs=1))
    broker, actor, worker = _embedded(tmp_path, processor, settings, limiter)
    try:
        actor.send("m")
        actor.send("m")
        actor.send("n")
        wait_until(
            lambda: processor.attempts.get("m") == 2 and processor.attempts.get("n") == 1,
            "three passes",
        )
    finally:
        worker.stop()
        broker.close()
    assert processor.max_running == 1
    assert processor.overlaps == set()
