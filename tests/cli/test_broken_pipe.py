"""``trackbox list --json | head -1``: the reader going away ends the command quietly, as it
ends a Unix tool — no BrokenPipe traceback, exit code 141 (128 + SIGPIPE)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.config.profiles import Profiles
from core.domain.model import Address, Folder, MailRef, MessageHeader
from core.store import Store

ROOT = Path(__file__).resolve().parents[2]
PROFILE = {
    "mail_url": "imaps://mail.contoso.example:993",
    "mail_user": "alex",
    "crm_url": "https://contoso.crm.dynamics.com",
    "crm_user": "alex.morgan@contoso.example",
}


def make_profile(home: Path, messages: int) -> None:
    """A profile whose store holds ``messages`` headers in the Inbox: far more output than a
    pipe buffers (64 KiB), so the writer is still writing when ``head`` exits."""
    profile = Profiles(home).create("default", PROFILE)
    with Store.open(profile.store_path) as store:
        store.upsert_folders([Folder("Inbox", "Inbox")])
        store.upsert_headers(
            MessageHeader(
                ref=MailRef("Inbox", str(n)),
                message_id=f"<pipe-{n}@test.example>",
                subject=f"Message {n} " + "x" * 200,
                sender=Address("jane.doe@fabrikam.example"),
            )
            for n in range(messages)
        )


def test_list_into_head_exits_quietly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_profile(home, 3000)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRACKBOX_HOME": str(home)}
    trackbox = f"{sys.executable} -m desktop.launcher list --json --limit 3000"
    script = f'set -o pipefail; {trackbox} 2>stderr.txt | head -1; echo "exit=$?" >&2'
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    stderr = (tmp_path / "stderr.txt").read_text()
    assert result.stdout.strip() == "[", result.stdout[:200]
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert stderr == ""
    assert "exit=141" in result.stderr, result.stderr


def test_the_whole_listing_still_exits_0(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_profile(home, 3)
    result = subprocess.run(
        [sys.executable, "-m", "desktop.launcher", "list", "--json"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TRACKBOX_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("pipe-") == 3
