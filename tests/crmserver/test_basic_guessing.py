"""Password guessing over HTTP Basic on the Web API: it goes through the sign-in throttle
(per account and per client address, shared with the token endpoint), locked guesses never
reach scrypt, and scrypt runs off the event loop so guessers do not stall other users."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import crmserver.auth
from core.domain import demo_data
from crmserver import RunningServer, Settings, TlsFiles, run_in_thread
from tests.plugins.crm import crm_ssl_context

from .helpers import ME, PRIYA, TOMAS, assert_odata_error, client

LOCKOUT = 1.0


def _server(tmp_path: Path, tls: TlsFiles, **limits: Any) -> RunningServer:
    settings = Settings(db_path=tmp_path / "org.db", seed="demo", **limits)
    return run_in_thread(settings, tls=tls)


@pytest.fixture
def strict(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    """Three failures lock an account, ten an address, for a second."""
    limits = {
        "signin_failure_limit": 3,
        "signin_address_failure_limit": 10,
        "signin_lockout_seconds": LOCKOUT,
    }
    with _server(tmp_path, crm_tls, **limits) as server:
        yield server


@pytest.fixture
def lenient(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    """No lockout in reach, so every guess runs scrypt."""
    limits = {"signin_failure_limit": 100_000, "signin_address_failure_limit": 100_000}
    with _server(tmp_path, crm_tls, **limits) as server:
        yield server


def who_am_i(server: RunningServer, email: str, password: str) -> httpx.Response:
    with client(server, email) as c:
        c.auth = httpx.BasicAuth(email, password)
        return c.get("WhoAmI")


def password_grant(server: RunningServer, email: str, password: str) -> httpx.Response:
    form = {
        "grant_type": "password",
        "client_id": "51f81489-12ee-4a9e-aaae-a2591f45987d",
        "username": email,
        "password": password,
        "scope": server.url + "/.default",
    }
    with httpx.Client(verify=crm_ssl_context(server), timeout=30) as c:
        return c.post(server.url + "/oauth2/v2.0/token", data=form)


def assert_locked(r: httpx.Response) -> None:
    err = assert_odata_error(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
    assert "Try again" in err["message"]


def test_basic_failures_lock_the_account_until_the_window_passes(strict: RunningServer) -> None:
    for _ in range(3):
        assert_odata_error(who_am_i(strict, TOMAS, "wrong"), 401)
    # even the right password waits out the lockout, so a guess cannot be confirmed
    assert_locked(who_am_i(strict, TOMAS, demo_data.DEMO_PASSWORD))
    assert_locked(who_am_i(strict, TOMAS.upper(), "wrong"))
    # the same throttle as the token endpoint: Basic failures lock the password grant too
    token = password_grant(strict, TOMAS, demo_data.DEMO_PASSWORD)
    assert token.status_code == 429 and token.headers["Retry-After"]
    # other accounts from this address are still served
    assert who_am_i(strict, PRIYA, demo_data.DEMO_PASSWORD).status_code == 200
    time.sleep(LOCKOUT + 0.3)
    assert who_am_i(strict, TOMAS, demo_data.DEMO_PASSWORD).status_code == 200
    # a success forgives the account's earlier failures
    assert_odata_error(who_am_i(strict, TOMAS, "wrong"), 401)
    assert who_am_i(strict, TOMAS, demo_data.DEMO_PASSWORD).status_code == 200


def test_basic_failures_lock_the_client_address(strict: RunningServer) -> None:
    for n in range(10):
        assert_odata_error(who_am_i(strict, f"nobody{n}@example.com", "guess"), 401)
    assert_locked(who_am_i(strict, ME, demo_data.DEMO_PASSWORD))
    time.sleep(LOCKOUT + 0.3)
    assert who_am_i(strict, ME, demo_data.DEMO_PASSWORD).status_code == 200


def test_locked_guesses_are_refused_before_scrypt(
    strict: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[int] = []
    real = crmserver.auth.verify_password

    def counting(password: str, stored: str) -> bool:
        checks.append(1)
        return real(password, stored)

    monkeypatch.setattr(crmserver.auth, "verify_password", counting)
    for _ in range(3):
        assert_odata_error(who_am_i(strict, TOMAS, "wrong"), 401)
    assert len(checks) == 3
    for n in range(5):
        assert_locked(who_am_i(strict, TOMAS, f"guess-{n}"))
    assert len(checks) == 3


def test_guessing_threads_do_not_stall_other_users(lenient: RunningServer) -> None:
    """Eight threads guess (every guess runs scrypt); meanwhile another user's requests keep
    completing: at least as many as all the guesses answered in the same time. When scrypt
    ran on the event loop every request queued behind the pending guesses, so the user got
    about one request through per round of eight guesses."""
    stop = threading.Event()
    guesses: list[int] = []

    def guess(n: int) -> None:
        with client(lenient, TOMAS) as c:
            c.auth = httpx.BasicAuth(TOMAS, f"guess-{n}")
            while not stop.is_set():
                assert c.get("WhoAmI").status_code == 401
                guesses.append(1)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(8)]
    served = 0
    with client(lenient, PRIYA) as c:
        assert c.get("WhoAmI").status_code == 200  # remembered: later checks skip scrypt
        for t in threads:
            t.start()
        try:
            while len(guesses) < 40:
                assert c.get("WhoAmI").status_code == 200
                served += 1
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert served >= 40, (served, len(guesses))
