"""A fresh install, or a data directory whose profile is gone: every command a new user tries
first says how to set up an account, and exits 5 (``core.cli.context.NOT_SET_UP``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SET_UP = "No account is set up"


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRACKBOX_HOME": str(home)}
    for name in ("TRACKBOX_CRM_PASSWORD", "TRACKBOX_MAIL_PASSWORD"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "desktop.launcher", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A data directory left behind without its profile file."""
    home = tmp_path / "home"
    (home / "profiles" / "default" / "data" / "logs").mkdir(parents=True)
    return home


def test_list_without_a_profile_says_how_to_set_one_up(home: Path) -> None:
    result = _run(home, "list")
    assert result.returncode == 5
    assert SET_UP in result.stderr
    assert "trackbox account add" in result.stderr and "setup wizard" in result.stderr
    assert "known profiles" not in result.stderr


def test_diagnose_without_a_profile_says_how_to_set_one_up(home: Path) -> None:
    result = _run(home, "diagnose")
    assert result.returncode == 5
    first = result.stdout.splitlines()[0]
    assert first.startswith(SET_UP) and "trackbox account add" in first
    assert "keyring:" in result.stdout  # the versions still come (a bug report needs them)


def test_diagnose_json_without_a_profile(home: Path) -> None:
    result = _run(home, "diagnose", "--json")
    assert result.returncode == 5
    report = json.loads(result.stdout)
    assert report["set_up"] is False and report["next_step"].startswith(SET_UP)


def test_an_unknown_profile_beside_others_is_still_a_usage_error(home: Path) -> None:
    config = home / "profiles" / "work" / "profile.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        'mail_url = "maildir:/nonexistent"\ncrm_url = "https://crm.example"\n'
        'crm_user = "me@example.com"\n'
    )
    result = _run(home, "list", "--profile", "other")
    assert result.returncode == 2
    assert "No profile named 'other'" in result.stderr and "work" in result.stderr
