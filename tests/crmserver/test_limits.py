"""The emulator's service protection limits (``crmserver/limits.py``) over real HTTP: the
sliding window, the concurrent and execution-time limits, Retry-After, Dataverse's error codes,
per-user counting, and the paths left alone. The middleware reads a clock the test moves, and
a test-only middleware inside it stands for slow requests (it holds a request, or moves the
clock by the request's "cost"), so every figure is exact."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from core.domain import demo_data
from crmserver import RunningServer, Settings, run_in_thread
from crmserver.limits import (
    BREACHES,
    CONCURRENT,
    EXECUTION,
    REQUESTS,
    Limits,
    LimitsError,
    ProtectionStats,
    ServiceProtection,
    caller_key,
    parse_limits,
)
from tests.crmserver.helpers import ME, PRIYA, client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.holding = threading.Event()  # set: held requests may go on

    def __call__(self) -> float:
        return self.now


class SlowRequests:
    """Test-only middleware inside the limits: ``X-Test-Cost: 3`` makes a request take three
    seconds on the clock; ``X-Test-Hold: 1`` keeps it running until ``clock.holding`` is set."""

    def __init__(self, app: ASGIApp, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", ()))
        if b"x-test-cost" in headers:
            self.clock.now += float(headers[b"x-test-cost"])
        if b"x-test-hold" in headers:
            while not self.clock.holding.is_set():
                await asyncio.sleep(0.01)
        await self.app(scope, receive, send)


def _server(tmp_path: Path, limits: Limits, clock: Clock, stats: ProtectionStats) -> RunningServer:
    return run_in_thread(
        Settings(db_path=tmp_path / "org.db", seed="demo"),
        middleware=[
            Middleware(ServiceProtection, limits=limits, stats=stats, clock=clock),
            Middleware(SlowRequests, clock=clock),
        ],
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stats() -> ProtectionStats:
    return ProtectionStats()


@pytest.fixture
def limited(tmp_path: Path, clock: Clock, stats: ProtectionStats) -> Iterator[RunningServer]:
    with _server(
        tmp_path, Limits(requests=3, window=10, execution=5, concurrent=2), clock, stats
    ) as s:
        yield s


ME_KEY = caller_key("Basic " + base64.b64encode(f"{ME}:x".encode()).decode())


def _error(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 429, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return dict(r.json()["error"])


def test_requests_over_a_sliding_window(
    limited: RunningServer, clock: Clock, stats: ProtectionStats
) -> None:
    with client(limited) as c:
        for at in (1000.0, 1004.0, 1008.0):
            clock.now = at
            assert c.get("WhoAmI").status_code == 200
        clock.now = 1009.0
        r = c.get("WhoAmI")
        assert _error(r) == {
            "code": "0x80072322",
            "message": "Number of requests exceeded the limit of 3 over time window of 10 seconds.",
        }
        assert r.headers["Retry-After"] == "1"  # the request of 1000 leaves the window at 1010
        clock.now = 1010.0
        assert c.get("WhoAmI").status_code == 200  # slid: 1004, 1008, 1010 in the window
        clock.now = 1010.5
        r = c.get("WhoAmI")
        assert _error(r)["code"] == "0x80072322"
        assert r.headers["Retry-After"] == "4"  # 1004 + 10 - 1010.5 = 3.5, rounded up
    counts = stats.user(ME_KEY)
    assert (counts.admitted, counts.throttled, counts.violations) == (4, 2, 0)
    assert counts.throttled_at == (1009.0, 1010.5)


def test_a_request_inside_retry_after_is_a_violation(
    limited: RunningServer, clock: Clock, stats: ProtectionStats
) -> None:
    with client(limited) as c:
        for _ in range(3):
            assert c.get("WhoAmI").status_code == 200
        clock.now += 1
        assert c.get("WhoAmI").headers["Retry-After"] == "9"
        clock.now += 8.5
        early = c.get("WhoAmI")  # the window would admit it now, but Retry-After has not passed
        assert _error(early)["code"] == "0x80072322" and early.headers["Retry-After"] == "1"
        assert stats.violations == 1 and stats.throttled == 2
        clock.now += 0.5
        assert c.get("WhoAmI").status_code == 200
    assert stats.violations == 1 and stats.user(ME_KEY).violations == 1


def test_concurrent_requests(limited: RunningServer, clock: Clock, stats: ProtectionStats) -> None:
    answers: list[int] = []

    def held() -> None:
        with client(limited) as c:
            answers.append(c.get("WhoAmI", headers={"X-Test-Hold": "1"}).status_code)

    threads = [threading.Thread(target=held) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = 200
    while stats.admitted < 2 and deadline:
        threading.Event().wait(0.02)
        deadline -= 1
    try:
        with client(limited) as c:
            r = c.get("WhoAmI")
            assert _error(r) == {
                "code": "0x80072326",
                "message": "Number of concurrent requests exceeded the limit of 2.",
            }
            assert r.headers["Retry-After"] == "1"
    finally:
        clock.holding.set()
        for t in threads:
            t.join(10)
    assert answers == [200, 200]
    clock.now += 1
    with client(limited) as c:
        assert c.get("WhoAmI").status_code == 200  # the slots are free again


def test_combined_execution_time(limited: RunningServer, clock: Clock) -> None:
    with client(limited) as c:
        assert c.get("WhoAmI", headers={"X-Test-Cost": "3"}).status_code == 200  # ends 1003
        assert c.get("WhoAmI", headers={"X-Test-Cost": "3"}).status_code == 200  # ends 1006
        r = c.get("WhoAmI")
        assert _error(r) == {
            "code": "0x80072321",
            "message": "Combined execution time of incoming requests exceeded limit of 5,000 "
            "milliseconds over time window of 10 seconds. Decrease number of concurrent "
            "requests or reduce the duration of requests and try again later.",
        }
        # 6 s ran; below 5 s once the first 3 s (ended at 1003) leave the window at 1013.
        assert r.headers["Retry-After"] == "7"
        clock.now = 1013.0
        assert c.get("WhoAmI").status_code == 200


def test_each_user_has_own_limits(
    limited: RunningServer, clock: Clock, stats: ProtectionStats
) -> None:
    shouting = ME.upper()  # the user name is case-insensitive: the same caller
    with (
        client(limited) as me,
        client(limited, shouting) as me_again,
        client(limited, PRIYA) as priya,
    ):
        assert me.get("WhoAmI").status_code == 200
        assert me_again.get("WhoAmI").status_code == 200
        assert me.get("WhoAmI").status_code == 200
        assert me_again.get("WhoAmI").status_code == 429
        for _ in range(3):
            assert priya.get("WhoAmI").status_code == 200
    assert stats.user(ME_KEY).admitted == 3 and stats.user(ME_KEY).throttled == 1
    assert stats.violations == 0


def test_pages_and_sign_in_are_not_limited(limited: RunningServer, stats: ProtectionStats) -> None:
    with client(limited) as c:
        for _ in range(3):
            assert c.get("WhoAmI").status_code == 200
        assert c.get("WhoAmI").status_code == 429
    auth = (ME, demo_data.DEMO_PASSWORD)
    with httpx.Client(base_url=limited.url, auth=auth, timeout=30) as raw:
        for _ in range(5):
            assert raw.get("/").status_code == 200
            token = raw.post("/oauth2/v2.0/token", data={"grant_type": "nonsense"})
            assert token.status_code != 429
    assert stats.user(ME_KEY).throttled == 1


def test_defaults_are_dataverse_s() -> None:
    assert Limits() == Limits(requests=6000, window=300, execution=1200, concurrent=52)


def test_error_codes_are_dataverse_s() -> None:
    assert (REQUESTS.error_code, REQUESTS.hex_code) == (-2147015902, "0x80072322")
    assert (EXECUTION.error_code, EXECUTION.hex_code) == (-2147015903, "0x80072321")
    assert (CONCURRENT.error_code, CONCURRENT.hex_code) == (-2147015898, "0x80072326")
    assert set(BREACHES) == {"0x80072322", "0x80072321", "0x80072326"}


def _jwt(claims: dict[str, str]) -> str:
    def part(data: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_whom_a_request_counts_against() -> None:
    basic = "Basic " + base64.b64encode(b"Alex.Morgan@Contoso.example:pw").decode()
    assert caller_key(basic) == "user:alex.morgan@contoso.example"
    assert caller_key(f"Bearer {_jwt({'oid': 'ABC', 'sub': 'x'})}") == "oid:abc"
    assert caller_key(f"Bearer {_jwt({'sub': 'someone'})}") == "sub:someone"
    opaque = caller_key("Bearer not-a-jwt-secret")
    assert opaque.startswith("token:") and "secret" not in opaque
    assert opaque == caller_key("Bearer not-a-jwt-secret") != caller_key("Bearer other")
    assert caller_key(None) == "anonymous"


def test_parse_limits() -> None:
    assert parse_limits("requests=20,window=1") == Limits(requests=20, window=1.0)
    assert parse_limits(" concurrent = 4 , execution=0.5 ") == Limits(concurrent=4, execution=0.5)
    for text, name in (
        ("requests=many", "requests"),
        ("requests=1.5", "requests"),
        ("speed=3", "speed"),
        ("window", "window"),
        ("window=0", "window"),
        ("requests=-1", "requests"),
        ("window=1,window=2", "window"),
        ("", "limits"),
        ("execution=inf", "execution"),
    ):
        with pytest.raises(LimitsError) as info:
            parse_limits(text)
        assert info.value.name == name, text
        assert info.value.reason
