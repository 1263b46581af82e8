"""First-run setup (``SetupWizard``): the mail account, the CRM account, a connection test,
and the profile saved — settings to the profile file, passwords to the system keyring only
(``core.config.profiles`` validates, ``core.config.credentials`` stores). ``trackbox demo``
never shows it.

The first mail kind, "Microsoft 365 (Outlook mail + Dynamics 365)", is one sign-in for both
(``desktop.wizard_m365``): the mail page asks for the address only, the CRM page signs in with
it — consenting to Microsoft Graph's mail scopes too — and the mailbox is tried before saving.

The CRM page offers the sign-ins ``trackbox account add --sign-in`` does: a Microsoft account
or AD FS (the user types an e-mail address or the org URL; the sign-in runs on a worker, the
tokens go to the profile's keyring cache), Windows sign-in or a password (both tested here).
The steps are ``core.workspace.signin``'s; nothing here blocks the GUI thread.

The pages live beside it: ``desktop.wizard_mail`` (the mailbox, where secrets are kept, the
server test before the page is accepted), ``desktop.wizard_signin_form`` (the CRM page's values
for a worker), ``desktop.wizard_options`` (the last page). The CRM page and its sign-in panel
stay here with ``_signer``, which tests replace.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from core.workspace.signin import Connected, Environments, Signer
from desktop.errors import SIGN_IN_KINDS, describe
from desktop.signin import Interaction, device_code_text
from desktop.wizard_m365 import CRM_SUBTITLE, M365_KIND, check_mailbox, environment_name, summary
from desktop.wizard_mail import MailPage, keyring_words, password_edit
from desktop.wizard_options import OptionsPage
from desktop.wizard_signin_form import CRM_PAGE_SUBTITLE, SignInForm
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.config.profiles import ProfileConfig
    from core.crm import WhoAmI
    from core.crm.signin import DeviceFlow, MicrosoftSignIn
    from core.crm.token_cache import PersistentTokenCache

#: The sign-in kinds offered, in the order shown (``crm_auth``).
KIND_ORDER = ("microsoft", "adfs", "windows", "password")


class CrmPage(QWizardPage):
    """The CRM: its address (or, for a Microsoft account, the user's e-mail address) and how
    to sign in. Password and Windows sign-in test the connection; Microsoft and AD FS sign in
    on a worker (the system browser, or a device code shown here), list the environments an
    address can reach, and keep the tokens until the profile is saved."""

    connected_changed = Signal()

    def __init__(self, workers: Workers) -> None:
        super().__init__()
        self.workers = workers
        self.mail_url = ""  # a Microsoft 365 mailbox: one sign-in for it and the CRM
        self.extra_mailboxes: tuple[str, ...] = ()  # its shared mailboxes
        self.setTitle("Your CRM")
        self.setSubTitle(CRM_PAGE_SUBTITLE)
        self.kind = QComboBox()
        self.kind.setObjectName("setupCrmKind")
        self.kind.view().setAccessibleName("CRM sign-in kinds")
        for value in KIND_ORDER:
            self.kind.addItem(SIGN_IN_KINDS[value], value)
        self.url = QLineEdit()
        self.url.setObjectName("setupCrmUrl")
        self.user = QLineEdit()
        self.user.setObjectName("setupCrmUser")
        self.password = password_edit()
        self.password.setObjectName("setupCrmPassword")
        self.test = QPushButton("Test the connection")
        self.test.setObjectName("setupTest")
        self.result = QLabel()
        self.result.setObjectName("setupTestResult")
        self.result.setWordWrap(True)
        self.test.clicked.connect(self.run_test)
        self.oauth = OAuthPanel(self, workers)
        self.advanced = self._advanced()
        self.form = QFormLayout(self)
        self.form.addRow("Sign in with:", self.kind)
        self.form.addRow("Address:", self.url)
        self.form.addRow("User name:", self.user)
        self.form.addRow("Password:", self.password)
        self.form.addRow(self.test)
        self.form.addRow(self.oauth)
        self.form.addRow(self.result)
        self.form.addRow(self.advanced)
        self.registerField("crmUrl*", self.url)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.url.textChanged.connect(self.oauth.forget)
        self.kind.setCurrentIndex(KIND_ORDER.index("microsoft"))  # Dynamics 365 online
        self._kind_changed()

    def _advanced(self) -> QGroupBox:
        box = QGroupBox("Advanced sign-in settings (leave empty for Dynamics 365 online)")
        box.setObjectName("setupAdvanced")
        form = QFormLayout(box)
        self.authority = QLineEdit()
        self.authority.setObjectName("setupAuthority")
        self.authority.setPlaceholderText("from the organisation, or login.microsoftonline.com")
        self.discovery_url = QLineEdit()
        self.discovery_url.setObjectName("setupDiscoveryUrl")
        self.discovery_url.setPlaceholderText("https://globaldisco.crm.dynamics.com")
        self.client_id = QLineEdit()
        self.client_id.setObjectName("setupClientId")
        self.client_id.setPlaceholderText("Microsoft's sample public client")
        self.ca_file = QLineEdit()
        self.ca_file.setObjectName("setupCaFile")
        self.ca_file.setPlaceholderText("a PEM file of your CA (on-premises, test servers)")
        form.addRow("Authority:", self.authority)
        form.addRow("Discovery service:", self.discovery_url)
        form.addRow("Application (client) id:", self.client_id)
        form.addRow("CA file:", self.ca_file)
        return box

    def set_microsoft365(
        self, mail_url: str, address: str, extra_mailboxes: tuple[str, ...] = ()
    ) -> None:
        """Microsoft 365 chosen on the mail page (``mail_url`` its ``graph:`` URL; empty:
        not chosen): the Microsoft sign-in only, for ``address``, consenting to the mail
        (and to shared mail when there are ``extra_mailboxes``)."""
        if mail_url != self.mail_url or bool(extra_mailboxes) != bool(self.extra_mailboxes):
            self.oauth.forget()  # other scopes: an earlier sign-in does not cover them
        self.mail_url = mail_url
        self.extra_mailboxes = extra_mailboxes
        m365 = bool(mail_url)
        self.setSubTitle(CRM_SUBTITLE.format(address=address) if m365 else CRM_PAGE_SUBTITLE)
        self.form.setRowVisible(self.kind, not m365)
        self.form.setRowVisible(self.url, not m365)
        if m365:
            self.kind.setCurrentIndex(KIND_ORDER.index("microsoft"))
            self.url.setText(address)

    @property
    def crm_auth(self) -> str:
        return str(self.kind.currentData())

    @property
    def uses_oauth(self) -> bool:
        return self.crm_auth in ("microsoft", "adfs")

    def _kind_changed(self) -> None:
        oauth = self.uses_oauth
        self.url.setPlaceholderText(
            "you@contoso.com or https://contoso.crm.dynamics.com"
            if oauth
            else "https://contoso.crm.dynamics.com"
        )
        for w in (self.user, self.password, self.test):
            w.setVisible(not oauth)
            label = self.form.labelForField(w)
            if label is not None:
                label.setVisible(not oauth)
        self.oauth.setVisible(oauth)
        self.oauth.forget()
        self.result.setText("")
        self.completeChanged.emit()

    def sign_in_form(self) -> SignInForm:
        return SignInForm(
            self.crm_auth,
            self.url.text().strip(),
            self.user.text().strip(),
            self.client_id.text().strip(),
            self.authority.text().strip(),
            self.discovery_url.text().strip(),
            self.ca_file.text().strip(),
            self.mail_url,
            self.extra_mailboxes,
        )

    def isComplete(self) -> bool:
        if self.uses_oauth:
            return self.oauth.connected is not None
        return bool(self.url.text().strip() and self.user.text().strip())

    def run_test(self) -> None:
        form = self.sign_in_form()
        secret = self.password.text()
        self.test.setEnabled(False)
        self.result.setText("Connecting…")

        def op() -> WhoAmI:
            from core.cli.sign_in import crm_auth_for, crm_client_for

            config = replace(form.config(), crm_url=form.text)
            with crm_client_for(config, crm_auth_for(config, "setup", secret), timeout=15) as crm:
                return crm.who_am_i()

        def done(who: WhoAmI) -> None:
            self.test.setEnabled(True)
            self.result.setText(f"Connected: the CRM knows you as user {who.user_id}.")

        def failed(exc: BaseException) -> None:
            self.test.setEnabled(True)
            self.result.setText(describe(exc))

        self.workers.run(op, done, failed, owner=self)


class OAuthPanel(QWidget):
    """Microsoft / AD FS sign-in on the CRM page: "Sign in" (the browser) or "Use a code
    instead" (a device code shown here, cancellable), then, from an e-mail address, the
    environment to use. ``connected`` holds the finished sign-in; ``cache`` its tokens until
    the profile is saved."""

    def __init__(self, page: CrmPage, workers: Workers) -> None:
        super().__init__(page)
        self.page = page
        self.workers = workers
        self.connected: Connected | None = None
        self.found: Environments | None = None
        self.cache = _memory_cache()
        self.interaction = Interaction(self)
        self.interaction.code_shown.connect(self._show_code)
        self.interaction.no_browser.connect(self._show_no_browser)
        self.sign_in = QPushButton("Sign in")
        self.sign_in.setObjectName("setupSignIn")
        self.sign_in.clicked.connect(lambda: self.start())
        self.use_code = QPushButton("Use a code instead")
        self.use_code.setObjectName("setupSignInCode")
        self.use_code.clicked.connect(lambda: self.start(device_code=True))
        self.cancel = QPushButton("Cancel")
        self.cancel.setObjectName("setupSignInCancel")
        self.cancel.clicked.connect(self.interaction.cancel)
        self.cancel.setVisible(False)
        self.code = QLabel()
        self.code.setObjectName("setupDeviceCode")
        self.code.setAccessibleName("Sign-in code")
        self.code.setWordWrap(True)
        self.code.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.code.setVisible(False)
        self.environment = QComboBox()
        self.environment.setObjectName("setupEnvironment")
        self.environment.setAccessibleName("Dynamics 365 environment")
        self.environment.view().setAccessibleName("Environments")
        self.connect_button = QPushButton("Use this environment")
        self.connect_button.setObjectName("setupConnect")
        self.connect_button.clicked.connect(self.connect_environment)
        self.pick = QWidget()
        row = QHBoxLayout(self.pick)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Environment:"))
        row.addWidget(self.environment, 1)
        row.addWidget(self.connect_button)
        self.pick.setVisible(False)
        buttons = QHBoxLayout()
        for b in (self.sign_in, self.use_code, self.cancel):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.code)
        layout.addWidget(self.pick)

    def forget(self) -> None:
        """What was typed changed: an earlier sign-in no longer counts."""
        if self.connected is None and self.found is None:
            return
        self.connected = None
        self.found = None
        self.cache = _memory_cache()
        self.pick.setVisible(False)
        self.environment.clear()
        self.page.completeChanged.emit()

    def start(self, *, device_code: bool = False) -> None:
        """Sign in for what was typed: an org URL (its challenge names the authority) or an
        e-mail address (the discovery service lists the environments)."""
        from core.crm.discovery import OrgAddress, parse_sign_in_input

        form = self.page.sign_in_form()
        try:
            target = parse_sign_in_input(form.text)
        except ValueError as exc:
            self._say(str(exc).capitalize() + ".")
            return
        self.forget()
        cache = self.cache = _memory_cache()
        hint = target.email if not isinstance(target, OrgAddress) else (form.user or None)
        interact = self.interaction.interact(device_code=device_code, login_hint=hint)

        def op() -> Connected | Environments:
            from core.workspace.signin import authority_of, connect_org, find_environments

            config = form.config()
            signer = _signer(config, cache, hint)
            if isinstance(target, OrgAddress):
                authority = form.authority or authority_of(target.url, form.kind, config.crm_verify)
                return connect_org(signer, target.url, authority, interact, config.crm_verify)
            return find_environments(
                signer,
                config.crm_discovery_url,
                config.crm_authority,
                interact,
                config.crm_verify,
            )

        self._set_busy(
            True, "Getting a sign-in code…" if device_code else "Sign in in the browser…"
        )
        self.workers.run(op, self._signed_in, self._failed, owner=self)

    def connect_environment(self) -> None:
        """Sign in to the chosen environment (silently: the account is in the cache)."""
        found = self.found
        env = self.environment.currentData()
        if found is None or env is None:
            return
        form = self.page.sign_in_form()
        cache = self.cache
        interact = self.interaction.interact(device_code=False, login_hint=found.username)

        def op() -> Connected:
            from core.workspace.signin import connect_org

            config = form.config()
            signer = _signer(config, cache, found.username)
            return connect_org(signer, env.url, found.authority, interact, config.crm_verify)

        self._set_busy(True, f"Connecting to {env.friendly_name or env.url}…")
        self.workers.run(op, self._signed_in, self._failed, owner=self)

    def _signed_in(self, result: Connected | Environments) -> None:
        self._set_busy(False)
        self.code.setVisible(False)
        if isinstance(result, Environments):
            self._show_environments(result)
            return
        self.connected = result
        self._say(
            f"Signed in to {result.org_url} as {result.username}; the CRM knows you as "
            f"user {result.user_id}."
        )
        self.page.completeChanged.emit()

    def _show_environments(self, found: Environments) -> None:
        usable = [e for e in found.found if e.enabled]
        if not usable:
            self._say(f"{found.username or 'This account'} can reach no Dynamics 365 environment.")
            return
        self.found = found
        self.environment.clear()
        for env in usable:
            self.environment.addItem(f"{env.friendly_name} — {env.unique_name} ({env.url})", env)
        self.pick.setVisible(True)
        if len(usable) == 1:
            self.connect_environment()
        else:
            self._say(f"Signed in as {found.username}. Choose the environment to use.")

    def _failed(self, exc: BaseException) -> None:
        self._set_busy(False)
        self.code.setVisible(False)
        self._say(describe(exc))

    def _set_busy(self, busy: bool, text: str = "") -> None:
        for b in (self.sign_in, self.use_code, self.connect_button):
            b.setEnabled(not busy)
        self.cancel.setVisible(busy)
        if text:
            self._say(text)

    def _show_code(self, flow: DeviceFlow) -> None:
        self.code.setText(device_code_text(flow))
        self.code.setVisible(True)

    def _show_no_browser(self, url: str) -> None:
        self._say(
            "No browser could be opened. Open this address in a browser on this computer, "
            f"or use a code instead: {url}"
        )

    def _say(self, text: str) -> None:
        self.page.result.setText(text)


def _memory_cache() -> PersistentTokenCache:
    """Tokens kept in memory until the profile (and its keyring entry) exists."""
    from core.crm.token_cache import MemoryCacheStore, PersistentTokenCache

    return PersistentTokenCache(MemoryCacheStore())


def _signer(config: ProfileConfig, cache: PersistentTokenCache, hint: str | None) -> Signer:
    """The CLI's MSAL factory for the settings typed, with the wizard's memory cache."""
    from core.cli.sign_in import microsoft_sign_in

    def make(resource: str, authority: str) -> MicrosoftSignIn:
        return microsoft_sign_in(
            config,
            "setup",
            org_url=resource,
            authority=authority,
            username=hint or "",
            cache=cache,
        )

    return make


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
        self.mail = MailPage(workers)
        self.crm = CrmPage(workers)
        self.sync_page = OptionsPage()
        for page in (self.mail, self.crm, self.sync_page):
            self.addPage(page)
        self.mail.kind.currentIndexChanged.connect(self._mail_changed)
        self.mail.m365.changed.connect(self._mail_changed)
        self._mail_changed()
        self._saved = False
        self._show_keyring()

    def _show_keyring(self) -> None:
        """Say on the first page where secrets will be kept (finding the keyring may ask
        D-Bus: on a worker)."""
        from core.config.credentials import describe_backend

        def shown(backend: str) -> None:
            self.mail.keyring.setText(keyring_words(backend))

        def failed(exc: BaseException) -> None:
            shown(f"unavailable: {exc}")

        self.workers.run(describe_backend, shown, failed, owner=self)

    def _mail_changed(self) -> None:
        m365 = self.mail.microsoft365
        self.crm.set_microsoft365(
            self.mail.mail_url() if m365 else "",
            self.mail.m365.email(),
            self.mail.m365.extra_mailboxes() if m365 else (),
        )

    def initializePage(self, id: int) -> None:
        super().initializePage(id)
        if self.page(id) is self.sync_page:
            self.sync_page.summary.setText(self.summary_text())

    def summary_text(self) -> str:
        """What the profile will read and where it tracks (the last page says it)."""
        connected = self.crm.oauth.connected
        crm = self.crm.sign_in_form().text
        if self.crm.uses_oauth:
            crm = environment_name(connected, self.crm.oauth.found) if connected else ""
        m365 = self.mail.microsoft365
        extras = self.mail.m365.extra_mailboxes() if m365 else ()
        return summary(self.mail.mail_url(), crm, microsoft365=m365, extra_mailboxes=extras)

    def profile_data(self) -> dict[str, Any]:
        """What goes to the profile file (never a password nor a token)."""
        mail_kind = self.mail.kind.currentData()
        form = self.crm.sign_in_form()
        data: dict[str, Any] = {
            "mail_url": self.mail.mail_url(),
            "crm_url": form.text,
            "crm_user": form.user,
            "sync_interval_minutes": self.sync_page.interval.value(),
            "contacts_scope": self.sync_page.scope.currentData(),
        }
        if form.kind != "password":
            data.update(form.sign_in_keys())
        connected = self.crm.oauth.connected
        if self.crm.uses_oauth and connected is not None:
            data["crm_url"] = connected.org_url
            typed = form.text if "@" in form.text else ""
            data["crm_user"] = connected.username or form.user or typed
            data["crm_authority"] = connected.authority
        if mail_kind == M365_KIND and self.mail.m365.extra_mailboxes():
            data["extra_mailboxes"] = list(self.mail.m365.extra_mailboxes())
        if mail_kind not in ("maildir", M365_KIND):
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
        from core.config.profiles import Profiles, needs_mail_password, validate

        name = self.sync_page.name.text().strip() or "default"
        data = self.profile_data()
        oauth = self.crm.uses_oauth
        if oauth and self.crm.oauth.connected is None:
            self._save_failed("Sign in to the CRM first (Your CRM page).")
            return
        crm_secret = "" if oauth else self.crm.password.text()
        mail_secret = self.mail.password.text() if needs_mail_password(data["mail_url"]) else ""
        mail_user = data.get("mail_user") or data["crm_user"]
        cache = self.crm.oauth.cache
        self.sync_page.status.setText("Saving…")
        self.button(QWizard.WizardButton.FinishButton).setEnabled(False)

        def op() -> str:
            from core.cli.sign_in import token_cache
            from core.workspace.signin import keep_cache

            profiles = Profiles()
            config = validate(data, profiles.config_path(name))
            if config.uses_graph_mail:  # the same sign-in reads the mailbox: tried first
                check_mailbox(config, name, cache)
            if oauth:
                keep_cache(cache, token_cache(name))  # the keyring, as the CLI keeps it
            if crm_secret:
                set_secret(name, SecretKind.CRM, data["crm_user"], crm_secret)
            if mail_secret:
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
            self._save_failed(f"The profile was not saved: {exc}")

        self.workers.run(op, done, failed, serial=True, owner=self)

    def _save_failed(self, text: str) -> None:
        self.sync_page.status.setText(text)
        self.save_failed.emit(text)
