"""Options › Accounts on a real profile: the connection edited, each bad field explained next
to it, the connection test run against the form's values (emulator and Dovecot on loopback)
with the servers' own words on failure, and the save round trip — passwords in the keyring,
never in a file under TRACKBOX_HOME. The demo shows its connection read-only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel, QLineEdit

from core.cli.context import open_workspace
from core.config.credentials import SecretKind, get_secret, set_secret
from core.config.profiles import Profiles
from core.domain import demo_data
from desktop.ops import ChangeBus
from desktop.options import OptionsDialog
from desktop.workers import Workers

NAME = "acct"
CRM_PASSWORD = demo_data.DEMO_PASSWORD


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path / "home"))
    for var in ("TRACKBOX_CRM_PASSWORD", "TRACKBOX_MAIL_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture
def mail_user(dovecot) -> str:
    return dovecot.new_user("acct")


@pytest.fixture
def profile_ws(home: Path, crm_server, dovecot, mail_user: str) -> Iterator[object]:
    """A profile on Dovecot and the emulator, its secrets in the (test) keyring."""
    Profiles().create(
        NAME,
        {
            "mail_url": dovecot.url("imap+insecure"),
            "mail_user": mail_user,
            "crm_url": crm_server.url,
            "crm_user": demo_data.ME.email,
        },
    )
    set_secret(NAME, SecretKind.CRM, demo_data.ME.email, CRM_PASSWORD)
    set_secret(NAME, SecretKind.MAIL, mail_user, dovecot.password)
    opened = open_workspace(NAME, need_mail=False)
    yield opened.workspace
    opened.workspace.close()


def open_dialog(qtbot, ws, workers: Workers) -> OptionsDialog:
    dialog = OptionsDialog(ws, workers, ChangeBus())
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.loaded, timeout=20_000):
        dialog.show()
    dialog.tabs.setCurrentWidget(dialog.accounts)
    return dialog


def field(dialog: OptionsDialog, name: str) -> QLineEdit:
    found = dialog.findChild(QLineEdit, name)
    assert found is not None, name
    return found


def label(dialog: OptionsDialog, name: str) -> QLabel:
    found = dialog.findChild(QLabel, name)
    assert found is not None, name
    return found


def run_test(qtbot, dialog: OptionsDialog) -> tuple[str, str]:
    with qtbot.waitSignal(dialog.accounts.tested, timeout=30_000):
        dialog.accounts.test_button.click()
    return (label(dialog, "accountMailResult").text(), label(dialog, "accountCrmResult").text())


def test_tab_shows_the_connection_and_warns_about_plain_text(
    qtbot, profile_ws, workers, dovecot, crm_server, mail_user
) -> None:
    dialog = open_dialog(qtbot, profile_ws, workers)
    assert field(dialog, "accountMailUrl").text() == dovecot.url("imap+insecure")
    assert field(dialog, "accountMailUser").text() == mail_user
    assert field(dialog, "accountCrmUrl").text() == crm_server.url
    assert field(dialog, "accountCrmUser").text() == demo_data.ME.email
    assert not field(dialog, "accountCrmUrl").isReadOnly()
    assert field(dialog, "accountCrmPassword").text() == ""  # secrets are never shown
    warning = label(dialog, "accountInsecureWarning")
    assert warning.isVisible() and "imap+insecure://" in warning.text()
    field(dialog, "accountMailUrl").setText(dovecot.url("imaps"))
    field(dialog, "accountCrmUrl").setText("https://contoso.crm.dynamics.com")
    assert not warning.isVisible()


def test_bad_fields_are_explained_and_nothing_is_saved(qtbot, profile_ws, workers) -> None:
    before = Profiles().config_path(NAME).read_text()
    dialog = open_dialog(qtbot, profile_ws, workers)
    field(dialog, "accountMailUrl").setText("ews+autodiscover:alex")
    field(dialog, "accountSmtpUrl").setText("smtps://mail.example.com:465")
    field(dialog, "accountCrmUrl").setText("crm.example.com")
    field(dialog, "accountCrmUser").setText("")
    with qtbot.waitSignal(dialog.save_failed, timeout=5_000):
        dialog.save_button.click()
    assert dialog.isVisible() and dialog.tabs.currentWidget() is dialog.accounts
    assert "Accounts tab" in dialog.status.text()
    assert "ews+autodiscover:user@domain" in label(dialog, "accountMailUrlError").text()
    assert "only with an IMAP mailbox" in label(dialog, "accountSmtpUrlError").text()
    assert "expected one of the schemes https, http" in label(dialog, "accountCrmUrlError").text()
    assert label(dialog, "accountCrmUserError").text() == "Expected a user name."
    assert not label(dialog, "accountMailUserError").isVisible()
    assert Profiles().config_path(NAME).read_text() == before
    # Fixed fields lose their message.
    field(dialog, "accountCrmUser").setText(demo_data.ME.email)
    assert not dialog.accounts.check()
    assert not label(dialog, "accountCrmUserError").isVisible()


def test_connection_test_uses_the_form_and_quotes_the_servers(
    qtbot, home, crm_server, dovecot, mail_user, workers
) -> None:
    # The saved profile points at a CRM that is not there; the form is what gets tested.
    Profiles().create(
        NAME,
        {
            "mail_url": dovecot.url("imap+insecure"),
            "mail_user": mail_user,
            "crm_url": "http://127.0.0.1:9",
            "crm_user": demo_data.ME.email,
        },
    )
    set_secret(NAME, SecretKind.CRM, demo_data.ME.email, CRM_PASSWORD)
    set_secret(NAME, SecretKind.MAIL, mail_user, dovecot.password)
    opened = open_workspace(NAME, need_mail=False)
    try:
        dialog = open_dialog(qtbot, opened.workspace, workers)
        field(dialog, "accountCrmUrl").setText(crm_server.url)
        field(dialog, "accountCrmPassword").setText("not-the-password")
        field(dialog, "accountMailPassword").setText("not-the-password")
        mail, crm = run_test(qtbot, dialog)
        assert mail.startswith("Mail: The mail server refused your sign-in"), mail
        assert "Authentication failed" in mail, mail  # Dovecot's own words
        assert crm.startswith("CRM: The CRM refused your sign-in"), crm
        assert "Invalid user name or password. (HTTP 401)" in crm, crm  # the emulator's
        # Empty password fields: the stored secrets are used.
        field(dialog, "accountCrmPassword").clear()
        field(dialog, "accountMailPassword").clear()
        mail, crm = run_test(qtbot, dialog)
        assert mail.startswith("Mail: connected"), mail
        assert crm.startswith("CRM: connected"), crm
        # Nothing was saved by testing.
        assert Profiles().load(NAME).config.crm_url == "http://127.0.0.1:9"
    finally:
        workers.wait()
        opened.workspace.close()


def test_save_then_reopen_and_the_secret_stays_in_the_keyring(
    qtbot, home, profile_ws, workers, dovecot, mail_user
) -> None:
    secret = "Fresh-Mail-Secret-7f3a"
    dialog = open_dialog(qtbot, profile_ws, workers)
    field(dialog, "accountMailUrl").setText(dovecot.url("imaps"))
    field(dialog, "accountMailUser").setText(mail_user + "x")
    field(dialog, "accountMailPassword").setText(secret)
    field(dialog, "accountSmtpUrl").setText("smtp+insecure://127.0.0.1:2525")
    dialog.interval.setValue(42)  # another tab's option is saved alongside
    with qtbot.waitSignal(dialog.connection_saved, timeout=20_000) as saved:
        dialog.save_button.click()
    assert saved.args == [NAME]
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5_000)

    config = Profiles().load(NAME).config
    assert (config.mail_url, config.mail_user) == (dovecot.url("imaps"), mail_user + "x")
    assert config.smtp_url == "smtp+insecure://127.0.0.1:2525"
    assert config.sync_interval_minutes == 42
    assert get_secret(NAME, SecretKind.MAIL, mail_user + "x") == secret
    assert get_secret(NAME, SecretKind.CRM, demo_data.ME.email) == CRM_PASSWORD  # kept
    for path in home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path

    again = open_dialog(qtbot, profile_ws, workers)
    assert field(again, "accountMailUrl").text() == dovecot.url("imaps")
    assert field(again, "accountMailUser").text() == mail_user + "x"
    assert field(again, "accountSmtpUrl").text() == "smtp+insecure://127.0.0.1:2525"
    assert field(again, "accountMailPassword").text() == ""
    assert again.interval.value() == 42


def test_demo_shows_its_connection_read_only(qtbot, demo, workers) -> None:
    dialog = open_dialog(qtbot, demo.workspace, workers)
    assert field(dialog, "accountCrmUrl").text() == demo.crm_url
    for name in (
        "accountMailUrl",
        "accountCrmUrl",
        "accountCrmUser",
        "accountCrmPassword",
        "accountMailPassword",
    ):
        assert field(dialog, name).isReadOnly(), name
    assert "embedded demo" in label(dialog, "accountNote").text()
    mail, crm = run_test(qtbot, dialog)
    assert mail.startswith("Mail: connected"), mail
    assert crm.startswith("CRM: connected"), crm
    with qtbot.waitSignal(dialog.saved, timeout=20_000):
        dialog.save_button.click()  # the other tabs still save; no connection change


def test_main_window_asks_to_reconnect_after_a_connection_change(
    qtbot, profile_ws, workers
) -> None:
    from desktop.mainwindow import MainWindow

    window = MainWindow(workers)
    qtbot.addWidget(window)
    window.workspace = profile_ws  # attached without a sync: only the dialog is exercised
    window.dialogs.open_options()
    dialog = window.dialogs.opened["options"]
    qtbot.waitUntil(lambda: dialog.save_button.isEnabled(), timeout=20_000)
    field(dialog, "accountCrmPassword").setText(CRM_PASSWORD)
    with qtbot.waitSignal(window.reconnect_requested, timeout=20_000) as asked:
        dialog.save_button.click()
    assert asked.args == [NAME]
    assert "reconnects" in window.statusBar().currentMessage()
    window.workspace = None
