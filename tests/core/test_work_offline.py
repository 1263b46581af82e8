"""``Workspace.set_work_offline`` says what it did: the new connection state, the queued
operations due at once when going back online, and what their replay changed — against the
CRM emulator on loopback (and against a CRM that does not answer)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.crm_settings import IncomingFilter
from core.mail.maildir import MaildirBackend
from core.workspace.connection import ConnectionSwitch
from core.workspace.facade import Workspace
from crmserver import RunningServer
from tests.sync.env import ME


def unused_url() -> str:
    """A loopback URL where nothing listens (the CRM is away)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/data/v9.2/"


def workspace(tmp_path: Path, crm_url: str) -> Workspace:
    crm = CrmClient(crm_url, BasicAuth(ME.email, demo_data.DEMO_PASSWORD), timeout=5, get_retries=0)
    return Workspace(
        store_path=tmp_path / "store.sqlite",
        open_mailbox=lambda: MaildirBackend(tmp_path / "mail"),
        crm=crm,
        owner=ME,
    )


@pytest.fixture
def ws(tmp_path: Path, fresh_crm: RunningServer) -> Iterator[Workspace]:
    w = workspace(tmp_path, fresh_crm.url)
    yield w
    w.close()


def queue_an_option_offline(w: Workspace) -> None:
    w.save_user_options(replace(w.user_options(), incoming_filter=IncomingFilter.NONE))
    assert [q.kind for q in w.queue()] == ["update_user_settings"]


def test_going_offline_says_offline(ws: Workspace) -> None:
    switched = ws.set_work_offline(True)
    assert switched == ConnectionSwitch(work_offline=True, online=False, due=0)
    assert not switched.replayed.queue and switched.replayed.errors == ()
    assert ws.work_offline and not ws.online


def test_going_online_counts_what_is_due_and_replays_it(ws: Workspace) -> None:
    ws.set_work_offline(True)
    queue_an_option_offline(ws)
    switched = ws.set_work_offline(False)
    assert (switched.work_offline, switched.online, switched.due) == (False, True, 1)
    assert switched.replayed.queue and switched.replayed.errors == ()
    assert ws.queue() == []  # the replay ran


def test_going_online_while_the_crm_is_away_stays_offline(tmp_path: Path) -> None:
    w = workspace(tmp_path, unused_url())
    try:
        w.set_work_offline(True)
        queue_an_option_offline(w)
        switched = w.set_work_offline(False)
        assert (switched.work_offline, switched.online, switched.due) == (False, False, 1)
        assert [q.kind for q in w.queue()] == ["update_user_settings"]  # still waiting
    finally:
        w.close()
