"""``trackbox-router run --once`` (embedded) with the router's real mailbox processing wired
in by default (``router.context.load_context`` + ``router.processing``): new mail on a
server-side user's mailbox is tracked in the CRM (the emulator over HTTPS, Dovecot), the run
is recorded where the config's state directory says, and a repeated run duplicates nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmserver import RunningServer
from router.cli import main
from router.state import MailboxStatus, SqliteState
from tests.plugins.mailservers import DovecotServer, SmtpServer

from .processing_env import SAM, RouterEnv, mime


@pytest.fixture
def env(
    fresh_crm_https: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[RouterEnv]:
    e = RouterEnv(fresh_crm_https, dovecot, smtp_server, tmp_path)
    e.register_service()
    e.mailbox_for(SAM.email)
    yield e


def _run_once(config: Path) -> None:
    # Other seeded server-side mailboxes may have no mail server configured here: they fail
    # and give up (exit 1) without touching this test's mailbox.
    main(["run", "--once", "--config", str(config), "--workers", "2", "--min-backoff", "0.05"])


def test_run_once_tracks_new_mail_with_the_real_processing(env: RouterEnv) -> None:
    env.context()  # writes the config file
    config = env.tmp / "router.toml"
    box = env.mailbox_id(SAM.email)
    env.deliver(SAM.email, mime("old@fabrikam.example", SAM.email, "Before the router")[1])
    _run_once(config)  # the baseline: mail already there is not tracked
    env.set_filter(SAM.email, 0)  # all incoming e-mail
    mid, raw = mime("stranger@nowhere.example", SAM.email, "Asked through the router")
    env.deliver(SAM.email, raw)
    state = SqliteState(env.tmp / "state" / "router-state.sqlite3")

    def row() -> MailboxStatus:
        return next(r for r in state.snapshot() if r.mailbox_id == box)

    _run_once(config)
    assert row().last_counts.startswith("promoted 1")
    assert row().address == SAM.email and row().last_error == "" and not row().pending
    _run_once(config)  # nothing new: nothing duplicated
    assert row().last_counts.startswith("promoted 0")
    assert len(env.emails(mid)) == 1
