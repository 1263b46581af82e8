"""The setup wizard's "Microsoft 365 (Outlook mail + Dynamics 365)" path: one sign-in for the
mailbox (Microsoft Graph) and the CRM (Dataverse), as ``trackbox account add --microsoft365``.

The mail page shows :class:`M365Panel` (the address, optionally a shared mailbox) instead of a
server; the CRM page then signs in with that address as the hint and — because the sign-in's
settings carry the ``graph:`` URL — ``core.cli.sign_in.microsoft_sign_in`` consents to Graph's
mail scopes in the same sign-in. Before the profile is saved, :func:`check_mailbox` (on a
worker) gets a Graph token from that sign-in and lists the mailbox's folders, so a tenant that
did not consent to the mail is found in the wizard, not at the first sync.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QLineEdit, QWidget

from core.config.profiles import graph_url
from core.crm.errors import SignInRequired

if TYPE_CHECKING:
    from core.config.profiles import ProfileConfig
    from core.crm.token_cache import PersistentTokenCache
    from core.workspace.signin import Connected, Environments

#: The mail kind (``MailPage.kind``'s data) of a Microsoft 365 mailbox through Graph.
M365_KIND = "graph"
M365_LABEL = "Microsoft 365 (Outlook mail + Dynamics 365) — recommended"
MAIL_SUBTITLE = (
    "Your work e-mail address. On the next page you sign in once, with your Microsoft "
    "account, for both your mail and Dynamics 365. No password is stored."
)
#: The CRM page's subtitle for Microsoft 365 (``{address}``: the mail page's).
CRM_SUBTITLE = (
    "Sign in once as {address}, in the browser or with a code, for your mail and "
    "Dynamics 365; then choose your Dynamics 365 environment."
)


class MailboxNotAllowed(Exception):
    """Signed in, but the sign-in gives no token for the mailbox: the user (or the tenant's
    administrator) did not consent to Graph's mail permissions."""


class M365Panel(QObject):
    """The mail page's fields for Microsoft 365 (its form shows :meth:`rows`): the address
    (the sign-in's hint), shared mailboxes to show beside the user's own, and another Graph
    endpoint (national clouds). ``changed`` when any of them is edited."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.address = QLineEdit()
        self.address.setObjectName("setupM365Address")
        self.address.setPlaceholderText("you@contoso.com")
        self.shared = QLineEdit()
        self.shared.setObjectName("setupM365Shared")
        self.shared.setPlaceholderText("optional: sales@contoso.com, support@contoso.com")
        self.shared.setAccessibleName("Shared mailboxes")
        self.endpoint = QLineEdit()
        self.endpoint.setObjectName("setupGraphEndpoint")
        self.endpoint.setPlaceholderText("leave empty: https://graph.microsoft.com/v1.0")
        note = QLabel(
            "Shared mailboxes you have access to appear beside your own, each under its "
            "address; their mail can be tracked too."
        )
        note.setWordWrap(True)
        note.setObjectName("setupM365Note")
        self.note = note
        for edit in (self.address, self.shared, self.endpoint):
            edit.textChanged.connect(self.changed)

    def rows(self) -> list[tuple[str, QWidget]]:
        """The form rows, in order: (label, field)."""
        return [
            ("E-mail address:", self.address),
            ("Shared mailboxes:", self.shared),
            ("", self.note),
            ("Graph endpoint:", self.endpoint),
        ]

    def email(self) -> str:
        return self.address.text().strip()

    def mail_url(self) -> str:
        """The profile's ``graph:`` URL for what was typed (the user's own mailbox)."""
        return graph_url(self.endpoint.text().strip())

    def extra_mailboxes(self) -> tuple[str, ...]:
        """The shared mailboxes typed (the profile's ``extra_mailboxes``), in order, once."""
        typed = self.shared.text().replace(";", ",").split(",")
        return tuple(dict.fromkeys(a.strip() for a in typed if a.strip()))

    def is_complete(self) -> bool:
        from core.config.mail_urls import is_address

        own = self.email().lower()
        extras = self.extra_mailboxes()
        return is_address(self.email()) and all(is_address(a) and a.lower() != own for a in extras)


def check_mailbox(config: ProfileConfig, name: str, cache: PersistentTokenCache) -> int:
    """The new profile's mailbox through its sign-in (runs on a worker): a Graph token from
    the same account and cache, then the folders listed. Returns their number; raises
    MailboxNotAllowed when the sign-in did not consent to the mail, MailError otherwise."""
    from core.cli.sign_in import mail_scopes, microsoft_sign_in, open_mail

    scopes = mail_scopes(config)
    with microsoft_sign_in(config, name, cache=cache) as sign_in:
        try:
            sign_in.token_for(scopes)
        except SignInRequired as exc:
            names = ", ".join(s.rsplit("/", 1)[-1] for s in scopes)
            raise MailboxNotAllowed(
                f"Signed in, but not allowed to read the mailbox through Microsoft Graph "
                f"({names}): {exc}. Your administrator may have to consent to these "
                "permissions for Trackbox; then sign in again."
            ) from exc
        with open_mail(config, name, sign_in=sign_in) as mailbox:
            return len(mailbox.folders())


def environment_name(connected: Connected, found: Environments | None) -> str:
    """The chosen environment as discovery named it (its URL when it was typed)."""
    for env in found.found if found is not None else ():
        if env.url.rstrip("/") == connected.org_url.rstrip("/"):
            return env.friendly_name or env.unique_name or env.url
    return connected.org_url


def summary(
    mail_url: str, crm: str, *, microsoft365: bool, extra_mailboxes: tuple[str, ...] = ()
) -> str:
    """The last page's one line: what the profile will read and where it tracks."""
    if not microsoft365:
        return f"Mail: {mail_url or '—'} · CRM: {crm or '—'}"
    from core.config.profiles import graph_options

    shared = graph_options(mail_url).get("mailbox")
    mail = "Microsoft 365 (Microsoft Graph)" + (f", shared mailbox {shared}" if shared else "")
    if extra_mailboxes:
        mail += " and the shared mailboxes " + ", ".join(extra_mailboxes)
    return f"Mail: {mail} · CRM: {crm or '—'} · one sign-in"
