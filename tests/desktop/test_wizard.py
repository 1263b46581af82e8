"""The first-run setup wizard: fields, connection test against the emulator, the profile saved
to TRACKBOX_HOME and the passwords to the keyring (the tests' in-memory one), never to the
file; a bad URL keeps the wizard open with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config.credentials import SecretKind, get_secret
from core.config.profiles import Profiles
from core.domain import demo_data
from desktop.wizard import SetupWizard
from desktop.workers import Workers


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path / "home"))
    for var in ("TRACKBOX_CRM_PASSWORD", "TRACKBOX_MAIL_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


def fill(wizard: SetupWizard, crm_url: str, mail_url: str) -> None:
    wizard.mail.kind.setCurrentIndex(wizard.mail.kind.findData("imaps"))
    wizard.mail.url.setText(mail_url)
    wizard.mail.user.setText("alex")
    wizard.mail.password.setText("mail-secret")
    assert wizard.crm.crm_auth == "microsoft"  # what most customers have
    wizard.crm.kind.setCurrentIndex(wizard.crm.kind.findData("password"))
    wizard.crm.url.setText(crm_url)
    wizard.crm.user.setText(demo_data.ME.email)
    wizard.crm.password.setText(demo_data.DEMO_PASSWORD)
    wizard.sync_page.name.setText("work")
    wizard.sync_page.interval.setValue(20)
    wizard.sync_page.scope.setCurrentIndex(1)


def test_setup_saves_profile_and_keyring_secrets(qtbot, home, crm_server) -> None:
    workers = Workers()
    wizard = SetupWizard(workers)
    qtbot.addWidget(wizard)
    wizard.show()
    fill(wizard, crm_server.url, "imaps://mail.example.com:993")
    wizard.crm.test.click()
    qtbot.waitUntil(lambda: wizard.crm.test.isEnabled(), timeout=10_000)
    assert wizard.crm.result.text().startswith("Connected"), wizard.crm.result.text()
    with qtbot.waitSignal(wizard.profile_saved, timeout=10_000) as saved:
        wizard.accept()
    assert saved.args == ["work"]
    profile = Profiles().load("work")
    assert profile.config.crm_url == crm_server.url
    assert profile.config.sync_interval_minutes == 20
    assert profile.config.contacts_scope == "all"
    text = profile.config_path.read_text()
    assert "mail-secret" not in text and demo_data.DEMO_PASSWORD not in text
    assert get_secret("work", SecretKind.CRM, demo_data.ME.email) == demo_data.DEMO_PASSWORD
    assert get_secret("work", SecretKind.MAIL, "alex") == "mail-secret"
    assert Profiles().default_name() == "work"
    workers.wait()


def test_wrong_password_and_bad_url_are_explained(qtbot, home, crm_server) -> None:
    workers = Workers()
    wizard = SetupWizard(workers)
    qtbot.addWidget(wizard)
    fill(wizard, crm_server.url, "ftp://nowhere")
    wizard.crm.password.setText("wrong")
    wizard.crm.test.click()
    qtbot.waitUntil(lambda: wizard.crm.test.isEnabled(), timeout=10_000)
    assert "refused your sign-in" in wizard.crm.result.text()
    with qtbot.waitSignal(wizard.save_failed, timeout=10_000) as failed:
        wizard.accept()
    assert "mail_url" in failed.args[0]
    assert Profiles().names() == []
    workers.wait()
