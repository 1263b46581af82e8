"""A server error on one request of a sync step is a problem of that step, not "the CRM is
offline" (issue 18 item 8): the cycle's other steps still reach the CRM, and queued work is
sent in the same cycle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.domain.model import TrackState
from core.domain.problems import Problem
from crmserver import RunningServer
from tests.fakes.fault_proxy import Fault, Phase, Strike, running_fault_proxy
from tests.plugins.mailservers import DovecotServer, SmtpServer
from tests.sync.env import ME, Env, mime
from tests.sync.test_cycle import JANE, row_of


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    yield Env(fresh_crm, dovecot, smtp_server, tmp_path)


def test_a_server_error_in_one_step_leaves_the_crm_online(env: Env) -> None:
    env.set_incoming_filter(2)  # mail from contacts is tracked automatically
    with running_fault_proxy(env.crm.url) as proxy:
        ws, user = env.workspace("errors", crm_url=proxy.url)
        assert ws.sync_cycle().ok  # the user's options are read and kept
        mid, raw = mime(JANE, ME, "Arrives while the CRM has a bad moment")
        env.dovecot.deliver(user, raw)
        proxy.script = [Strike(Fault.E500, Phase.BEFORE)]  # the settings step's first request
        report = ws.sync_cycle()
        assert report.online and not report.ok
        assert [p.problem for p in report.errors] == [Problem.CRM_FAILED], report.errors
        # The steps after it still ran against the CRM: the new mail is tracked.
        assert row_of(ws, mid).track_state is TrackState.TRACKED
        assert len(env.emails(mid)) == 1
        assert ws.sync_cycle().ok
        ws.close()
