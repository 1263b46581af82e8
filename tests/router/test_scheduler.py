"""The scheduler's plan: one job per due mailbox at its interval, none for a mailbox whose
previous job is still pending, nothing at all unless it leads; the schedule lives in the
shared state, so another scheduler carries it on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from router.locks import LocalLocks
from router.scheduler import LeaderElection, Scheduler
from router.state import SqliteState
from tests.router.processors import mailbox


class Enqueued:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self._n = 0

    def plan(self, mailbox_id: str) -> tuple[str, Callable[[], Any]]:
        self._n += 1
        message_id = f"msg-{self._n}"
        return message_id, lambda: self.sent.append((mailbox_id, message_id))


def _scheduler(state: SqliteState, locks: LocalLocks, queue: Enqueued, **kw: Any) -> Scheduler:
    return Scheduler(
        list_mailboxes=lambda: [mailbox("a"), mailbox("b")],
        plan=queue.plan,
        state=state,
        election=LeaderElection(locks, ttl_s=60),
        **kw,
    )


def test_due_mailboxes_are_enqueued_once_until_their_job_is_done(tmp_path: Path) -> None:
    state, queue = SqliteState(tmp_path / "s.sqlite3"), Enqueued()
    scheduler = _scheduler(state, LocalLocks(), queue, interval_s=3600)
    assert scheduler.tick() == 2
    assert [m for m, _ in queue.sent] == ["a", "b"]
    assert scheduler.tick() == 0  # not due for an hour
    for box in ("a", "b"):  # due again, but the jobs are still pending
        state.set_next_run(box, datetime.now(UTC) - timedelta(seconds=1))
    assert scheduler.tick() == 0
    assert state.clear_pending("a", "msg-1")  # a's job recorded its run
    assert not state.clear_pending("b", "msg-1")  # only its own job clears b's marker
    assert scheduler.tick() == 1 and queue.sent[-1][0] == "a"
    next_a = state.next_run("a")
    assert next_a is not None and next_a > datetime.now(UTC) + timedelta(minutes=59)
    assert state.is_pending("b") and state.is_pending("a")


def test_each_mailbox_gets_its_own_interval_and_force_ignores_the_schedule(
    tmp_path: Path,
) -> None:
    state, queue = SqliteState(tmp_path / "s.sqlite3"), Enqueued()
    intervals = {"a": 60.0, "b": 7200.0}
    scheduler = _scheduler(
        state, LocalLocks(), queue, interval_for=lambda box: intervals[box.mailbox_id]
    )
    scheduler.tick()
    now = datetime.now(UTC)
    a, b = state.next_run("a"), state.next_run("b")
    assert a is not None and b is not None
    assert now < a <= now + timedelta(seconds=60) and b > now + timedelta(seconds=7000)
    state.forget_pending()  # a new embedded process: the old in-memory jobs are gone
    assert scheduler.tick() == 0
    assert scheduler.tick(force=True) == 2


def test_a_scheduler_that_does_not_lead_enqueues_nothing_and_a_successor_keeps_the_plan(
    tmp_path: Path,
) -> None:
    state, locks = SqliteState(tmp_path / "s.sqlite3"), LocalLocks()
    first_q, second_q = Enqueued(), Enqueued()
    first = _scheduler(state, locks, first_q, interval_s=3600)
    second = _scheduler(state, locks, second_q, interval_s=3600)
    assert first.tick() == 2
    assert second.tick() == 0 and second_q.sent == []
    first.election.resign()  # the leader stops
    state.forget_pending()
    assert second.tick() == 0  # leads now, and knows from the shared state nothing is due
    assert state.meta("leader") == second.election.identity
