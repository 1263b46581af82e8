"""The setup wizard's first page, "Your mailbox": the kind of mail server and its settings,
where passwords are kept (the system keyring, named; or why there is none and what that
means), and the test of the server before the page is accepted.

Next runs the test (``core.workspace.mail_check``: the IMAP log-in, SMTP EHLO/AUTH, EWS's
log-in) on a worker with "Testing…" and Cancel shown; the page is accepted when every server
answered, else it shows each server's own words with a plain explanation and offers
"Save anyway" (the settings kept as typed, the test's failure accepted). Microsoft 365 is not
tested here: its sign-in is on the next page, and the mailbox is tried before saving.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
    QWizardPage,
)

from core.workspace.mail_check import MailSettings, ServerTest
from desktop.wizard_m365 import M365_KIND, M365_LABEL, MAIL_SUBTITLE, M365Panel
from desktop.workers import Workers

MAIL_KINDS = (
    (M365_KIND, M365_LABEL, ""),
    ("imaps", "IMAP over TLS (imaps://host:993)", "imaps://mail.example.com:993"),
    ("ews", "Microsoft Exchange (EWS)", "ews://mail.example.com/EWS/Exchange.asmx"),
    ("maildir", "A Maildir folder on this computer", "maildir:/home/me/Maildir"),
)
TESTING = "Testing the mail server…"


def password_edit() -> QLineEdit:
    edit = QLineEdit()
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    return edit


def keyring_words(backend: str) -> str:
    """Where the passwords typed here will be kept, in plain words (``backend``:
    ``core.config.credentials.describe_backend()``)."""
    if backend.startswith("unavailable"):
        reason = backend.partition(":")[2].strip()
        return (
            "No system keyring is available on this computer"
            + (f" ({reason})" if reason else "")
            + ". Trackbox never writes passwords to a file, so it cannot keep them: saving "
            "a profile with a password will fail. Install and unlock a keyring (GNOME "
            "Keyring or KWallet on Linux; Keychain and Credential Manager are built into "
            "macOS and Windows), or set TRACKBOX_MAIL_PASSWORD and TRACKBOX_CRM_PASSWORD "
            "before starting Trackbox. A Microsoft 365 sign-in needs the keyring too."
        )
    return (
        f"Passwords and sign-in tokens are kept in the system keyring ({backend}), never in a file."
    )


class MailTestPanel(QWidget):
    """The test's state under the form: "Testing…" with Cancel, then the result; on a
    failure "Save anyway"."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.result = QLabel()
        self.result.setObjectName("setupMailTestResult")
        self.result.setAccessibleName("Mail server test")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cancel = QPushButton("Cancel the test")
        self.cancel.setObjectName("setupMailTestCancel")
        self.save_anyway = QPushButton("Save anyway")
        self.save_anyway.setObjectName("setupMailSaveAnyway")
        self.save_anyway.setToolTip("Keep these settings although the test failed")
        row = QHBoxLayout()
        row.addWidget(self.cancel)
        row.addWidget(self.save_anyway)
        row.addStretch(1)
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addRow(self.result)
        layout.addRow(row)
        self.show_state("")

    def show_state(self, text: str, *, testing: bool = False, failed: bool = False) -> None:
        self.result.setText(text)
        self.cancel.setVisible(testing)
        self.save_anyway.setVisible(failed)


class MailPage(QWizardPage):
    def __init__(self, workers: Workers) -> None:
        super().__init__()
        self.workers = workers
        self.accepted: MailSettings | None = None  # the settings tested (or kept anyway)
        self._failed: MailSettings | None = None
        self._run = 0  # the test running; a cancelled one's answer is ignored
        self._busy = False
        self.setTitle("Your mailbox")
        self.keyring = QLabel("Checking where passwords can be kept…")
        self.keyring.setObjectName("setupKeyringNote")
        self.keyring.setWordWrap(True)
        self.kind = QComboBox()
        self.kind.setObjectName("setupMailKind")
        self.kind.view().setAccessibleName("Mail server kinds")
        for value, label, _example in MAIL_KINDS:
            self.kind.addItem(label, value)
        self.url = QLineEdit()
        self.url.setObjectName("setupMailUrl")
        self.user = QLineEdit()
        self.user.setObjectName("setupMailUser")
        self.password = password_edit()
        self.password.setObjectName("setupMailPassword")
        self.smtp = QLineEdit()
        self.smtp.setObjectName("setupSmtpUrl")
        self.smtp.setPlaceholderText("smtps://mail.example.com:465 (IMAP only)")
        self.m365 = M365Panel(self)
        self.tester = MailTestPanel(self)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.form = QFormLayout(self)
        self.form.addRow(self.keyring)
        self.form.addRow("Kind:", self.kind)
        for label, field in self.m365.rows():
            self.form.addRow(label, field)
        self.form.addRow("Server:", self.url)
        self.form.addRow("User name:", self.user)
        self.form.addRow("Password:", self.password)
        self.form.addRow("Outgoing (SMTP):", self.smtp)
        self.form.addRow(self.tester)
        self._kind_changed()
        self.registerField("mailUrl", self.url)
        self.url.textChanged.connect(self.completeChanged)
        self.m365.changed.connect(self.completeChanged)
        for edit in (self.url, self.user, self.password, self.smtp):
            edit.textChanged.connect(self._edited)
        self.tester.cancel.clicked.connect(self.cancel_test)
        self.tester.save_anyway.clicked.connect(self._save_anyway)

    @property
    def microsoft365(self) -> bool:
        return bool(self.kind.currentData() == M365_KIND)

    def mail_url(self) -> str:
        """The profile's ``mail_url``: ``graph:…`` for Microsoft 365, else what was typed."""
        return self.m365.mail_url() if self.microsoft365 else self.url.text().strip()

    def settings(self) -> MailSettings:
        """What is tested, copied for the worker."""
        if self.kind.currentData() == "maildir":
            return MailSettings(self.mail_url())
        return MailSettings(
            self.mail_url(), self.user.text().strip(), self.password.text(), self.smtp.text()
        )

    def isComplete(self) -> bool:
        if self._busy:
            return False
        return self.m365.is_complete() if self.microsoft365 else bool(self.url.text().strip())

    def validatePage(self) -> bool:
        """Accepted once the servers answered (or "Save anyway"); else the test starts and
        the page stays until it ends."""
        if self.microsoft365:
            return True  # signed in on the next page; the mailbox is tried before saving
        settings = self.settings()
        if settings == self.accepted:
            return True
        if not self._busy:
            self.start_test(settings)
        return False

    def start_test(self, settings: MailSettings) -> None:
        from core.workspace.mail_check import try_mail_servers

        self._run += 1
        run = self._run
        self._set_busy(True)
        self.tester.show_state(TESTING, testing=True)

        def done(results: list[ServerTest]) -> None:
            if run == self._run:
                self._tested(settings, results)

        def failed(exc: BaseException) -> None:
            if run == self._run:
                self._tested(settings, [ServerTest("Mail settings", False, str(exc))])

        self.workers.run(lambda: try_mail_servers(settings), done, failed, owner=self)

    def cancel_test(self) -> None:
        """Stop waiting (the worker ends on its own, bounded by the test's timeouts)."""
        self._run += 1
        self._set_busy(False)
        self.tester.show_state("Test cancelled. Press Next to test again.")

    def _tested(self, settings: MailSettings, results: list[ServerTest]) -> None:
        self._set_busy(False)
        text = "\n\n".join(r.text() for r in results)
        if all(r.ok for r in results):
            self.accepted = settings
            self.tester.show_state(text)
            wizard = self.wizard()
            if wizard is not None and wizard.currentPage() is self:
                wizard.next()
            return
        self._failed = settings
        self.tester.show_state(
            text + "\n\nCorrect the settings and press Next to test again, or save them anyway.",
            failed=True,
        )

    def _save_anyway(self) -> None:
        self.accepted = self._failed
        self.tester.show_state("Settings kept without a successful test.")
        wizard = self.wizard()
        if wizard is not None and self.validatePage():
            wizard.next()

    def _edited(self) -> None:
        if not self._busy and self.tester.save_anyway.isVisible():
            self.tester.show_state("")

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for w in (self.kind, self.url, self.user, self.password, self.smtp):
            w.setEnabled(not busy)
        if not busy:
            self._kind_changed()  # enables what the kind uses
        self.completeChanged.emit()

    def _kind_changed(self) -> None:
        value, _label, example = MAIL_KINDS[self.kind.currentIndex()]
        self.url.setPlaceholderText(example)
        m365 = value == M365_KIND
        self.setSubTitle(
            MAIL_SUBTITLE
            if m365
            else "Where your mail is. Passwords go to the system keyring only."
        )
        for _label, field in self.m365.rows():
            self.form.setRowVisible(field, m365)
        for w in (self.url, self.user, self.password, self.smtp):
            self.form.setRowVisible(w, not m365)
            w.setEnabled(value != "maildir" or w is self.url)
        self.completeChanged.emit()


__all__ = ["MAIL_KINDS", "MailPage", "keyring_words", "password_edit"]
