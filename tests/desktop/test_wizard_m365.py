"""The setup wizard's "Microsoft 365 (Outlook mail + Dynamics 365)" path end to end (issue 16):
the address typed once, one browser sign-in at the emulator's authority (over HTTPS) that
finds the environment through discovery and consents to Microsoft Graph's mail scopes, the
environment from discovery's list, and a profile whose mailbox the fake Graph server serves
with tokens from the same sign-in — no mail password anywhere. A sign-in that did not consent
to the mail is explained in the wizard and nothing is saved."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

import desktop.wizard
from core.cli.context import open_workspace
from core.cli.sign_in import mail_scopes
from core.config.credentials import SecretKind, TokenCacheStore, get_secret
from core.config.profiles import Profiles, graph_url
from core.crm.signin import MicrosoftSignIn
from core.crm.token_cache import PersistentTokenCache
from core.domain.model import Address
from crmserver import RunningServer, TlsFiles
from desktop.accounts import AccountsTab
from desktop.wizard import SetupWizard
from desktop.workers import Workers
from tests.fakes.graph_server import FakeGraphServer
from tests.memory_keyring import MemoryKeyring
from tests.signin.authority import ME, PASSWORD, authority_server, context_of, tenant_authority
from tests.signin.conftest import ring  # noqa: F401  (the in-memory keyring)
from tests.signin.pages import system_browser
from tests.sync.env import mime

NAME = "work"
JANE = Address("jane.doe@fabrikam.example", "Jane Doe")  # a demo contact


@pytest.fixture
def server(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    """The emulator as the CRM, its discovery service and the sign-in authority."""
    with authority_server(tmp_path / "org.db", crm_tls) as running:
        yield running


@pytest.fixture
def graph(
    server: RunningServer, graph_tls: TlsFiles, crm_tls: TlsFiles
) -> Iterator[FakeGraphServer]:
    fake = FakeGraphServer(tenant_authority(server), graph_tls, authority_ca=crm_tls.ca)
    fake.start()
    fake.add_mailbox(ME)
    try:
        yield fake
    finally:
        fake.stop()
    assert fake.unknown_requests == []


@pytest.fixture
def ca_bundle(tmp_path: Path, crm_tls: TlsFiles, graph_tls: TlsFiles) -> str:
    """One PEM for ``crm_ca_file``: the CRM's and authority's CA and the fake Graph's."""
    path = tmp_path / "cas.pem"
    path.write_text(Path(crm_tls.ca).read_text() + Path(graph_tls.ca).read_text())
    return str(path)


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
    made.show()
    yield made
    workers.wait()


def sign_in_once(
    qtbot,
    wizard: SetupWizard,
    server: RunningServer,
    graph: FakeGraphServer,
    ca_bundle: str,
) -> list[str]:
    """Microsoft 365 chosen (the first kind), the address typed, then the CRM page's one
    browser sign-in; returns the addresses the browser opened."""
    mail = wizard.mail
    assert mail.kind.currentIndex() == 0 and mail.microsoft365  # the recommended choice
    assert "Microsoft 365" in mail.kind.currentText()
    assert not mail.password.isVisibleTo(mail) and not mail.url.isVisibleTo(mail)
    assert not mail.isComplete()
    mail.m365.address.setText(ME)
    mail.m365.endpoint.setText(graph.url)  # the fake instead of graph.microsoft.com
    assert mail.isComplete()
    wizard.next()
    crm = wizard.crm
    assert wizard.currentPage() is crm
    assert not crm.kind.isVisibleTo(crm) and not crm.url.isVisibleTo(crm)
    assert (crm.crm_auth, crm.url.text()) == ("microsoft", ME)  # the address is the hint
    assert crm.oauth.sign_in.isVisibleTo(crm) and crm.oauth.use_code.isVisibleTo(crm)
    crm.authority.setText(server.url + "/organizations")
    crm.discovery_url.setText(server.url)
    crm.ca_file.setText(ca_bundle)
    with system_browser(ME, PASSWORD, context_of(server)) as browser:
        crm.oauth.sign_in.click()
        qtbot.waitUntil(lambda: crm.oauth.connected is not None, timeout=60_000)
    assert browser.errors == []
    return browser.opened


def test_microsoft365_one_sign_in_configures_mail_and_crm_end_to_end(
    qtbot,
    wizard: SetupWizard,
    server: RunningServer,
    graph: FakeGraphServer,
    ca_bundle: str,
) -> None:
    opened = sign_in_once(qtbot, wizard, server, graph, ca_bundle)
    assert len(opened) == 1  # one sign-in: discovery, the CRM and Graph
    assert "Mail.ReadWrite" in unquote(opened[0])  # Graph consented in the same sign-in
    picker = wizard.crm.oauth.environment
    assert wizard.crm.oauth.pick.isVisibleTo(wizard.crm) and picker.count() >= 1
    envs = [picker.itemData(i) for i in range(picker.count())]
    [chosen] = [e for e in envs if e.url == server.url]
    assert wizard.crm.oauth.connected is not None
    assert wizard.crm.oauth.connected.org_url == server.url

    wizard.next()
    assert wizard.currentPage() is wizard.sync_page
    assert wizard.sync_page.summary.text() == (
        f"Mail: Microsoft 365 (Microsoft Graph) · CRM: {chosen.friendly_name} · one sign-in"
    )
    wizard.sync_page.name.setText(NAME)
    with qtbot.waitSignal(wizard.profile_saved, timeout=60_000) as saved:
        wizard.accept()
    assert saved.args == [NAME]
    profile = Profiles().load(NAME)
    config = profile.config
    assert config.mail_url == graph_url(graph.url) and config.uses_graph_mail
    assert (config.crm_auth, config.crm_url, config.crm_user) == ("microsoft", server.url, ME)
    assert (config.crm_ca_file, config.mail_user) == (ca_bundle, "")
    assert get_secret(NAME, SecretKind.MAIL, ME) is None  # no mail password anywhere
    cached = TokenCacheStore(NAME).load()
    assert cached and "RefreshToken" in cached
    text = profile.config_path.read_text()
    assert "secret" not in text.lower() and PASSWORD not in text
    assert any("mailFolders" in r for r in graph.requests)  # the mailbox was tried first

    message_id, raw = mime(JANE, Address(ME), f"Quote {uuid.uuid4().hex[:6]}")
    graph.add_message(ME, "inbox", raw)
    ws = open_workspace(NAME).workspace
    try:
        report = ws.sync_cycle()
        assert report.mail_online, report
        [row] = ws.store().messages_by_message_id(message_id)  # its header, from Graph
        assert row.header.message_id == message_id

        tab = AccountsTab(ws, wizard.workers)  # Options › Accounts of the new profile
        qtbot.addWidget(tab)
        assert tab.mail_kind.isVisibleTo(tab) and not tab.mail_password.isVisibleTo(tab)
        assert tab.mail_kind.text().startswith(
            f"Mail: Microsoft 365 through Microsoft Graph, signed in as {ME}"
        )
        qtbot.waitUntil(lambda: ME in tab.signin.account.text(), timeout=30_000)
        wizard.workers.wait()
    finally:
        ws.close()


def test_a_sign_in_without_the_mail_consent_is_explained_and_not_saved(
    qtbot,
    wizard: SetupWizard,
    server: RunningServer,
    graph: FakeGraphServer,
    ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The user (or the tenant) consents to the CRM only: the sign-in asks for no Graph
    scopes, so the authority refuses a Graph token from its refresh token."""
    signer = desktop.wizard._signer

    def crm_only(config, cache: PersistentTokenCache, hint: str | None):  # type: ignore[no-untyped-def]
        make = signer(config, cache, hint)

        def without_mail(resource: str, authority: str) -> MicrosoftSignIn:
            made = make(resource, authority)
            assert made.extra_scopes  # the wizard asked for the mail: taken back here
            made.extra_scopes = []
            return made

        return without_mail

    monkeypatch.setattr(desktop.wizard, "_signer", crm_only)
    opened = sign_in_once(qtbot, wizard, server, graph, ca_bundle)
    assert "Mail.ReadWrite" not in unquote(opened[0])
    wizard.next()
    with qtbot.waitSignal(wizard.save_failed, timeout=60_000) as failed:
        wizard.accept()
    message = failed.args[0]
    assert "not allowed to read the mailbox through Microsoft Graph" in message, message
    assert "Mail.ReadWrite" in message and "administrator" in message
    assert wizard.sync_page.status.text() == message and wizard.isVisible()
    assert Profiles().names() == []
    assert TokenCacheStore("default").load() is None
    assert not any("mailFolders" in r for r in graph.requests)


def test_shared_mailboxes_are_extra_mailboxes_of_the_profile(wizard: SetupWizard) -> None:
    """Shared mailboxes typed on the mail page become the profile's ``extra_mailboxes``
    (shown beside the user's own), and the one sign-in asks for the shared permissions."""
    m365 = wizard.mail.m365
    m365.address.setText(ME)
    m365.shared.setText("sales@contoso.example; support@contoso.example, sales@contoso.example")
    assert m365.extra_mailboxes() == ("sales@contoso.example", "support@contoso.example")
    assert wizard.mail.isComplete() and wizard.mail.mail_url() == "graph:"
    form = wizard.crm.sign_in_form()
    assert form.extra_mailboxes == m365.extra_mailboxes()
    assert "Mail.ReadWrite.Shared" in " ".join(mail_scopes(form.config()))
    data = wizard.profile_data()
    assert data["extra_mailboxes"] == ["sales@contoso.example", "support@contoso.example"]
    assert "shared mailboxes sales@contoso.example, support@contoso.example" in (
        wizard.summary_text()
    )
    m365.shared.setText(ME)  # the own mailbox is not an extra one
    assert not wizard.mail.isComplete()
