"""An expired or revoked Microsoft sign-in is a state of the main window: after the refresh
token is revoked, Track queues and the banner "Your sign-in to <CRM> has expired — Sign in
again" appears (non-modal; the status bar says "Sign in again"); the queued operation is left
untried; one click signs in again in the (fake) system browser, hides the banner and syncs, and
the operation goes through. Against the emulator as the authority over HTTPS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PySide6.QtWidgets import QApplication

from core.cli.context import CREDENTIALS, CliError, open_workspace
from core.config.credentials import TokenCacheStore
from core.config.profiles import Profiles
from core.crm.errors import SignInRequired
from core.domain.model import Address, TrackState
from core.domain.problems import Problem
from core.sync.problems import problem_of
from crmserver import RunningServer, TlsFiles
from desktop.errors import describe, describe_problem
from desktop.mainwindow import MainWindow
from desktop.signin import signed_out_profile
from desktop.workers import Workers
from tests.memory_keyring import MemoryKeyring
from tests.signin.authority import (
    ME,
    PASSWORD,
    authority_server,
    ca_of,
    close_signers,
    context_of,
    sign_in,
    tenant_authority,
)
from tests.signin.conftest import maildir, ring  # noqa: F401  (the in-memory keyring)
from tests.signin.pages import system_browser
from tests.sync.env import mime

CUSTOMER = Address("pat.customer@fabrikam.example", "Pat Customer")


@pytest.fixture
def short_lived(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    """Access tokens good for 2 s: every call renews with the refresh token."""
    with authority_server(
        tmp_path / "org.db", crm_tls, access_token_lifetime=2, clock_skew=0
    ) as running:
        yield running
        close_signers()


def _revoke(server: RunningServer, profile: str) -> None:
    """The administrator revokes the user's sessions: every refresh token in the cache."""
    cache = json.loads(str(TokenCacheStore(profile).load()))
    authority = tenant_authority(server)
    with httpx.Client(verify=context_of(server), timeout=30) as http:
        config = http.get(authority + "/v2.0/.well-known/openid-configuration").json()
        for entry in cache["RefreshToken"].values():
            answer = http.post(
                config["revocation_endpoint"],
                data={
                    "token": entry["secret"],
                    "token_type_hint": "refresh_token",
                    "client_id": entry["client_id"],
                },
            )
            assert answer.status_code == 200


def add_microsoft_profile(server: RunningServer, mailbox: Path, name: str = "default") -> str:
    """A Microsoft profile as ``trackbox account add --sign-in microsoft`` leaves it (the
    authority from the org's challenge, the tokens in the keyring), signed in with the
    auth-code flow; its Maildir holds one mail from a customer. Returns its Message-ID."""
    mail_url = maildir(mailbox)
    message_id, data = mime(CUSTOMER, Address(ME), f"Quote {uuid.uuid4().hex[:6]}")
    (mailbox / "new" / f"{uuid.uuid4().hex}.eml").write_bytes(data)
    authority = tenant_authority(server)
    Profiles().create(
        name,
        {
            "mail_url": mail_url,
            "crm_url": server.url,
            "crm_user": ME,
            "crm_auth": "microsoft",
            "crm_authority": authority,
            "crm_ca_file": ca_of(server),
        },
    )
    sign_in(server, TokenCacheStore(name), authority=authority)
    return message_id


@pytest.fixture
def signed_in_window(
    qtbot,
    ring: MemoryKeyring,  # noqa: F811
    short_lived: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[MainWindow, str]]:
    """A Microsoft profile opened in the window (first sync done); yields the window and
    the mail's Message-ID."""
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path / "home"))
    message_id = add_microsoft_profile(short_lived, tmp_path / "Maildir")
    opened = open_workspace("default")
    workers = Workers()
    win = MainWindow(workers)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.mail_synced, timeout=60_000):
        win.set_workspace(opened.workspace)
    qtbot.waitUntil(lambda: win.message_model.rowCount() == 1, timeout=30_000)
    yield win, message_id
    win.detach_workspace()
    QApplication.processEvents()
    workers.wait()
    opened.workspace.close()


def test_revoked_sign_in_shows_the_banner_and_one_click_signs_in_again(
    qtbot, signed_in_window: tuple[MainWindow, str], short_lived: RunningServer
) -> None:
    win, message_id = signed_in_window
    ws = win.workspace
    assert ws is not None
    banner = win.signin_banner
    assert not banner.expired and not banner.isVisible()

    _revoke(short_lived, "default")
    win.select_rows([0])
    with qtbot.waitSignal(win.tracking_done, timeout=30_000):
        win.action_track.trigger()
    qtbot.waitUntil(lambda: banner.expired, timeout=10_000)
    assert banner.isVisible()  # non-modal: a strip in the window, no dialog
    assert QApplication.activeModalWidget() is None
    assert banner.text.text() == f"Your sign-in to {ws.crm.base_url} has expired — Sign in again"
    assert "Sign in again" in win.status_connection.text()
    [op] = ws.queue()
    assert (op.message_id, op.attempts, op.state) == (message_id, 0, "queued")

    with qtbot.waitSignal(win.mail_synced, timeout=10_000):
        win.sync_now()  # a sync meanwhile: still signed out, the queue untouched
    assert banner.expired and "Sign in again" in win.statusBar().currentMessage()
    [op] = ws.queue()
    assert (op.attempts, op.state) == (0, "queued")

    with (
        system_browser(ME, PASSWORD, context_of(short_lived)) as browser,
        qtbot.waitSignal(win.mail_synced, timeout=60_000),
    ):
        banner.button.click()
        qtbot.waitUntil(lambda: not banner.expired, timeout=60_000)
    assert browser.errors == [] and len(browser.opened) == 1
    assert not banner.isVisible() and "Sign in again" not in win.status_connection.text()
    qtbot.waitUntil(lambda: ws.queue() == [], timeout=30_000)
    [row] = list(ws.store().messages_by_message_id(message_id))
    assert row.track_state is TrackState.TRACKED


def test_sign_in_required_is_its_own_problem_worded_sign_in_again() -> None:
    error = SignInRequired("AADSTS50173: revoked", reason="invalid_grant", username=ME)
    problem = problem_of(error, "reading the CRM settings")
    assert problem.problem is Problem.CRM_SIGN_IN_EXPIRED
    assert "Sign in again" in describe_problem(problem)
    assert "Sign in again" in describe(error) and ME in describe(error)


def test_a_profile_nobody_is_signed_in_to_gets_the_banner_before_it_opens(
    qtbot,
    ring: MemoryKeyring,  # noqa: F811
    short_lived: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path / "home"))
    add_microsoft_profile(short_lived, tmp_path / "Maildir")
    assert signed_out_profile("default") is None  # signed in: nothing to offer
    TokenCacheStore("default").clear()  # signed out (another machine's sign-out, say)
    with pytest.raises(CliError) as refused:
        open_workspace("default")
    assert refused.value.code == CREDENTIALS
    found = signed_out_profile("default")
    assert found == ("default", short_lived.url)
    workers = Workers()
    win = MainWindow(workers)
    qtbot.addWidget(win)
    win.show()
    banner = win.signin_banner
    banner.show_signed_out(*found)
    assert banner.isVisible() and short_lived.url in banner.text.text()
    with (
        system_browser(ME, PASSWORD, context_of(short_lived)) as browser,
        qtbot.waitSignal(banner.profile_signed_in, timeout=60_000) as signed,
    ):
        banner.button.click()
    assert signed.args == ["default"] and browser.errors == []
    assert not banner.expired
    opened = open_workspace("default")  # what the app does next
    assert opened.workspace.crm.who_am_i().user_id
    opened.workspace.close()
    workers.wait()
