"""The interval scheduler: on demand, interval, shorter waits while offline, stop."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from core.sync.report import SyncReport
from core.sync.scheduler import SyncScheduler


def report(online: bool) -> SyncReport:
    now = datetime.now(UTC)
    return SyncReport(ok=online, online=online, started=now, finished=now)


def test_runs_at_start_on_demand_and_never_twice_at_once() -> None:
    running = threading.Lock()
    overlaps = []

    def run() -> SyncReport:
        if not running.acquire(blocking=False):
            overlaps.append(1)
            return report(True)
        try:
            return report(True)
        finally:
            running.release()

    scheduler = SyncScheduler(run, interval_s=3600)
    scheduler.start()
    assert scheduler.wait_for_cycles(1, timeout=30)
    for n in range(2, 6):
        scheduler.trigger()
        assert scheduler.wait_for_cycles(n, timeout=30)
    scheduler.stop()
    assert overlaps == []
    assert scheduler.next_wait() == 3600


def test_offline_retries_sooner_than_the_interval() -> None:
    states = iter([False, True])
    scheduler = SyncScheduler(lambda: report(next(states, True)), interval_s=900, retry_s=0.01)
    scheduler.start()
    # The offline first cycle schedules the next one after retry_s, without a trigger.
    assert scheduler.wait_for_cycles(2, timeout=30)
    scheduler.stop()
    assert scheduler.last is not None and scheduler.last.online
    assert scheduler.next_wait() == 900


def test_a_failing_cycle_does_not_end_the_scheduler() -> None:
    calls = []

    def run() -> SyncReport:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return report(True)

    scheduler = SyncScheduler(run, interval_s=3600)
    scheduler.start()
    assert scheduler.wait_for_cycles(1, timeout=30)
    scheduler.trigger()
    assert scheduler.wait_for_cycles(2, timeout=30)
    scheduler.stop()
