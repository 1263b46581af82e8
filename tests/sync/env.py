"""Test environment of real servers on loopback for sync/e2e tests: a fresh CRM emulator,
the session's Dovecot (a fresh mailbox per workspace) and the SMTP relay into Dovecot."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.model import Address
from core.mail import open_backend
from core.workspace.facade import Workspace
from crmserver import RunningServer
from tests.plugins.crm import crm_http_client
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer

ME = Address(demo_data.ME.email, demo_data.ME.full_name)


def mime(
    sender: Address,
    to: Address | tuple[Address, ...],
    subject: str,
    *,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    body: str = "Hello.",
    date: datetime | None = None,
    thread_index: str | None = None,
) -> tuple[str, bytes]:
    msg = EmailMessage()
    msg["From"] = sender.display()
    msg["To"] = ", ".join(a.display() for a in (to if isinstance(to, tuple) else (to,)))
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    if thread_index:
        msg["Thread-Index"] = thread_index
    mid = message_id or f"<{uuid.uuid4().hex}@{sender.email.rpartition('@')[2]}>"
    msg["Message-ID"] = mid
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    return mid, msg.as_bytes()


@dataclass
class Env:
    crm: RunningServer
    dovecot: DovecotServer
    smtp: SmtpServer
    tmp: Path

    def http(self, email: str = ME.email) -> httpx.Client:
        return crm_http_client(self.crm, email)

    def user_id(self, email: str = ME.email) -> str:
        with self.http(email) as http:
            return str(http.get("WhoAmI").json()["UserId"])

    def set_incoming_filter(self, method: int, email: str = ME.email) -> None:
        uid = self.user_id(email)
        with self.http(email) as http:
            http.patch(
                f"usersettingscollection({uid})", json={"incomingemailfilteringmethod": method}
            ).raise_for_status()

    def create_contact(self, email: str, first: str = "Casey", last: str = "Test") -> str:
        with self.http() as http:
            r = http.post(
                "contacts", json={"firstname": first, "lastname": last, "emailaddress1": email}
            )
            r.raise_for_status()
            return r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")

    def emails(self, message_id: str) -> list[dict[str, Any]]:
        with self.http() as http:
            r = http.get(
                "emails",
                params={
                    "$filter": f"messageid eq '{message_id}'",
                    "$select": "activityid,messageid,subject,statuscode,_regardingobjectid_value,"
                    "_ownerid_value",
                },
            )
            r.raise_for_status()
            return list(r.json()["value"])

    def mailbox_url(self) -> str:
        return self.dovecot.url("imap+insecure")

    def workspace(
        self,
        name: str,
        owner: Address = ME,
        mailbox_user: str | None = None,
        crm_url: str | None = None,
    ) -> tuple[Workspace, str]:
        """A workspace for ``owner`` on a fresh Dovecot mailbox; returns it and the IMAP
        user name (to deliver into)."""
        user = mailbox_user or self.dovecot.new_user(name)
        url, smtp = self.mailbox_url(), self.smtp.url()

        def open_mailbox() -> Any:
            return open_backend(url, user=user, password=PASSWORD, smtp_url=smtp)

        crm = CrmClient(
            crm_url or self.crm.url,
            BasicAuth(owner.email, demo_data.DEMO_PASSWORD),
            timeout=10,
            get_retries=0,
        )
        ws = Workspace(
            store_path=self.tmp / name / "store.sqlite",
            open_mailbox=open_mailbox,
            crm=crm,
            owner=owner,
            mailbox_name=owner.email,
        )
        return ws, user
