"""The setup wizard tests the mail server before accepting the mail page (issue 17): the
IMAP log-in against the real Dovecot and SMTP EHLO/AUTH against real aiosmtpd servers, on a
worker with "Testing…" and Cancel; a refusal shows the server's own words and a plain
explanation and offers "Save anyway"; the first page says where secrets are kept."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop.wizard import SetupWizard
from desktop.wizard_mail import TESTING, keyring_words
from desktop.workers import Workers
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer, free_port

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def wizard(qtbot: Any, home: Path) -> Iterator[SetupWizard]:
    workers = Workers()
    wizard = SetupWizard(workers)
    qtbot.addWidget(wizard)
    wizard.show()
    yield wizard
    workers.wait(60_000)


@pytest.fixture
def smtp_auth() -> Iterator[str]:
    """An aiosmtpd server that requires AUTH and accepts only PASSWORD (no TLS: loopback)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = bytes(data.password) == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd's own 535

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    port = free_port()
    controller = Controller(
        Sink(),
        hostname="127.0.0.1",
        port=port,
        authenticator=check,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield f"smtp+insecure://127.0.0.1:{port}"
    finally:
        controller.stop()


def fill(wizard: SetupWizard, url: str, user: str, password: str, smtp: str) -> None:
    page = wizard.mail
    page.kind.setCurrentIndex(page.kind.findData("imaps"))
    page.url.setText(url)
    page.user.setText(user)
    page.password.setText(password)
    page.smtp.setText(smtp)


def test_right_password_is_accepted(
    qtbot: Any, wizard: SetupWizard, dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    fill(wizard, dovecot.url(), dovecot.new_user("wiz"), PASSWORD, smtp_server.url())
    wizard.next()
    page = wizard.mail
    assert page.tester.result.text() == TESTING and page.tester.cancel.isVisible()
    assert not page.isComplete()  # Next waits for the test
    qtbot.waitUntil(lambda: wizard.currentPage() is wizard.crm, timeout=60_000)
    text = page.tester.result.text()
    assert "Incoming mail (IMAP): Signed in" in text
    assert "Outgoing mail (SMTP): Connected" in text
    assert not page.tester.save_anyway.isVisible()


def test_wrong_password_shows_the_servers_words_then_save_anyway(
    qtbot: Any, wizard: SetupWizard, dovecot: DovecotServer, smtp_auth: str
) -> None:
    fill(wizard, dovecot.url(), dovecot.new_user("wiz"), "wrong", smtp_auth)
    page = wizard.mail
    wizard.next()
    qtbot.waitUntil(page.tester.save_anyway.isVisible, timeout=60_000)
    assert wizard.currentPage() is page
    text = page.tester.result.text()
    assert "AUTHENTICATIONFAILED" in text or "Authentication failed" in text  # Dovecot's NO
    assert "535" in text  # the SMTP server's reply code, with its text
    assert text.count("The server refused the sign-in") == 2
    page.tester.save_anyway.click()
    assert wizard.currentPage() is wizard.crm


def test_password_corrected_after_a_refusal_is_accepted(
    qtbot: Any, wizard: SetupWizard, dovecot: DovecotServer, smtp_auth: str
) -> None:
    fill(wizard, dovecot.url(), dovecot.new_user("wiz"), "wrong", smtp_auth)
    page = wizard.mail
    wizard.next()
    qtbot.waitUntil(page.tester.save_anyway.isVisible, timeout=60_000)
    page.password.setText(PASSWORD)
    assert not page.tester.save_anyway.isVisible()
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentPage() is wizard.crm, timeout=60_000)
    assert "Outgoing mail (SMTP): Signed in" in page.tester.result.text()


def test_unknown_host_and_refused_port_are_explained(qtbot: Any, wizard: SetupWizard) -> None:
    closed = free_port()
    fill(wizard, "imaps://no-such-host.invalid:993", "me", "pw", f"smtps://127.0.0.1:{closed}")
    page = wizard.mail
    wizard.next()
    qtbot.waitUntil(page.tester.save_anyway.isVisible, timeout=60_000)
    text = page.tester.result.text()
    assert "could not be found (DNS)" in text
    assert "refused the connection" in text


def test_cancel_stops_waiting_for_a_silent_server(qtbot: Any, wizard: SetupWizard) -> None:
    with socket.socket() as silent:  # accepts connections, never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        fill(wizard, f"imap+insecure://127.0.0.1:{port}", "me", "pw", "")
        page = wizard.mail
        wizard.next()
        assert page.tester.cancel.isVisible() and not page.isComplete()
        page.tester.cancel.click()
        assert page.isComplete() and not page.tester.cancel.isVisible()
        assert "cancelled" in page.tester.result.text()
        assert wizard.currentPage() is page


def test_first_page_says_where_secrets_are_kept(qtbot: Any, wizard: SetupWizard) -> None:
    note = wizard.mail.keyring
    qtbot.waitUntil(lambda: "keyring (" in note.text(), timeout=20_000)
    assert "MemoryKeyring" in note.text() or "memory" in note.text().lower()
    words = keyring_words("unavailable: no D-Bus session")
    assert words.startswith("No system keyring is available") and "no D-Bus session" in words
    assert "TRACKBOX_MAIL_PASSWORD" in words


def test_exchange_sign_in_is_tested_too(qtbot: Any, wizard: SetupWizard, ews_server: Any) -> None:
    """EWS (the fake Exchange, Basic auth): a refused sign-in keeps the page; the right
    password is accepted."""
    page = wizard.mail
    page.kind.setCurrentIndex(page.kind.findData("ews"))
    page.url.setText(ews_server.url() + "?auth=basic")
    page.user.setText(ews_server.new_user())
    page.password.setText("wrong")
    wizard.next()
    qtbot.waitUntil(page.tester.save_anyway.isVisible, timeout=60_000)
    assert "Exchange (EWS): The server refused the sign-in" in page.tester.result.text()
    page.password.setText(ews_server.password)
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentPage() is wizard.crm, timeout=60_000)
    assert "Exchange (EWS): Signed in" in page.tester.result.text()


def test_a_maildir_path_is_looked_at_not_created(
    qtbot: Any, wizard: SetupWizard, tmp_path: Path
) -> None:
    page = wizard.mail
    page.kind.setCurrentIndex(page.kind.findData("maildir"))
    missing = tmp_path / "typo" / "Maildir"
    page.url.setText(f"maildir:{missing}")
    wizard.next()
    qtbot.waitUntil(page.tester.save_anyway.isVisible, timeout=60_000)
    assert f"There is no folder at {missing}" in page.tester.result.text()
    assert not missing.exists()
    page.url.setText(f"maildir:{tmp_path}")
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentPage() is wizard.crm, timeout=60_000)
