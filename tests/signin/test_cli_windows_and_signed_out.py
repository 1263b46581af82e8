"""The commands with Windows sign-in (through the NTLM front end) and with a Microsoft profile
nobody is signed in to: a clear "sign in again" and the credentials exit code, no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.cli.context import CREDENTIALS, OK
from core.config.profiles import Profiles
from core.domain import demo_data
from crmserver import RunningServer
from tests.fakes.ews_auth import NtlmAccounts
from tests.fakes.ntlm_proxy import NtlmProxy, running_proxy
from tests.signin.conftest import Cli, maildir

PASSWORD = "Spring-2026!win"


@pytest.fixture
def proxy(fresh_crm: RunningServer, ntlm_accounts: NtlmAccounts) -> Iterator[NtlmProxy]:
    with running_proxy(fresh_crm.url, ntlm_accounts) as running:
        running.add_user("CONTOSO\\alexw", PASSWORD, demo_data.ME.email, demo_data.DEMO_PASSWORD)
        yield running


def test_windows_sign_in_profile_syncs_and_diagnoses(
    cli: Cli, proxy: NtlmProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKBOX_CRM_PASSWORD", PASSWORD)
    added = cli(
        "account",
        "add",
        "--mail-url",
        maildir(tmp_path / "Maildir"),
        "--crm-url",
        proxy.url,
        "--crm-user",
        "CONTOSO\\alexw",
        "--sign-in",
        "windows",
    )
    assert added.code == OK, added.err
    config = Profiles().load("default").config
    assert (config.crm_auth, config.crm_user) == ("windows", "CONTOSO\\alexw")
    synced = cli("sync", "--once")
    assert synced.code == OK, synced.err + synced.out
    assert proxy.auth_log.signins and proxy.auth_log.signins[0] == ("ntlm", "CONTOSO\\alexw")
    diagnosed = cli("diagnose")
    assert "kind: windows" in diagnosed.out and "user: CONTOSO\\alexw" in diagnosed.out
    assert "[ok] crm sign-in" in diagnosed.out
    assert PASSWORD not in diagnosed.out

    monkeypatch.setenv("TRACKBOX_CRM_PASSWORD", "not-the-password")
    refused = cli("sync", "--once")
    assert refused.code == CREDENTIALS
    assert proxy.auth_log.refusals


def test_a_microsoft_profile_nobody_signed_in_to(cli: Cli, tmp_path: Path) -> None:
    Profiles().create(
        "default",
        {
            "mail_url": maildir(tmp_path / "Maildir"),
            "crm_url": "https://contoso.crm.dynamics.com",
            "crm_user": "alex@contoso.example",
            "crm_auth": "microsoft",
        },
    )
    for argv in (("sync", "--once"), ("track", "<x@y>"), ("queue", "list")):
        ran = cli(*argv)
        assert ran.code == CREDENTIALS, (argv, ran.err)
        assert "sign in again: trackbox account sign-in" in ran.err
    diagnosed = cli("diagnose")
    assert "kind: microsoft" in diagnosed.out
    assert "account: nobody signed in" in diagnosed.out
    assert "access token" not in diagnosed.out.split("Checks:")[0].split("CRM sign-in:")[1] or (
        "none" in diagnosed.out
    )
    assert "[FAIL] credentials: Nobody is signed in" in diagnosed.out
    out = cli("account", "sign-out")
    assert out.code == OK and "Nobody was signed in" in out.out
    other = cli("account", "sign-in", "--profile", "nope")
    assert other.code != OK and "No profile named 'nope'" in other.err


def test_sign_in_is_for_microsoft_profiles_only(cli: Cli, tmp_path: Path) -> None:
    Profiles().create(
        "default",
        {
            "mail_url": maildir(tmp_path / "Maildir"),
            "crm_url": "https://contoso.crm.dynamics.com",
            "crm_user": "alex@contoso.example",
        },
    )
    ran = cli("account", "sign-in")
    assert ran.code != OK and "signs in with a password password" not in ran.err
    assert "set it with 'trackbox account add --replace'" in ran.err
