"""A sync cycle has a deadline (issue 18, item 10): when it passes, the cycle stops at its next
check — the outbox replay included, through the cycle's cancel event — and says so as a
problem (not ok, not "cancelled"); ``trackbox sync --once`` against a CRM that trickles its
answers ends with a failure exit code instead of hanging."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.crm import BasicAuth, CrmClient
from core.crm.deadline import DeadlineTransport
from core.domain import demo_data
from core.domain.model import Address
from core.domain.problems import Problem
from core.outbox.queue import ReplayResult
from core.sync.cycle import DEFAULT_CYCLE_DEADLINE, SyncCycle
from crmserver import RunningServer
from tests.crm_client.test_deadline import TricklingServer
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer
from tests.sync.env import ME, Env, mime

ROOT = Path(__file__).resolve().parents[2]
JANE = Address("jane.doe@fabrikam.example", "Jane Doe")
#: A generous hang-guard, not a speed requirement.
HANG_GUARD = 60.0


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    yield Env(fresh_crm, dovecot, smtp_server, tmp_path)


def test_a_step_that_never_ends_is_stopped_by_the_cycle_deadline(env: Env) -> None:
    ws, _ = env.workspace("stuck")
    cancel = threading.Event()
    cycle = SyncCycle(ws.cycle_services(), cancel=cancel, deadline=1)
    blocked: list[bool] = []

    def stuck() -> None:  # a step that only a cancel ends (as the replay's waits do)
        blocked.append(cycle.cancel.wait(HANG_GUARD))

    cycle.address_books = stuck  # type: ignore[method-assign]
    report = cycle.run()
    assert blocked == [True]
    assert not report.ok and not report.cancelled and report.online
    assert "headers" not in report.counts  # the mail step never started
    [problem] = report.errors
    assert problem.problem is Problem.SYNC_TIMED_OUT
    assert str(problem).startswith("the sync did not finish within 1 s")
    assert "address books" in problem.detail
    assert cancel.is_set()  # the cycle's own event: every step's check sees it
    ws.close()


def test_the_replay_stops_when_the_cycle_deadline_passes(env: Env) -> None:
    """The real outbox replay gets the cycle's cancel event and stops on it: the operation
    stays queued for the next cycle."""
    ws, user = env.workspace("replay")
    assert ws.sync_cycle().ok
    mid, raw = mime(JANE, ME, "Queued, then out of time")
    env.dovecot.deliver(user, raw)
    ws.sync_mail()
    real = ws.crm  # queued while the CRM is away (nothing listens on port 9)
    ws.crm = CrmClient("http://127.0.0.1:9", BasicAuth(ME.email, "x"), timeout=2, get_retries=0)
    assert ws.track([ws.store().messages_by_message_id(mid)[0].id]).errors == ()
    assert [q.kind for q in ws.queue()] == ["promote"]
    ws.crm = real

    services = ws.cycle_services()
    replayed: list[ReplayResult] = []

    def replay_late(cancel: threading.Event) -> ReplayResult:
        assert cancel.wait(HANG_GUARD)  # the deadline passes before the replay starts
        replayed.append(services.replay_now(cancel))
        return replayed[-1]

    late = dataclasses.replace(services, replay_now=replay_late)
    report = SyncCycle(late, deadline=2).run()
    assert [r.stopped for r in replayed] == ["cancelled"] and not replayed[0].done
    assert not report.ok and not report.cancelled
    assert any("did not finish within 2 s" in str(p) for p in report.errors)
    assert [q.kind for q in ws.queue()] == ["promote"] and env.emails(mid) == []
    ws.close()


def test_the_default_cycle_deadline_is_ten_minutes() -> None:
    assert DEFAULT_CYCLE_DEADLINE == 600.0


def test_the_crm_client_sends_through_the_deadline_transport() -> None:
    """``CrmClient`` sends through ``DeadlineTransport`` by default (reads httpx's private
    ``_transport``: the CLI test below relies on it)."""
    with CrmClient("https://crm.invalid", BasicAuth("a", "b")) as client:
        assert isinstance(getattr(client._http, "_transport", None), DeadlineTransport)


#: Runs ``trackbox`` with short deadlines (2 s per request, 60 s per cycle).
BOOT = (
    "import sys; import core.crm.deadline as d; d.DEFAULT_REQUEST_DEADLINE = 2.0; "
    "import core.sync.cycle as c; c.DEFAULT_CYCLE_DEADLINE = 60.0; "
    "from desktop.launcher import main; sys.exit(main(sys.argv[1:]))"
)


def _trackbox(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TRACKBOX_HOME": str(home),
        "TRACKBOX_CRM_PASSWORD": demo_data.DEMO_PASSWORD,
        "TRACKBOX_MAIL_PASSWORD": PASSWORD,
    }
    return subprocess.run(
        [sys.executable, "-c", BOOT, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,  # hang-guard: a sync that hangs fails here
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("mode", ["headers", "body", "silent"])
def test_sync_once_against_a_trickling_crm_fails_instead_of_hanging(
    dovecot: DovecotServer, tmp_path: Path, mode: str
) -> None:
    crm = TricklingServer(mode)
    try:
        home = tmp_path / "home"
        user = dovecot.new_user("trickle")
        added = _trackbox(
            home, "account", "add", "--mail-url", dovecot.url("imap+insecure"),
            "--mail-user", user, "--crm-url", crm.url, "--crm-user", ME.email,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        started = time.monotonic()
        synced = _trackbox(home, "sync", "--once", "--json")
        assert time.monotonic() - started < 150
    finally:
        crm.close()
    assert synced.returncode == 3, synced.stderr  # OFFLINE: the CRM did not answer in time
    report = json.loads(synced.stdout)
    assert report["ok"] is False and report["online"] is False and report["mail_online"]
    assert "Traceback" not in synced.stderr
