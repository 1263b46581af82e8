"""The headless commands as a user runs them: subprocesses of ``trackbox`` against the emulator,
Dovecot and the SMTP relay on loopback, with secrets from the environment."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.domain import demo_data
from core.domain.model import Address
from crmserver import RunningServer
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer
from tests.sync.env import ME, Env, mime

ROOT = Path(__file__).resolve().parents[2]
JANE = Address("jane.doe@fabrikam.example", "Jane Doe")


class Cli:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TRACKBOX_HOME": str(home),
            "TRACKBOX_CRM_PASSWORD": demo_data.DEMO_PASSWORD,
            "TRACKBOX_MAIL_PASSWORD": PASSWORD,
        }

    def __call__(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "desktop.launcher", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Env:
    return Env(fresh_crm, dovecot, smtp_server, tmp_path)


def test_account_sync_track_untrack_list_queue_diagnose(env: Env, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    user = env.dovecot.new_user("cli")
    added = cli(
        "account",
        "add",
        "--mail-url",
        env.mailbox_url(),
        "--mail-user",
        user,
        "--smtp-url",
        env.smtp.url(),
        "--crm-url",
        env.crm.url,
        "--crm-user",
        ME.email,
    )
    assert added.returncode == 0, added.stderr
    assert "not encrypted" in added.stderr and "nowhere" in added.stdout
    again = cli(
        "account",
        "add",
        "--mail-url",
        env.mailbox_url(),
        "--crm-url",
        env.crm.url,
        "--crm-user",
        ME.email,
    )
    assert again.returncode == 2 and "exists already" in again.stderr

    first = cli("sync", "--once", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["ok"] is True
    mid, raw = mime(JANE, ME, "Chairs for the new office")
    mid2, raw2 = mime(JANE, ME, "Desks too")
    env.dovecot.deliver(user, raw)
    env.dovecot.deliver(user, raw2)
    synced = cli("sync", "--once")
    assert synced.returncode == 0 and "Sync done" in synced.stdout

    listed = json.loads(cli("list", "--json").stdout)
    assert {m["message_id"]: m["state"] for m in listed} == {
        mid: "not_tracked",
        mid2: "not_tracked",
    }
    tracked = cli("track", mid.strip("<>"))  # brackets optional
    assert tracked.returncode == 0, tracked.stderr
    assert "tracked" in tracked.stdout and len(env.emails(mid)) == 1
    contact = env.create_contact(f"buyer-{os.getpid()}@fabrikam.example")
    filed = cli("track", mid2, "--regarding", f"contact:{contact}")
    assert filed.returncode == 0, filed.stderr
    assert env.emails(mid2)[0]["_regardingobjectid_value"] == contact
    listed = {m["message_id"]: m for m in json.loads(cli("list", "--json").stdout)}
    assert listed[mid]["state"] == "tracked" and listed[mid]["reason"]
    assert listed[mid2]["regarding"]["id"] == contact

    untracked = cli("untrack", mid)
    assert untracked.returncode == 0 and env.emails(mid) == []
    assert "The queue is empty." in cli("queue", "list").stdout

    missing = cli("track", "<nope@nowhere>")
    assert missing.returncode == 2 and "sync --once" in missing.stderr
    bad = cli("track", mid, "--regarding", "contact")
    assert bad.returncode == 2 and "ENTITY:ID" in bad.stderr
    assert cli("list", "--folder", "Nowhere").returncode == 2
    assert cli("queue", "retry", "999").returncode == 2
    assert cli("list", "--profile", "ghost").returncode == 2

    diagnosis = cli("diagnose")
    assert diagnosis.returncode == 0, diagnosis.stdout
    assert "[ok] crm sign-in" in diagnosis.stdout and "[ok] mail sign-in" in diagnosis.stdout
    assert "Last sync:" in diagnosis.stdout and "ok: True" in diagnosis.stdout

    # No secret anywhere in the data directory or the logs after full cycles.
    basic = base64.b64encode(f"{ME.email}:{demo_data.DEMO_PASSWORD}".encode())
    logs = list((tmp_path / "home").rglob("*.log"))
    assert logs and any("sync done" in p.read_text() for p in logs)
    for path in (tmp_path / "home").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert PASSWORD.encode() not in data, path
            assert basic not in data, path


def test_offline_queue_retry_and_discard(env: Env, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    user = env.dovecot.new_user("cliq")
    dead = "http://127.0.0.1:9"
    for profile, crm in (("live", env.crm.url), ("away", dead)):
        assert (
            cli(
                "account",
                "add",
                "--profile",
                profile,
                "--mail-url",
                env.mailbox_url(),
                "--mail-user",
                user,
                "--crm-url",
                crm,
                "--crm-user",
                ME.email,
            ).returncode
            == 0
        )
    assert cli("sync", "--once", "--profile", "away").returncode == 3  # offline, not an error
    mid, raw = mime(JANE, ME, "Queued while away")
    env.dovecot.deliver(user, raw)
    report = json.loads(cli("sync", "--once", "--json", "--profile", "away").stdout)
    assert report["online"] is False and report["mail_online"] is True
    queued = cli("track", mid, "--profile", "away")
    assert queued.returncode == 3 and "queued" in queued.stdout
    ops = json.loads(cli("queue", "list", "--json", "--profile", "away").stdout)
    assert [(o["kind"], o["state"], o["message_id"]) for o in ops] == [("promote", "queued", mid)]
    retried = cli("queue", "retry", str(ops[0]["id"]), "--profile", "away")
    assert retried.returncode == 0  # still offline: it stays queued
    discarded = cli("queue", "discard", str(ops[0]["id"]), "--profile", "away")
    assert discarded.returncode == 0 and "discarded" in discarded.stdout
    assert cli("queue", "list", "--profile", "away").stdout.strip() == "The queue is empty."
    listed = json.loads(cli("list", "--json", "--profile", "away").stdout)
    assert [m["state"] for m in listed] == ["not_tracked"]
    diagnosis = cli("diagnose", "--profile", "away")
    assert diagnosis.returncode == 1 and "[FAIL] crm reachable" in diagnosis.stdout


def test_account_add_without_a_usable_keyring_says_how_to_fix_it(tmp_path: Path) -> None:
    """The password is asked for at a prompt (a pseudo-terminal here); with no keyring
    backend the command explains what to do, stores nothing and saves no profile."""
    import pty
    import select
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKBOX_")}
    env.update(
        PYTHONPATH=str(ROOT),
        TRACKBOX_HOME=str(tmp_path / "home"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "desktop.launcher",
            "account",
            "add",
            "--mail-url",
            "maildir:/tmp/nowhere",
            "--crm-url",
            "https://crm.example",
            "--crm-user",
            "me@example.com",
        ],
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # no controlling tty
    os.close(slave)
    assert proc.stderr is not None
    # getpass flushes pending input when it turns echo off: answer once it has asked.
    seen = ""
    deadline = time.monotonic() + 60
    while "password for" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 4096).decode()
            if not chunk:
                break
            seen += chunk
    os.write(master, b"typed-secret\n")
    out, err = proc.communicate(timeout=60)
    err = seen + err
    os.close(master)
    assert proc.returncode == 4, (out, err)
    assert "Traceback" not in err and "No usable keyring" in err
    assert "PYTHON_KEYRING_BACKEND" in err and "TRACKBOX_CRM_PASSWORD" in err
    assert not list((tmp_path / "home").rglob("profile.toml"))
    for path in (tmp_path / "home").rglob("*"):
        assert not path.is_file() or b"typed-secret" not in path.read_bytes()
