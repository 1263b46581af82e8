"""First-run setup (``SetupWizard``): the mail account, the CRM account, a connection test,
and the profile saved — settings to the profile file, passwords to the system keyring only
(``core.config.profiles`` validates, ``core.config.credentials`` stores). ``trackbox demo``
never shows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from desktop.errors import describe
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.crm import WhoAmI

MAIL_KINDS = (
    ("imaps", "IMAP over TLS (imaps://host:993)", "imaps://mail.example.com:993"),
    ("ews", "Microsoft Exchange (EWS)", "ews://mail.example.com/EWS/Exchange.asmx"),
    ("maildir", "A Maildir folder on this computer", "maildir:/home/me/Maildir"),
)


def _password() -> QLineEdit:
    edit = QLineEdit()
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    return edit


class MailPage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Your mailbox")
        self.setSubTitle("Where your mail is. Passwords go to the system keyring only.")
        self.kind = QComboBox()
        self.kind.setObjectName("setupMailKind")
        for value, label, _example in MAIL_KINDS:
            self.kind.addItem(label, value)
        self.url = QLineEdit()
        self.url.setObjectName("setupMailUrl")
        self.user = QLineEdit()
        self.user.setObjectName("setupMailUser")
        self.password = _password()
        self.password.setObjectName("setupMailPassword")
        self.smtp = QLineEdit()
        self.smtp.setObjectName("setupSmtpUrl")
        self.smtp.setPlaceholderText("smtps://mail.example.com:465 (IMAP only)")
        self.kind.currentIndexChanged.connect(self._kind_changed)
        form = QFormLayout(self)
        form.addRow("Kind:", self.kind)
        form.addRow("Server:", self.url)
        form.addRow("User name:", self.user)
        form.addRow("Password:", self.password)
        form.addRow("Outgoing (SMTP):", self.smtp)
        self._kind_changed()
        self.registerField("mailUrl*", self.url)

    def _kind_changed(self) -> None:
        value, _label, example = MAIL_KINDS[self.kind.currentIndex()]
        self.url.setPlaceholderText(example)
        local = value == "maildir"
        for w in (self.user, self.password, self.smtp):
            w.setEnabled(not local)


class CrmPage(QWizardPage):
    def __init__(self, workers: Workers) -> None:
        super().__init__()
        self.workers = workers
        self.setTitle("Your CRM")
        self.setSubTitle(
            "The address of your Dynamics 365 / Dataverse organisation (or a "
            "trackbox-crm server) and your CRM user."
        )
        self.url = QLineEdit()
        self.url.setObjectName("setupCrmUrl")
        self.url.setPlaceholderText("https://contoso.crm.dynamics.com")
        self.user = QLineEdit()
        self.user.setObjectName("setupCrmUser")
        self.password = _password()
        self.password.setObjectName("setupCrmPassword")
        self.test = QPushButton("Test the connection")
        self.test.setObjectName("setupTest")
        self.result = QLabel()
        self.result.setObjectName("setupTestResult")
        self.result.setWordWrap(True)
        self.test.clicked.connect(self.run_test)
        form = QFormLayout(self)
        form.addRow("CRM address:", self.url)
        form.addRow("User name:", self.user)
        form.addRow("Password:", self.password)
        form.addRow(self.test)
        form.addRow(self.result)
        self.registerField("crmUrl*", self.url)
        self.registerField("crmUser*", self.user)

    def run_test(self) -> None:
        from core.crm import BasicAuth, CrmClient

        url, user, secret = self.url.text().strip(), self.user.text().strip(), self.password.text()
        self.test.setEnabled(False)
        self.result.setText("Connecting…")

        def op() -> WhoAmI:
            with CrmClient(url, BasicAuth(user, secret), timeout=15) as crm:
                return crm.who_am_i()

        def done(who: WhoAmI) -> None:
            self.test.setEnabled(True)
            self.result.setText(f"Connected: the CRM knows you as user {who.user_id}.")

        def failed(exc: BaseException) -> None:
            self.test.setEnabled(True)
            self.result.setText(describe(exc))

        self.workers.run(op, done, failed, owner=self)


class OptionsPage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Synchronisation")
        self.name = QLineEdit("default")
        self.name.setObjectName("setupProfileName")
        self.interval = QSpinBox()
        self.interval.setObjectName("setupInterval")
        self.interval.setRange(1, 1440)
        self.interval.setValue(15)
        self.interval.setSuffix(" minutes")
        self.scope = QComboBox()
        self.scope.setObjectName("setupContactsScope")
        self.scope.addItem("Only the contacts I own", "owned")
        self.scope.addItem("All contacts I can see", "all")
        self.status = QLabel()
        self.status.setObjectName("setupStatus")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Profile name:", self.name)
        form.addRow("Synchronise every:", self.interval)
        form.addRow("Contacts:", self.scope)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)


class SetupWizard(QWizard):
    """``profile_saved(name)`` once the profile and its secrets were written."""

    profile_saved = Signal(str)
    save_failed = Signal(str)

    def __init__(self, workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SetupWizard")
        self.setWindowTitle("Set up Trackbox")
        self.resize(620, 460)
        self.workers = workers
        self.mail = MailPage()
        self.crm = CrmPage(workers)
        self.sync_page = OptionsPage()
        for page in (self.mail, self.crm, self.sync_page):
            self.addPage(page)
        self._saved = False

    def profile_data(self) -> dict[str, Any]:
        """What goes to the profile file (never a password)."""
        mail_kind = self.mail.kind.currentData()
        data: dict[str, Any] = {
            "mail_url": self.mail.url.text().strip(),
            "crm_url": self.crm.url.text().strip(),
            "crm_user": self.crm.user.text().strip(),
            "sync_interval_minutes": self.sync_page.interval.value(),
            "contacts_scope": self.sync_page.scope.currentData(),
        }
        if mail_kind != "maildir":
            if self.mail.user.text().strip():
                data["mail_user"] = self.mail.user.text().strip()
            if self.mail.smtp.text().strip():
                data["smtp_url"] = self.mail.smtp.text().strip()
        return data

    def accept(self) -> None:
        """Validate and save on a worker; the wizard closes only when that succeeded."""
        if self._saved:
            super().accept()
            return
        from core.config.credentials import SecretKind, set_secret
        from core.config.profiles import Profiles, validate

        name = self.sync_page.name.text().strip() or "default"
        data = self.profile_data()
        mail_kind = self.mail.kind.currentData()
        crm_secret = self.crm.password.text()
        mail_secret = self.mail.password.text()
        mail_user = data.get("mail_user") or data["crm_user"]
        self.sync_page.status.setText("Saving…")
        self.button(QWizard.WizardButton.FinishButton).setEnabled(False)

        def op() -> str:
            profiles = Profiles()
            validate(data, profiles.config_path(name))
            if crm_secret:
                set_secret(name, SecretKind.CRM, data["crm_user"], crm_secret)
            if mail_kind != "maildir" and mail_secret:
                set_secret(name, SecretKind.MAIL, mail_user, mail_secret)
            profiles.save(name, data)
            if len(profiles.names()) == 1:
                profiles.set_default(name)
            return name

        def done(saved: str) -> None:
            self._saved = True
            self.profile_saved.emit(saved)
            super(SetupWizard, self).accept()

        def failed(exc: BaseException) -> None:
            self.button(QWizard.WizardButton.FinishButton).setEnabled(True)
            text = f"The profile was not saved: {exc}"
            self.sync_page.status.setText(text)
            self.save_failed.emit(text)

        self.workers.run(op, done, failed, serial=True, owner=self)
