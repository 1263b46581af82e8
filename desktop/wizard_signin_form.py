"""What the setup wizard's CRM page says, as plain data a worker can use
(:class:`SignInForm`): the sign-in kind and settings, checked the way the profile will be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config.profiles import ProfileConfig

#: Stands in for the mailbox while the CRM's sign-in settings are checked on their own.
_PLACEHOLDER_MAIL = "maildir:/placeholder"
_PLACEHOLDER_USER = "someone@placeholder.invalid"
CRM_PAGE_SUBTITLE = (
    "Your e-mail address or the address of your Dynamics 365 / Dataverse "
    "organisation (or a trackbox-crm server), and how you sign in."
)


@dataclass(frozen=True)
class SignInForm:
    """What the CRM page says, copied for a worker (never read widgets off the GUI thread)."""

    kind: str
    text: str
    user: str
    client_id: str
    authority: str
    discovery_url: str
    ca_file: str
    mail_url: str = ""  # graph:… — the sign-in consents to the mail scopes too
    extra_mailboxes: tuple[str, ...] = ()  # … and to the shared ones for these

    def sign_in_keys(self) -> dict[str, str]:
        """The profile's sign-in keys (only those given: the others keep their defaults)."""
        data = {"crm_auth": self.kind}
        for key, value in (
            ("crm_client_id", self.client_id),
            ("crm_authority", self.authority),
            ("crm_discovery_url", self.discovery_url),
            ("crm_ca_file", self.ca_file),
        ):
            if value:
                data[key] = value
        return data

    def config(self) -> ProfileConfig:
        """The sign-in settings checked as the profile will be (runs on the worker)."""
        from core.cli.sign_in import check_ca_file
        from core.config.profiles import validate

        data: dict[str, Any] = {
            "mail_url": self.mail_url or _PLACEHOLDER_MAIL,
            "crm_url": self.text if "://" in self.text else "https://crm.placeholder.invalid",
            "crm_user": self.user or _PLACEHOLDER_USER,
            **self.sign_in_keys(),
        }
        if self.extra_mailboxes:
            data["extra_mailboxes"] = list(self.extra_mailboxes)
        config = validate(data, "setup")
        check_ca_file(config, "setup")
        return config


__all__ = ["CRM_PAGE_SUBTITLE", "SignInForm"]
