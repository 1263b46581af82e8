"""What a profile holds: its keys with their kinds and defaults, and the facts read off its
URLs (which scheme, whether it needs a password, whether it is encrypted)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config.mail_urls import GRAPH_SCHEME, is_ews_oauth, is_graph
from core.domain.entities import EMAIL_ENABLED

#: The address books a profile can keep: every e-mail-enabled table (one home: the entity table).
ADDRESS_BOOK_ENTITIES = EMAIL_ENABLED
#: Schemes that send passwords and mail unencrypted: for a local test server only.
INSECURE_SCHEMES = ("imap+insecure", "smtp+insecure", "ews+http", "http")
#: The keys of a profile that say where the mailbox and the CRM are and who signs in.
CONNECTION_KEYS = ("mail_url", "smtp_url", "mail_user", "crm_url", "crm_user")
#: The CalDAV/CardDAV keys of an IMAP profile (contacts, calendar and tasks, issue 20); the
#: password of ``dav_user`` is a keyring secret (``SecretKind.DAV``), never a key.
DAV_KEYS = ("carddav_url", "caldav_url", "caldav_tasks_url", "dav_user")
#: How a profile signs in to the CRM (``crm_auth``): HTTP Basic with a password kept in the
#: keyring; Microsoft Entra ID (Dynamics 365 online) or AD FS (on-premises, claims-based)
#: through MSAL; Windows sign-in (NTLM/Negotiate, on-premises) with a password in the keyring.
AUTH_KINDS = ("password", "microsoft", "adfs", "windows")
#: The kinds that sign in through MSAL (a browser or a device code; no password stored).
OAUTH_KINDS = ("microsoft", "adfs")
#: The keys that say how the CRM sign-in works (the same defaults as ``core.crm.signin``).
SIGN_IN_KEYS = ("crm_auth", "crm_client_id", "crm_authority", "crm_ca_file", "crm_discovery_url")
#: Microsoft's documented sample public client for Dataverse ("for development and
#: prototyping"); an organisation sets its own app registration's id.
DEFAULT_CLIENT_ID = "51f81489-12ee-4a9e-aaae-a2591f45987d"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com/organizations"
DEFAULT_DISCOVERY_URL = "https://globaldisco.crm.dynamics.com"


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """What a profile's config file holds. URLs follow the CLI's schemes (``imaps://host:993``,
    ``ews://host/EWS/Exchange.asmx``, ``maildir:/path`` …); ``folders`` empty = all folders."""

    mail_url: str
    crm_url: str
    crm_user: str
    mail_user: str = ""
    smtp_url: str = ""
    folders: tuple[str, ...] = ()
    include_subfolders: bool = True
    sync_interval_minutes: int = 15
    contacts_scope: str = "owned"  # "owned" (contacts I own) or "all" (all I can see)
    address_book_entities: tuple[str, ...] = ADDRESS_BOOK_ENTITIES
    body_cache_mb: int = 256
    crm_auth: str = "password"  # one of AUTH_KINDS
    crm_client_id: str = DEFAULT_CLIENT_ID
    crm_authority: str = DEFAULT_AUTHORITY
    crm_ca_file: str = ""  # a PEM file of CAs to trust for the CRM, the authority and Graph
    crm_discovery_url: str = DEFAULT_DISCOVERY_URL
    #: Shared or delegated mailboxes shown besides the user's own (Graph mailboxes only),
    #: each under a top-level folder named by its address (``core.mail.multi``).
    extra_mailboxes: tuple[str, ...] = ()
    #: CardDAV address book, CalDAV calendar and task list (IMAP profiles; empty: not synced).
    carddav_url: str = ""
    caldav_url: str = ""
    caldav_tasks_url: str = ""
    dav_user: str = ""  # empty: the mail user (else the CRM user)
    options: Mapping[str, Any] = field(default_factory=dict)  # [options] table, free-form

    @property
    def uses_oauth(self) -> bool:
        """Signs in through MSAL (no CRM password in the keyring)."""
        return self.crm_auth in OAUTH_KINDS

    @property
    def uses_graph_mail(self) -> bool:
        """The mailbox is Microsoft 365 through Graph (``graph:``): its tokens come from the
        profile's Microsoft sign-in, which consents to Graph's mail scopes too."""
        return is_graph(self.mail_url)

    @property
    def mail_signs_in_with_microsoft(self) -> bool:
        """The mailbox takes bearer tokens from the profile's Microsoft sign-in: Graph, or
        Exchange through EWS with ``?auth=oauth`` (hybrid tenants that still allow EWS)."""
        return is_graph(self.mail_url) or is_ews_oauth(self.mail_url)

    @property
    def has_dav(self) -> bool:
        """Some CalDAV/CardDAV collection is set (contacts, calendar or tasks sync)."""
        return bool(self.carddav_url or self.caldav_url or self.caldav_tasks_url)

    @property
    def crm_verify(self) -> str | bool:
        """What to verify the CRM's, the authority's and (``graph:`` mail) Graph's TLS
        certificates with: the CA file, else the system's CAs."""
        return os.path.expanduser(self.crm_ca_file) if self.crm_ca_file else True

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["folders"] = list(self.folders)
        data["address_book_entities"] = list(self.address_book_entities)
        data["extra_mailboxes"] = list(self.extra_mailboxes)
        data["options"] = dict(self.options)
        return data


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    config_path: Path
    data_dir: Path
    config: ProfileConfig

    @property
    def store_path(self) -> Path:
        return self.data_dir / "store.sqlite"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "trackbox.log"


def mail_scheme(url: str) -> str:
    return url.split(":", 1)[0].strip().lower() if ":" in url else ""


def needs_mail_password(mail_url: str) -> bool:
    """A local Maildir has no account; Graph and EWS with ``?auth=oauth`` sign in with the
    profile's Microsoft sign-in; every other server has a password."""
    return mail_scheme(mail_url) not in ("maildir", GRAPH_SCHEME) and not is_ews_oauth(mail_url)


def insecure_urls(*urls: str) -> list[str]:
    """The URLs whose scheme sends passwords in the clear (test servers only)."""
    return [u for u in urls if u and mail_scheme(u) in INSECURE_SCHEMES]


def account_name(config: ProfileConfig, kind: str) -> str:
    """The user name a secret of ``kind`` ("crm"/"mail"/"dav") is stored under: the mail
    user, else the CRM user (as the CLI signs in); for "dav" the DAV user first."""
    if kind == "crm":
        return config.crm_user
    if kind == "dav" and config.dav_user:
        return config.dav_user
    return config.mail_user or config.crm_user


__all__ = [
    "ADDRESS_BOOK_ENTITIES",
    "AUTH_KINDS",
    "CONNECTION_KEYS",
    "DAV_KEYS",
    "DEFAULT_AUTHORITY",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_DISCOVERY_URL",
    "INSECURE_SCHEMES",
    "OAUTH_KINDS",
    "SIGN_IN_KEYS",
    "Profile",
    "ProfileConfig",
    "account_name",
    "insecure_urls",
    "mail_scheme",
    "needs_mail_password",
]
