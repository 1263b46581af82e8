"""A router on real servers for the processing tests: a fresh emulator over HTTPS (seeded
with the demo's server-side user Sam, the Support queue's e-mail-to-case rule and the
router's application user), Dovecot mailboxes for the mailboxes the tests process, and the
router's config file and keyring entries (the in-memory keyring of the tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx

from core.config.credentials import SecretKind, set_secret
from core.domain import demo_data
from core.domain.model import Address
from crmserver import RunningServer
from crmserver.auth import hash_password
from crmserver.seed import ROUTER_USER_ID, SERVER_SIDE_USER, user_id
from crmserver.storage import Storage
from router.context import RouterContext, load_context
from tests.plugins.crm import crm_http_client
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer

CLIENT_ID = "trackbox-router-tests"
PROFILE = "router-tests"
SAM = Address(SERVER_SIDE_USER.email, SERVER_SIDE_USER.full_name)
SUPPORT = "support@contoso.example"
ADMIN = demo_data.ME.email


def mime(
    sender: str,
    to: str,
    subject: str,
    *,
    body: str = "Hello.",
    message_id: str | None = None,
    attach: bytes | None = None,
) -> tuple[str, bytes]:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    mid = message_id or f"<{uuid.uuid4().hex}@{sender.rpartition('@')[2]}>"
    msg["Message-ID"] = mid
    msg.set_content(body)
    if attach is not None:  # forwarded as an attachment, as mail clients do (7bit)
        msg.add_attachment(message_from_bytes(attach, policy=policy.default))
    return mid, msg.as_bytes()


@dataclass
class RouterEnv:
    crm: RunningServer
    dovecot: DovecotServer
    smtp: SmtpServer
    tmp: Path
    #: CRM mailbox address → Dovecot user.
    users: dict[str, str] = field(default_factory=dict)
    smtp_url: str | None = None
    #: More lines for the config file (a ``[graph]`` section).
    extra: list[str] = field(default_factory=list)

    def http(self, email: str = ADMIN) -> httpx.Client:
        return crm_http_client(self.crm, email)

    def register_service(self) -> None:
        """The router's application user gets a client secret (``trackbox-crm app add``)."""
        storage = Storage(str(self.crm.settings.db_path))
        try:
            storage.add_application(
                CLIENT_ID, hash_password("router-secret"), ROUTER_USER_ID, "router"
            )
        finally:
            storage.close()
        set_secret(PROFILE, SecretKind.CRM, CLIENT_ID, "router-secret")

    def mailbox_for(self, address: str) -> str:
        """A fresh Dovecot mailbox standing for the CRM mailbox ``address``."""
        user = self.dovecot.new_user("rt")
        self.users[address] = user
        set_secret(PROFILE, SecretKind.MAIL, user, PASSWORD)
        return user

    def deliver(self, address: str, raw: bytes) -> None:
        self.dovecot.deliver(self.users[address], raw)

    def context(self) -> RouterContext:
        lines = [
            "[crm]",
            f'url = "{self.crm.url}"',
            f'client_id = "{CLIENT_ID}"',
            f'ca_file = "{self.crm.ca_file}"',
            "[router]",
            f'state_dir = "{self.tmp / "state"}"',
            f'keyring_profile = "{PROFILE}"',
        ]
        for address, user in self.users.items():
            lines += [
                f'[mailboxes."{address}"]',
                f'url = "{self.dovecot.url()}"',
                f'user = "{user}"',
            ]
            lines.append(f'smtp_url = "{self.smtp_url or self.smtp.url()}"')
        lines += self.extra
        config = self.tmp / "router.toml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return load_context(config)

    def mailbox_id(self, address: str) -> str:
        with self.http() as http:
            rows = http.get("mailboxes", params={"$filter": f"emailaddress eq '{address}'"}).json()[
                "value"
            ]
        return str(rows[0]["mailboxid"])

    def emails(self, message_id: str, reader: str = SAM.email) -> list[dict[str, Any]]:
        """The e-mails with this Message-ID that ``reader`` sees (an owner sees theirs)."""
        with self.http(reader) as http:
            r = http.get(
                "emails",
                params={
                    "$filter": f"messageid eq '{message_id}'",
                    "$select": "activityid,subject,statuscode,_regardingobjectid_value,"
                    "_ownerid_value",
                },
                headers={"Prefer": 'odata.include-annotations="*"'},
            )
        r.raise_for_status()
        return list(r.json()["value"])

    def set_filter(self, email: str, method: int) -> None:
        with self.http() as http:
            http.patch(
                f"usersettingscollection({user_id(email)})",
                json={"incomingemailfilteringmethod": method},
            ).raise_for_status()
