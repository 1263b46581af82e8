"""The distributed mode on a real Redis, with router processes started as an admin starts
them: the per-mailbox lock across worker processes, redelivery after a worker is killed
mid-job, leader election between two schedulers, ``status``, and scale-out by adding a worker
process (counted as passes running at once, never as time)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis

from router import actors
from router.broker import NAMESPACE, BrokerSettings, make_broker
from router.cli import main
from router.state import RedisState
from tests.plugins.redis import RedisServer, start_redis, stop_redis
from tests.router.conftest import PROCESSOR, RouterProcesses, wait_until

HEARTBEATS = f"{NAMESPACE}:__heartbeats__"


@pytest.fixture
def redis_db(fresh_redis: RedisServer) -> Iterator[Any]:
    client = fresh_redis.client()
    yield client
    client.close()


@pytest.fixture
def sender(fresh_redis: RedisServer) -> Iterator[dramatiq.Actor[Any, Any]]:
    """The actor on the shared Redis, to enqueue jobs from the test as the scheduler does."""
    broker = make_broker(BrokerSettings(fresh_redis.url))
    yield actors.declare(broker)
    broker.close()


def _worker(
    procs: RouterProcesses, server: RedisServer, config: Any, *extra: str, threads: int = 2
) -> Any:
    args = ["worker", "--broker", server.url, "--config", str(config), "--processor", PROCESSOR]
    return procs.start(*args, "--workers", str(threads), *extra)


def _live_workers(client: Any) -> int:
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000
    return int(client.zcount(HEARTBEATS, now_ms - 1500, "+inf"))


def test_two_worker_processes_never_process_one_mailbox_at_once(
    router_procs: RouterProcesses, fresh_redis: RedisServer, redis_db: Any, sender: Any
) -> None:
    config = router_procs.config(redis=fresh_redis.url, mailboxes=["m"], sleep=0.3)
    for _ in range(2):
        _worker(router_procs, fresh_redis, config, "--busy-delay", "0.1")
    wait_until(lambda: _live_workers(redis_db) == 2, "two worker processes", timeout=60)
    for _ in range(8):
        sender.send("m")
    wait_until(lambda: int(redis_db.get("t:attempts:m") or 0) == 8, "eight passes", timeout=120)
    assert redis_db.smembers("t:overlaps") == set()
    # Without the lock the four threads of the two processes overlap here (checked by
    # disabling it); which process wins each job is up to them.
    assert int(redis_db.get("t:max_running")) == 1


def test_a_job_of_a_killed_worker_is_delivered_again_and_its_effect_recorded_once(
    router_procs: RouterProcesses, fresh_redis: RedisServer, redis_db: Any, sender: Any
) -> None:
    config = router_procs.config(redis=fresh_redis.url, mailboxes=["m"], first_sleep=600)
    fast = ["--heartbeat-timeout", "2", "--lock-ttl", "2", "--busy-delay", "0.5"]
    doomed = _worker(router_procs, fresh_redis, config, *fast)
    wait_until(lambda: _live_workers(redis_db) == 1, "the first worker", timeout=60)
    sender.send("m")
    # The pass has written its effect and sleeps: the message is taken, not acknowledged.
    wait_until(lambda: redis_db.llen("t:started") == 1, "the first pass", timeout=60)
    router_procs.kill(doomed, signal.SIGKILL)
    redis_db.delete("t:active:m", "t:running")  # the dead pass is over (it could not say so)
    _worker(router_procs, fresh_redis, config, *fast)

    state = RedisState(redis_db)
    wait_until(lambda: any(s.last_finished for s in state.snapshot()), "the redelivered pass", 120)
    assert int(redis_db.get("t:attempts:m")) == 2  # delivered again after the kill
    assert redis_db.hlen("t:effects") == 1  # the effect once
    assert redis_db.smembers("t:overlaps") == set()
    [row] = state.snapshot()
    assert row.last_counts == "promoted 0, queued 0, cases 0, sent 1"  # the retry found it done
    pids = [entry.split(b":")[1] for entry in redis_db.lrange("t:started", 0, -1)]
    assert pids[0] == str(doomed.pid).encode() and pids[1] != pids[0]


def test_one_of_two_schedulers_enqueues_and_the_other_takes_over_when_it_is_killed(
    router_procs: RouterProcesses, fresh_redis: RedisServer, redis_db: Any
) -> None:
    config = router_procs.config(redis=fresh_redis.url, mailboxes=["a", "b", "c"])
    run = ["run", "--broker", fresh_redis.url, "--config", str(config), "--processor", PROCESSOR]
    sched = [*run, "--workers", "0", "--leader-ttl", "3", "--interval", "1", "--refresh", "0.5"]
    first = router_procs.start(*sched)
    second = router_procs.start(*sched)
    holder = "trackbox-router:lock:scheduler-leader"
    leader = wait_until(lambda: redis_db.get(holder), "a leader", timeout=60).decode()
    leader_proc, other = (first, second) if f":{first.pid}:" in leader else (second, first)
    assert f":{leader_proc.pid}:" in leader
    # Only the leader asks the CRM for the mailboxes and enqueues; nothing is consumed
    # (no workers), so each mailbox has one pending job and the queue holds three.
    wait_until(lambda: redis_db.llen(f"{NAMESPACE}:trackbox-router") == 3, "three jobs", 60)
    listed_before = int(redis_db.get("t:listed"))
    assert redis_db.smembers("t:listers") == {str(leader_proc.pid).encode()}
    assert redis_db.llen(f"{NAMESPACE}:trackbox-router") == 3  # due again, but still pending

    router_procs.kill(leader_proc, signal.SIGKILL)
    new_leader = wait_until(
        lambda: (v := redis_db.get(holder)) and v.decode() != leader and v.decode(),
        "the other scheduler to lead",
        timeout=60,
    )
    assert f":{other.pid}:" in new_leader
    wait_until(lambda: int(redis_db.get("t:listed")) > listed_before, "the new leader's plan", 60)
    assert redis_db.smembers("t:listers") == {str(p.pid).encode() for p in (first, second)}
    redis_db.delete(*(f"trackbox-router:pending:{m}" for m in "abc"))  # the jobs "ran"
    wait_until(lambda: redis_db.llen(f"{NAMESPACE}:trackbox-router") == 6, "its enqueues", 60)


def test_status_lists_mailboxes_runs_errors_queue_and_leader(
    router_procs: RouterProcesses,
    fresh_redis: RedisServer,
    redis_db: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = router_procs.config(redis=fresh_redis.url, mailboxes=["good", "bad"], fail={"bad": 99})
    args = ["--broker", fresh_redis.url, "--config", str(config), "--processor", PROCESSOR]
    proc = router_procs.start("run", *args, "--once", "--workers", "2", "--min-backoff", "0.05")
    assert proc.wait(timeout=120) == 1, router_procs.logs()  # "bad" gave up
    redis_db.rpush(f"{NAMESPACE}:trackbox-router", "x")  # a job waiting, as status shows it
    redis_db.hset(f"{NAMESPACE}:trackbox-router.msgs", "x", "{}")
    capsys.readouterr()
    assert main(["status", "--broker", fresh_redis.url]) == 0
    out = capsys.readouterr().out
    good = next(line for line in out.splitlines() if line.startswith("good "))
    assert "good@test.example" in good and "promoted 1, queued 0, cases 0, sent 1" in good
    bad = next(line for line in out.splitlines() if line.startswith("bad "))
    assert "GAVE UP: failed 6 times; last: RuntimeError: mail server refused bad" in bad
    assert "queue: 1 queued, 0 delayed, 0 in flight" in out
    assert "scheduler leader: -" in out  # the --once process resigned when it was done


def test_a_second_worker_process_runs_more_jobs_at_once(
    router_procs: RouterProcesses, fresh_redis: RedisServer, redis_db: Any, sender: Any
) -> None:
    mailboxes = [f"m{i}" for i in range(12)]
    config = router_procs.config(redis=fresh_redis.url, mailboxes=mailboxes, sleep=2)

    def batch(first: int) -> int:
        redis_db.delete("t:max_running")
        for mailbox in mailboxes[first : first + 6]:
            sender.send(mailbox)
        done = lambda: sum(int(redis_db.get(f"t:attempts:{m}") or 0) for m in mailboxes)  # noqa: E731
        wait_until(lambda: done() == first + 6, "the batch", timeout=120)
        return int(redis_db.get("t:max_running"))

    one = _worker(router_procs, fresh_redis, config, threads=2)
    wait_until(lambda: _live_workers(redis_db) == 1, "one worker process", timeout=60)
    alone = batch(0)
    assert alone <= 2  # one process of two threads
    _worker(router_procs, fresh_redis, config, threads=2)
    wait_until(lambda: _live_workers(redis_db) == 2, "two worker processes", timeout=60)
    together = batch(6)
    assert together > alone, f"one process ran {alone} at once, two ran {together}"
    assert one.poll() is None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test alone (it gets restarted)."""
    root = tmp_path / "redis"
    root.mkdir()
    server = start_redis(root)
    try:
        yield server
    finally:
        stop_redis(server)


def test_the_router_resumes_after_redis_restarts_empty(
    router_procs: RouterProcesses, own_redis: RedisServer
) -> None:
    config = router_procs.config(redis=own_redis.url, mailboxes=["a", "b", "c"], sleep=0.1)
    args = ["--broker", own_redis.url, "--config", str(config), "--processor", PROCESSOR]
    often = ["--interval", "1", "--refresh", "1", "--tick", "0.2", "--heartbeat-timeout", "2"]
    proc = router_procs.start("run", *args, "--workers", "2", *often)

    def all_ran() -> bool:
        try:
            client = own_redis.client()
            try:
                rows = RedisState(client).snapshot()
            finally:
                client.close()
        except redis.ConnectionError:
            return False
        return len(rows) == 3 and all(row.last_finished for row in rows)

    wait_until(all_ran, "a pass over each mailbox", timeout=120)
    own_redis.restart()  # everything is gone: jobs, schedule, records
    assert not all_ran()
    wait_until(all_ran, "a pass over each mailbox after the restart", timeout=120)
    assert proc.poll() is None, router_procs.logs()
