"""The setup wizard's Microsoft sign-in against the emulator as the authority over HTTPS: from
the organisation's URL in the (fake) system browser, with a device code shown in the page (and
cancelled), and from an e-mail address through the discovery service's environment list. The
profile is saved with its sign-in keys and the tokens go to the keyring, never to a file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config.credentials import TokenCacheStore
from core.config.profiles import Profiles
from core.crm.signin import DeviceFlow
from crmserver import RunningServer, TlsFiles
from desktop.wizard import SetupWizard
from desktop.workers import Workers
from tests.memory_keyring import MemoryKeyring
from tests.signin.authority import (
    ME,
    PASSWORD,
    authority_server,
    ca_of,
    context_of,
    tenant_authority,
)
from tests.signin.conftest import maildir, ring  # noqa: F401  (the in-memory keyring)
from tests.signin.pages import approve_device_code, system_browser

NAME = "work"


@pytest.fixture
def server(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    with authority_server(tmp_path / "org.db", crm_tls) as running:
        yield running


@pytest.fixture
def wizard(
    qtbot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ring: MemoryKeyring,  # noqa: F811
) -> Iterator[SetupWizard]:
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path / "home"))
    workers = Workers()
    made = SetupWizard(workers)
    qtbot.addWidget(made)
    made.mail.kind.setCurrentIndex(made.mail.kind.findData("maildir"))
    made.mail.url.setText(maildir(tmp_path / "Maildir"))
    made.sync_page.name.setText(NAME)
    yield made
    workers.wait()


def choose_microsoft(wizard: SetupWizard, server: RunningServer, typed: str) -> None:
    page = wizard.crm
    page.kind.setCurrentIndex(page.kind.findData("microsoft"))
    page.url.setText(typed)
    page.ca_file.setText(ca_of(server))


def test_sign_in_from_the_org_url_in_the_browser_then_save(
    qtbot, wizard: SetupWizard, server: RunningServer
) -> None:
    choose_microsoft(wizard, server, server.url)
    page = wizard.crm
    assert not page.user.isVisibleTo(page) and not page.password.isVisibleTo(page)
    assert not page.isComplete()
    with system_browser(ME, PASSWORD, context_of(server)) as browser:
        page.oauth.sign_in.click()
        qtbot.waitUntil(lambda: page.oauth.connected is not None, timeout=60_000)
    assert browser.errors == [] and len(browser.opened) == 1
    assert "code_challenge_method=S256" in browser.opened[0]  # PKCE, loopback redirect
    assert page.isComplete()
    assert f"Signed in to {server.url} as {ME}" in page.result.text()
    with qtbot.waitSignal(wizard.profile_saved, timeout=30_000) as saved:
        wizard.accept()
    assert saved.args == [NAME]
    profile = Profiles().load(NAME)
    config = profile.config
    assert (config.crm_auth, config.crm_url, config.crm_user) == ("microsoft", server.url, ME)
    assert config.crm_authority == tenant_authority(server)  # from the 401 challenge
    assert config.crm_ca_file == ca_of(server)
    cached = TokenCacheStore(NAME).load()
    assert cached and "RefreshToken" in cached
    text = profile.config_path.read_text()
    assert "secret" not in text.lower() and PASSWORD not in text


def test_a_device_code_is_shown_in_the_page_and_can_be_cancelled(
    qtbot, wizard: SetupWizard, server: RunningServer
) -> None:
    choose_microsoft(wizard, server, server.url)
    oauth = wizard.crm.oauth
    with qtbot.waitSignal(oauth.interaction.code_shown, timeout=30_000) as shown:
        oauth.use_code.click()
    flow: DeviceFlow = shown.args[0]
    qtbot.waitUntil(lambda: oauth.code.isVisibleTo(oauth), timeout=5_000)
    assert flow.user_code in oauth.code.text() and flow.verification_uri in oauth.code.text()
    assert oauth.cancel.isVisibleTo(oauth) and not oauth.sign_in.isEnabled()
    oauth.cancel.click()
    qtbot.waitUntil(lambda: oauth.sign_in.isEnabled(), timeout=30_000)
    assert oauth.connected is None and "did not succeed" in wizard.crm.result.text()

    with qtbot.waitSignal(oauth.interaction.code_shown, timeout=30_000) as shown:
        oauth.use_code.click()
    flow = shown.args[0]
    approve = threading.Thread(
        target=approve_device_code,
        args=(flow.verification_uri, flow.user_code, ME, PASSWORD, context_of(server)),
    )
    approve.start()
    qtbot.waitUntil(lambda: oauth.connected is not None, timeout=60_000)
    approve.join()
    assert oauth.connected is not None and oauth.connected.username == ME
    assert not oauth.code.isVisibleTo(oauth)


def test_an_e_mail_address_lists_the_environments_to_pick_from(
    qtbot, wizard: SetupWizard, server: RunningServer
) -> None:
    choose_microsoft(wizard, server, ME)
    page = wizard.crm
    page.authority.setText(server.url + "/organizations")
    page.discovery_url.setText(server.url)
    with system_browser(ME, PASSWORD, context_of(server)) as browser:
        page.oauth.sign_in.click()
        qtbot.waitUntil(lambda: page.oauth.connected is not None, timeout=60_000)
    assert len(browser.opened) == 1  # one sign-in for discovery and the organisation
    picker = page.oauth.environment
    assert page.oauth.pick.isVisibleTo(page) and picker.count() >= 1
    urls = [picker.itemData(i).url for i in range(picker.count())]
    assert server.url in urls and "Contoso" in picker.itemText(urls.index(server.url))
    assert page.oauth.connected is not None and page.oauth.connected.org_url == server.url
    with qtbot.waitSignal(wizard.profile_saved, timeout=30_000):
        wizard.accept()
    config = Profiles().load(NAME).config
    assert (config.crm_url, config.crm_user) == (server.url, ME)
    assert (config.crm_authority, config.crm_discovery_url) == (
        server.url + "/organizations",
        server.url,
    )


def test_an_address_that_is_neither_is_explained_and_nothing_saved(
    qtbot, wizard: SetupWizard, server: RunningServer
) -> None:
    choose_microsoft(wizard, server, "not an address")
    wizard.crm.oauth.sign_in.click()
    assert "neither" in wizard.crm.result.text()
    with qtbot.waitSignal(wizard.save_failed, timeout=5_000) as failed:
        wizard.accept()
    assert "Sign in to the CRM first" in failed.args[0]
    assert Profiles().names() == []
