"""``trackbox diagnose`` reports the CRM's last request to slow down: a sync against an
emulator under tight service protection limits finishes (every request waits out its
Retry-After), and the diagnosis then says when the CRM asked and how long it asked to wait."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.middleware import Middleware

from core.cli.context import OK
from core.domain import demo_data
from crmserver import Settings, run_in_thread
from crmserver.limits import Limits, ProtectionStats, ServiceProtection
from tests.signin.conftest import Cli, maildir


def test_diagnose_reports_the_last_throttling(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = ProtectionStats()
    limits = [Middleware(ServiceProtection, limits=Limits(requests=4, window=1), stats=stats)]
    settings = Settings(db_path=tmp_path / "crm.db", seed="demo")
    monkeypatch.setenv("TRACKBOX_CRM_PASSWORD", demo_data.DEMO_PASSWORD)
    with run_in_thread(settings, middleware=limits) as server:
        added = cli(
            "account", "add", "--mail-url", maildir(tmp_path / "Maildir"),
            "--crm-url", server.url, "--crm-user", demo_data.ME.email,
        )  # fmt: skip
        assert added.code == OK, added.err
        before = cli("diagnose")
        assert "CRM throttling:\n  never asked to slow down" in before.out, before.out
        synced = cli("sync", "--once")
        assert synced.code == OK, synced.err + synced.out
        diagnosed = cli("diagnose")
    assert stats.throttled >= 1 and stats.violations == 0
    assert "last asked to slow down at " in diagnosed.out, diagnosed.out
    assert "asked to wait 1 s" in diagnosed.out
