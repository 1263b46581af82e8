"""The leases and limits behave the same in Redis and in process: a held lease refuses others,
only its token renews or releases it, an expired one is free again; the job slots and the
sliding windows admit up to their limit and say how long to wait."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from router.limits import LocalLimiter, RedisLimiter, ServiceLimits
from router.locks import LocalLocks, RedisLocks
from router.scheduler import LeaderElection
from tests.plugins.redis import RedisServer
from tests.router.conftest import wait_until


@pytest.fixture(params=["redis", "local"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def locks(kind: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    if kind == "local":
        yield LocalLocks()
        return
    server: RedisServer = request.getfixturevalue("fresh_redis")
    client = server.client()
    yield RedisLocks(client)
    client.close()


@pytest.fixture
def limiter(kind: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    limits = ServiceLimits(crm_concurrent_jobs=2, crm_requests=3, crm_window_s=1.0)
    if kind == "local":
        yield LocalLimiter(limits)
        return
    server: RedisServer = request.getfixturevalue("fresh_redis")
    client = server.client()
    yield RedisLimiter(client, limits)
    client.close()


def test_a_held_lease_refuses_others_and_only_its_token_frees_it(locks: Any) -> None:
    token = locks.acquire("mailbox:a", 30)
    assert token is not None
    assert locks.acquire("mailbox:a", 30) is None
    assert locks.acquire("mailbox:b", 30) is not None  # another mailbox is not blocked
    assert not locks.release("mailbox:a", "not-the-token")
    assert not locks.renew("mailbox:a", "not-the-token", 30)
    assert locks.holder("mailbox:a") == token
    assert locks.renew("mailbox:a", token, 30)
    assert locks.release("mailbox:a", token)
    assert locks.acquire("mailbox:a", 30) is not None


def test_an_expired_lease_is_free_and_its_old_holder_cannot_release_the_new_one(locks: Any) -> None:
    old = locks.acquire("mailbox:a", 0.2)
    new = wait_until(lambda: locks.acquire("mailbox:a", 30), "the lease to expire", timeout=10)
    assert new != old
    assert not locks.release("mailbox:a", old)
    assert locks.holder("mailbox:a") == new


def test_job_slots_admit_up_to_the_limit_and_expire_when_a_holder_dies(limiter: Any) -> None:
    first = limiter.acquire_slot("service", 30)
    second = limiter.acquire_slot("service", 0.3)  # a holder that will "die"
    assert first and second
    assert limiter.acquire_slot("service", 30) is None
    assert limiter.acquire_slot("another identity", 30) is not None
    limiter.release_slot("service", first)
    third = limiter.acquire_slot("service", 30)
    assert third is not None
    assert limiter.acquire_slot("service", 30) is None
    # The dead holder's lease runs out: its slot comes back without a release.
    wait_until(lambda: limiter.acquire_slot("service", 30), "the dead holder's slot", timeout=10)


def test_the_request_window_admits_its_limit_then_says_how_long_to_wait(limiter: Any) -> None:
    assert [limiter.crm_request("service") for _ in range(3)] == [0, 0, 0]
    wait = limiter.crm_request("service")
    assert 0 < wait <= 1.0
    assert limiter.crm_request("another identity") == 0
    wait_until(lambda: limiter.crm_request("service") == 0, "the window to slide", timeout=10)


def test_a_pause_after_a_429_is_seen_by_every_limiter_on_the_store(
    kind: str, limiter: Any, request: pytest.FixtureRequest
) -> None:
    assert limiter.paused_for("service") == 0
    limiter.pause("service", 30)
    limiter.pause("service", 1)  # a shorter wait never shortens a longer one
    other = limiter
    if kind == "redis":
        other = RedisLimiter(request.getfixturevalue("fresh_redis").client())
    assert 20 < other.paused_for("service") <= 30
    assert other.paused_for("another identity") == 0


def test_only_one_of_two_schedulers_leads_and_the_other_takes_over_after_the_ttl(
    locks: Any,
) -> None:
    first = LeaderElection(locks, ttl_s=0.6, identity="first")
    second = LeaderElection(locks, ttl_s=0.6, identity="second")
    assert first.is_leader()
    assert not second.is_leader()
    assert first.is_leader()  # renewing
    assert locks.holder("scheduler-leader") == "first"
    # The first one stops renewing (its process died): after the TTL the second leads.
    wait_until(second.is_leader, "the second scheduler to lead", timeout=10)
    assert locks.holder("scheduler-leader") == "second"
    assert not first.is_leader()
