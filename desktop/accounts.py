"""Options › Accounts (``AccountsTab``): the mail and CRM connection of the open profile.

The form edits the profile's connection keys (``core.config.profiles.CONNECTION_KEYS``); every rule
about them — which schemes, which are test-only, which user a secret is stored under, what an
empty password means — is ``core.config.profiles``'. Here: show the values, show each problem
next to its field, run the connection test on a worker against what the form says (not what is
saved), and hand the save to ``core.config.profiles.save_connection`` (passwords to the keyring
only).

The demo has no profile: the tab shows its built-in connection read-only.

A Microsoft / AD FS profile has no CRM password: the tab shows its sign-in instead — the kind,
the account and when its access token expires (never the token) — with "Sign in…" and "Sign
out", run on a worker in the cache the open workspace renews from (``core.workspace.signin``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.config.profiles import (
    CONNECTION_KEYS,
    DAV_KEYS,
    Profile,
    account_name,
    connection_problems,
    graph_options,
    insecure_urls,
    is_graph,
    needs_mail_password,
)
from desktop.errors import describe, kind_of, server_words
from desktop.signin import Interaction, device_code_text, sign_in_of
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.crm import WhoAmI
    from core.crm.signin import DeviceFlow
    from core.workspace.facade import Workspace
    from core.workspace.signin import SignInStatus

T = TypeVar("T")
#: A connection test's outcome per side: the answer, or the exception it raised. The mail
#: side answers the number of folders in the mailbox (None: a local folder, nothing to test).
MailOutcome: TypeAlias = "int | None | BaseException"
CrmOutcome: TypeAlias = "WhoAmI | BaseException"
Probe: TypeAlias = "Callable[[], tuple[MailOutcome, CrmOutcome]]"

FIELDS = {  # key -> (label, objectName, placeholder)
    "mail_url": (
        "Mail server:",
        "accountMailUrl",
        "imaps://mail.example.com:993, ews://host/EWS/Exchange.asmx, maildir:/path",
    ),
    "smtp_url": ("Outgoing (SMTP):", "accountSmtpUrl", "smtps://mail.example.com:465 (IMAP only)"),
    "mail_user": ("Mail user:", "accountMailUser", "empty: the CRM user"),
    "crm_url": ("CRM address:", "accountCrmUrl", "https://contoso.crm.dynamics.com"),
    "crm_user": ("CRM user:", "accountCrmUser", "alex@contoso.com"),
}
#: An IMAP mailbox's contacts, calendar and tasks: its CardDAV/CalDAV collections.
DAV_FIELDS = {  # key -> (label, objectName, placeholder)
    "carddav_url": (
        "Address book (CardDAV):",
        "accountCarddavUrl",
        "https://dav.example.com/alex/contacts/ (IMAP only; empty: not synced)",
    ),
    "caldav_url": (
        "Calendar (CalDAV):",
        "accountCaldavUrl",
        "https://dav.example.com/alex/calendar/",
    ),
    "caldav_tasks_url": (
        "Tasks (CalDAV):",
        "accountCaldavTasksUrl",
        "https://dav.example.com/alex/tasks/",
    ),
    "dav_user": ("CalDAV/CardDAV user:", "accountDavUser", "empty: the mail user"),
}
TOOLTIPS = {
    "mail_url": "Exchange: ews://host/EWS/Exchange.asmx, or ews+autodiscover:you@example.com.\n"
    "Add ?auth=basic for a server without NTLM, and ?mailbox=you@example.com when\n"
    "you sign in as DOMAIN\\user.",
}
ERROR_STYLE = "color: #b3261e;"
WARNING_STYLE = "color: #a86a00;"
NOTE_STYLE = "color: #59606a;"


@dataclass(frozen=True)
class ConnectionEdit:
    """What the form says, copied for a worker (never read widgets off the GUI thread)."""

    profile: Profile
    values: dict[str, str]
    crm_password: str
    mail_password: str
    dav_password: str = ""

    @property
    def changed(self) -> bool:
        old = self.profile.config
        return bool(self.crm_password or self.mail_password or self.dav_password) or any(
            getattr(old, k) != v for k, v in self.values.items()
        )


def _password(name: str, placeholder: str) -> QLineEdit:
    edit = QLineEdit()
    edit.setObjectName(name)
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    edit.setPlaceholderText(placeholder)
    return edit


def _label(name: str, style: str) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setStyleSheet(style)
    label.setVisible(False)
    return label


class AccountsTab(QWidget):
    """``tested`` once a connection test reported (both results are shown)."""

    tested = Signal()

    def __init__(
        self, workspace: Workspace, workers: Workers, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.workers = workers
        self.profile: Profile | None = workspace.profile
        self.fields: dict[str, QLineEdit] = {}
        self.errors: dict[str, QLabel] = {}
        form = QFormLayout()
        for key, (label, name, placeholder) in FIELDS.items():
            edit = QLineEdit()
            edit.setObjectName(name)
            edit.setPlaceholderText(placeholder)
            edit.setToolTip(TOOLTIPS.get(key, ""))
            edit.textChanged.connect(self._show_insecure)
            edit.editingFinished.connect(self.check)
            self.fields[key] = edit
            self.errors[key] = _label(name + "Error", ERROR_STYLE)
            form.addRow(label, edit)
            form.addRow("", self.errors[key])
            if key == "mail_user":
                self.mail_password = _password("accountMailPassword", "unchanged")
                form.addRow("Mail password:", self.mail_password)
        self.crm_password = _password("accountCrmPassword", "unchanged")
        form.addRow("CRM password:", self.crm_password)
        self._add_dav_rows(form)
        self.form = form
        self.mail_kind = _label("accountMailKind", NOTE_STYLE)
        for key in ("mail_url", "crm_user"):
            self.fields[key].textChanged.connect(self._show_mail_kind)
        self.insecure = _label("accountInsecureWarning", WARNING_STYLE)
        self.test_button = QPushButton("Test connection")
        self.test_button.setObjectName("accountTest")
        self.test_button.clicked.connect(self.test_connection)
        self.mail_result = _label("accountMailResult", NOTE_STYLE)
        self.crm_result = _label("accountCrmResult", NOTE_STYLE)
        self.note = QLabel()
        self.note.setObjectName("accountNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(NOTE_STYLE)
        self.signin = SignInBox(workspace, workers, self)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        for w in (
            self.mail_kind,
            self.insecure,
            self.test_button,
            self.mail_result,
            self.crm_result,
            self.note,
        ):
            layout.addWidget(w)
        layout.addWidget(self.signin)
        layout.addStretch(1)
        if self.profile is None:
            self._show_demo()
        else:
            self._show_profile(self.profile)

    def _add_dav_rows(self, form: QFormLayout) -> None:
        """Contacts, calendar and tasks of an IMAP mailbox: where they sync (CalDAV/CardDAV)."""
        for key, (label, name, placeholder) in DAV_FIELDS.items():
            edit = QLineEdit()
            edit.setObjectName(name)
            edit.setPlaceholderText(placeholder)
            edit.editingFinished.connect(self.check)
            self.fields[key] = edit
            self.errors[key] = _label(name + "Error", ERROR_STYLE)
            form.addRow(label, edit)
            form.addRow("", self.errors[key])
        self.dav_password = _password("accountDavPassword", "unchanged")
        form.addRow("CalDAV/CardDAV password:", self.dav_password)

    # --- showing ------------------------------------------------------------------------------
    def _show_profile(self, profile: Profile) -> None:
        for key, edit in self.fields.items():
            edit.setText(getattr(profile.config, key))
        oauth = profile.config.uses_oauth
        self.crm_password.setEnabled(not oauth)
        self.crm_password.setPlaceholderText("none: you sign in below" if oauth else "unchanged")
        if oauth:
            self.signin.refresh()
        self.note.setText(
            f"Profile “{profile.name}”. Passwords are kept in the system keyring "
            "only; leave a password empty to keep the stored one. Saving "
            "reconnects Trackbox with the new settings."
        )

    def _show_demo(self) -> None:
        from core.crm import BasicAuth

        ws = self.workspace
        auth = ws.crm.auth
        self.fields["crm_url"].setText(ws.crm.base_url)
        self.fields["crm_user"].setText(auth.user if isinstance(auth, BasicAuth) else "")
        self.fields["mail_url"].setText("built-in demo mailbox")
        self.fields["mail_user"].setText(ws.mailbox_name)
        for w in (*self.fields.values(), self.mail_password, self.crm_password, self.dav_password):
            w.setReadOnly(True)
            w.setPlaceholderText("")
        self.note.setText(
            "This is the embedded demo: its CRM emulator and mailbox are built "
            "into Trackbox, so the connection cannot be changed here. Run "
            "'trackbox open' to use your own accounts."
        )

    def _show_mail_kind(self) -> None:
        """A Microsoft 365 mailbox (``graph:``) signs in with the CRM's Microsoft sign-in:
        no mail password, no SMTP server — say so instead."""
        url = self.fields["mail_url"].text().strip()
        graph = is_graph(url)
        for w in (self.mail_password, self.fields["smtp_url"]):
            self.form.setRowVisible(w, not graph)
        self.mail_kind.setVisible(graph)
        if not graph:
            return
        try:
            shared = graph_options(url).get("mailbox")
        except ValueError:  # the field's own error says what is wrong
            shared = None
        user = self.fields["crm_user"].text().strip()
        self.mail_kind.setText(
            f"Mail: Microsoft 365 through Microsoft Graph, signed in as {user}"
            + (f" (the shared mailbox {shared})" if shared else "")
            + ", with the CRM's sign-in below: no mail password."
        )

    def _show_insecure(self) -> None:
        urls = insecure_urls(
            *(self.fields[k].text().strip() for k in ("mail_url", "smtp_url", "crm_url"))
        )
        self.insecure.setText(
            "Not encrypted: " + ", ".join(urls) + " sends your password "
            "and mail in the clear. Use it only for a local test server."
            if urls
            else ""
        )
        self.insecure.setVisible(bool(urls))

    # --- the form's values -------------------------------------------------------------------
    def values(self) -> dict[str, str]:
        return {k: self.fields[k].text().strip() for k in (*CONNECTION_KEYS, *DAV_KEYS)}

    def edit(self) -> ConnectionEdit | None:
        """The form's connection (None in the demo)."""
        if self.profile is None:
            return None
        return ConnectionEdit(
            self.profile,
            self.values(),
            self.crm_password.text(),
            self.mail_password.text(),
            self.dav_password.text(),
        )

    def check(self) -> bool:
        """Show each problem next to its field; True when there is none."""
        if self.profile is None:
            return True
        problems = connection_problems(self.profile.config, self.values())
        for key, label in self.errors.items():
            label.setText(problems.get(key, ""))
            label.setVisible(key in problems)
        return not problems

    def saved(self, profile: Profile) -> None:
        """The profile as written: the form now edits it, passwords are in the keyring."""
        self.profile = profile
        self.crm_password.clear()
        self.mail_password.clear()
        self.dav_password.clear()

    # --- connection test ---------------------------------------------------------------------
    def test_connection(self) -> None:
        if not self.check():
            self._say(self.mail_result, "Fix the fields marked above first.", ERROR_STYLE)
            self.crm_result.setVisible(False)
            return
        probe = self._demo_probe() if self.profile is None else _form_probe(self.edit())
        self.test_button.setEnabled(False)
        self._say(self.mail_result, "Mail: connecting…", NOTE_STYLE)
        self._say(self.crm_result, "CRM: connecting…", NOTE_STYLE)

        def done(result: tuple[MailOutcome, CrmOutcome]) -> None:
            mail, crm = result
            self.test_button.setEnabled(True)
            self._report(
                self.mail_result,
                "Mail",
                mail,
                lambda n: f"Mail: connected; the mailbox has {n} folders.",
            )
            self._report(
                self.crm_result,
                "CRM",
                crm,
                lambda who: f"CRM: connected; the CRM knows you as user {who.user_id}.",
            )
            self.tested.emit()

        def failed(exc: BaseException) -> None:  # the probe itself broke (no keyring …)
            self.test_button.setEnabled(True)
            self._say(self.mail_result, describe(exc), ERROR_STYLE)
            self.crm_result.setVisible(False)
            self.tested.emit()

        self.workers.run(probe, done, failed, owner=self)

    def _demo_probe(self) -> Probe:
        ws = self.workspace

        def mail() -> int | None:
            with ws.open_mailbox() as mailbox:
                return len(mailbox.folders())

        return lambda: (_attempt(mail), _attempt(ws.crm.who_am_i))

    def _report(
        self,
        label: QLabel,
        what: str,
        outcome: T | None | BaseException,
        ok: Callable[[T], str],
    ) -> None:
        if isinstance(outcome, BaseException):
            words = server_words(outcome)
            text = f"{what}: {describe(outcome)}"
            if words:
                text += f" The server said: “{words}”"
            self._say(label, text, ERROR_STYLE)
        elif outcome is None:
            self._say(label, f"{what}: nothing to test (a local folder).", NOTE_STYLE)
        else:
            self._say(label, ok(outcome), NOTE_STYLE)

    @staticmethod
    def _say(label: QLabel, text: str, style: str) -> None:
        label.setStyleSheet(style)
        label.setText(text)
        label.setVisible(True)


class SignInBox(QGroupBox):
    """The CRM sign-in of a Microsoft / AD FS profile (hidden for the others and the demo).
    ``changed(SignInStatus)`` whenever the status was read again."""

    changed = Signal(object)

    def __init__(self, workspace: Workspace, workers: Workers, parent: QWidget | None) -> None:
        super().__init__("CRM sign-in", parent)
        self.setObjectName("accountSignIn")
        self.workspace = workspace
        self.workers = workers
        self.interaction = Interaction(self)
        self.interaction.code_shown.connect(self._show_code)
        self.kind = QLabel()
        self.kind.setObjectName("accountSignInKind")
        self.account = QLabel()
        self.account.setObjectName("accountSignInAccount")
        self.expiry = QLabel()
        self.expiry.setObjectName("accountSignInExpiry")
        self.result = _label("accountSignInResult", NOTE_STYLE)
        self.sign_in_button = QPushButton("Sign in…")
        self.sign_in_button.setObjectName("accountSignInButton")
        self.sign_in_button.clicked.connect(lambda: self.sign_in())
        self.code_button = QPushButton("Use a code instead")
        self.code_button.setObjectName("accountSignInCode")
        self.code_button.clicked.connect(lambda: self.sign_in(device_code=True))
        self.sign_out_button = QPushButton("Sign out")
        self.sign_out_button.setObjectName("accountSignOutButton")
        self.sign_out_button.clicked.connect(self.sign_out)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("accountSignInCancel")
        self.cancel_button.clicked.connect(self.interaction.cancel)
        self.cancel_button.setVisible(False)
        form = QFormLayout(self)
        form.addRow("Sign-in:", self.kind)
        form.addRow("Account:", self.account)
        form.addRow("Access token:", self.expiry)
        buttons = QHBoxLayout()
        for b in (self.sign_in_button, self.code_button, self.sign_out_button, self.cancel_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        form.addRow(buttons)
        form.addRow(self.result)
        profile = workspace.profile
        self.setVisible(profile is not None and profile.config.uses_oauth)
        if profile is not None:
            self.kind.setText(kind_of(profile.config.crm_authority, profile.config.crm_auth))

    def refresh(self) -> None:
        """Read the account and its expiry on a worker (the keyring is I/O)."""
        from core.workspace.signin import status_of

        ws = self.workspace
        self._run(lambda: status_of(sign_in_of(ws)), "")

    def sign_in(self, *, device_code: bool = False) -> None:
        from core.workspace.signin import sign_in_again, status_of

        ws = self.workspace
        expected = ws.profile.config.crm_user if ws.profile is not None else ""
        interact = self.interaction.interact(device_code=device_code, login_hint=expected)

        def op() -> SignInStatus:
            sign_in = sign_in_of(ws)
            sign_in_again(sign_in, interact, expected)
            return status_of(sign_in)

        self._say("Getting a sign-in code…" if device_code else "Sign in in the browser window…")
        self._run(op, "Signed in.")

    def sign_out(self) -> None:
        """Forget the account and its tokens; the queued operations wait for a sign-in."""
        from core.workspace.signin import status_of

        ws = self.workspace

        def op() -> SignInStatus:
            sign_in = sign_in_of(ws)
            sign_in.sign_out()
            return status_of(sign_in)

        self._run(op, "Signed out: the tokens are gone. Queued changes wait for a sign-in.")

    def _run(self, op: Callable[[], SignInStatus], said: str) -> None:
        self._set_busy(True)

        def done(status: SignInStatus) -> None:
            self._set_busy(False)
            self.show_status(status)
            if said:
                self._say(said)
            self.changed.emit(status)

        def failed(exc: BaseException) -> None:
            self._set_busy(False)
            self._say(describe(exc), ERROR_STYLE)

        self.workers.run(op, done, failed, owner=self)

    def show_status(self, status: SignInStatus) -> None:
        self.account.setText(status.username or "Nobody is signed in")
        if status.expires_at is None:
            self.expiry.setText("—")
        else:
            local = status.expires_at.astimezone()
            self.expiry.setText(f"good until {local:%Y-%m-%d %H:%M}; renewed silently")
        self.sign_out_button.setEnabled(status.username is not None)

    def _set_busy(self, busy: bool) -> None:
        for b in (self.sign_in_button, self.code_button, self.sign_out_button):
            b.setEnabled(not busy)
        self.cancel_button.setVisible(busy)

    def _show_code(self, flow: DeviceFlow) -> None:
        self._say(device_code_text(flow))

    def _say(self, text: str, style: str = NOTE_STYLE) -> None:
        AccountsTab._say(self.result, text, style)


def _attempt(fn: Callable[[], T]) -> T | BaseException:
    """The result, or the exception: mail and CRM are reported separately."""
    try:
        return fn()
    except Exception as exc:
        return exc


def _form_probe(edit: ConnectionEdit | None) -> Probe:
    """Sign in to the mailbox and the CRM the form names, with the typed passwords or, when
    left empty, the stored ones (keyring access happens on the worker too)."""
    assert edit is not None

    def run() -> tuple[MailOutcome, CrmOutcome]:
        from core.config.credentials import SecretKind, get_secret
        from core.config.profiles import with_connection
        from core.crm import BasicAuth, CrmClient
        from core.mail import open_backend

        old = edit.profile
        config = with_connection(old.config, edit.values)

        def secret(kind: SecretKind, typed: str) -> str:
            return typed or get_secret(old.name, kind, account_name(old.config, kind.value)) or ""

        def mail() -> int | None:
            if config.mail_signs_in_with_microsoft:  # tokens of the profile's sign-in
                from core.cli.sign_in import microsoft_sign_in, open_mail

                with (
                    microsoft_sign_in(config, old.name) as sign_in,
                    open_mail(config, old.name, sign_in=sign_in) as mailbox,
                ):
                    return len(mailbox.folders())
            options: dict[str, Any] = {}
            if config.smtp_url:
                options["smtp_url"] = config.smtp_url
            password = (
                secret(SecretKind.MAIL, edit.mail_password)
                if needs_mail_password(config.mail_url)
                else ""
            )
            with open_backend(
                config.mail_url, user=account_name(config, "mail"), password=password, **options
            ) as mailbox:
                return len(mailbox.folders())

        def crm() -> WhoAmI:
            if config.uses_oauth or config.crm_auth == "windows":
                from core.cli.sign_in import crm_auth_for, crm_client_for

                typed = None if config.uses_oauth else secret(SecretKind.CRM, edit.crm_password)
                auth = crm_auth_for(config, old.name, typed)
                with crm_client_for(config, auth, timeout=15) as client:
                    return client.who_am_i()
            basic = BasicAuth(config.crm_user, secret(SecretKind.CRM, edit.crm_password))
            with CrmClient(config.crm_url, basic, timeout=15) as client:
                return client.who_am_i()

        return _attempt(mail), _attempt(crm)

    return run


def save_edit(workspace: Workspace, edit: ConnectionEdit) -> Profile:
    """Write the connection (runs on a worker). The workspace keeps the new profile so that
    a later save of the local options does not write the old connection back."""
    from core.config.profiles import Profiles, save_connection

    profiles = workspace.profiles or Profiles()
    profile = save_connection(
        profiles,
        edit.profile.name,
        edit.values,
        crm_password=edit.crm_password,
        mail_password=edit.mail_password,
        dav_password=edit.dav_password,
    )
    workspace.profile = profile
    return profile
