"""Options › Accounts on a Microsoft profile: the sign-in kind, the signed-in account and its
access token's expiry (never the token); "Sign out" removes the account from the keyring cache
the workspace renews from, "Sign in…" brings it back through the (fake) system browser. Against
the emulator as the authority over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.cli.context import open_workspace
from core.cli.sign_in import token_cache
from core.config.credentials import TokenCacheStore
from core.crm.signin import MicrosoftSignIn
from core.workspace.facade import Workspace
from crmserver import RunningServer, TlsFiles
from desktop.accounts import SignInBox
from desktop.ops import ChangeBus
from desktop.options import OptionsDialog
from desktop.workers import Workers
from tests.desktop.test_signin_banner import add_microsoft_profile
from tests.memory_keyring import MemoryKeyring
from tests.signin.authority import (
    ME,
    PASSWORD,
    authority_server,
    ca_of,
    close_signers,
    context_of,
    tenant_authority,
)
from tests.signin.conftest import ring  # noqa: F401  (the in-memory keyring)
from tests.signin.pages import system_browser


@pytest.fixture
def server(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    with authority_server(tmp_path / "org.db", crm_tls) as running:
        yield running
        close_signers()


@pytest.fixture
def workspace(
    ring: MemoryKeyring,  # noqa: F811
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Workspace]:
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path / "home"))
    add_microsoft_profile(server, tmp_path / "Maildir")
    opened = open_workspace("default")
    yield opened.workspace
    opened.workspace.close()


def cached_accounts(server: RunningServer) -> list[str]:
    """Who the profile's keyring cache holds (read as a new process would)."""
    fresh = MicrosoftSignIn(
        server.url,
        authority=tenant_authority(server),
        verify=ca_of(server),
        cache=token_cache("default"),
    )
    return [a.username for a in fresh.accounts()]


def test_accounts_shows_the_sign_in_and_signs_out_and_in_again(
    qtbot, workspace: Workspace, server: RunningServer
) -> None:
    workers = Workers()
    dialog = OptionsDialog(workspace, workers, ChangeBus())
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.loaded, timeout=30_000):
        dialog.show()
    dialog.tabs.setCurrentWidget(dialog.accounts)
    box = dialog.accounts.signin
    assert isinstance(box, SignInBox) and box.isVisibleTo(dialog.accounts)
    qtbot.waitUntil(lambda: box.account.text() == ME, timeout=10_000)
    assert box.kind.text().startswith("Microsoft account")
    assert box.expiry.text().startswith("good until")
    assert not dialog.accounts.crm_password.isEnabled()  # no password: the sign-in below
    cached = str(TokenCacheStore("default").load())
    secrets = [part for part in cached.split('"') if len(part) > 40]  # the tokens' text
    shown = " ".join(w.text() for w in (box.kind, box.account, box.expiry, box.result))
    assert secrets and not any(secret in shown for secret in secrets)

    with qtbot.waitSignal(box.changed, timeout=30_000) as signed_out:
        box.sign_out_button.click()
    assert signed_out.args[0].username is None
    assert box.account.text() == "Nobody is signed in" and not box.sign_out_button.isEnabled()
    assert "Signed out" in box.result.text()
    assert cached_accounts(server) == []

    with (
        system_browser(ME, PASSWORD, context_of(server)) as browser,
        qtbot.waitSignal(box.changed, timeout=60_000) as signed_in,
    ):
        box.sign_in_button.click()
    assert browser.errors == [] and len(browser.opened) == 1
    assert signed_in.args[0].username == ME and box.account.text() == ME
    assert cached_accounts(server) == [ME]
    assert workspace.crm.who_am_i().user_id  # the open workspace uses the new sign-in
    workers.wait()
