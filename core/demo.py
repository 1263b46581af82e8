"""The embedded demo: a CRM emulator on loopback with the demo organisation, a demo Maildir
mailbox, and a workspace for the demo user — no configuration needed.

The emulator is imported lazily: ``core`` is the client library and does not need the
emulator package unless the demo runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platformdirs import user_data_path

from core import demo_data
from core.crm import BasicAuth, CrmClient
from core.mail.demo import create_demo_mailbox
from core.mail.maildir import MaildirBackend
from core.model import Address
from core.workspace import Workspace

log = logging.getLogger(__name__)


def default_demo_dir() -> Path:
    return user_data_path("trackbox", appauthor=False) / "demo"


@dataclass
class DemoEnvironment:
    data_dir: Path
    mailbox_dir: Path
    server: Any  # crmserver.RunningServer
    workspace: Workspace

    @property
    def crm_url(self) -> str:
        return str(self.server.url)

    def close(self) -> None:
        self.workspace.close()
        self.server.stop()


def start_demo(data_dir: Path, *, messages: int = 2000) -> DemoEnvironment:
    """Create the demo data once (idempotent) and start the emulator on a free loopback port."""
    from crmserver import Settings, run_in_thread

    data_dir.mkdir(parents=True, exist_ok=True)
    mailbox_dir = data_dir / "mailbox"
    create_demo_mailbox(mailbox_dir, messages=messages)
    server = run_in_thread(Settings(db_path=data_dir / "crm.sqlite", seed="demo"))
    me = demo_data.ME
    crm = CrmClient(server.url, BasicAuth(me.email, demo_data.DEMO_PASSWORD))
    workspace = Workspace(
        store_path=data_dir / "trackbox.sqlite",
        open_mailbox=lambda: MaildirBackend(mailbox_dir),
        crm=crm,
        owner=Address(me.email, me.full_name),
        mailbox_name=me.email,
    )
    log.info("demo ready: CRM at %s, mailbox at %s", server.url, mailbox_dir)
    return DemoEnvironment(data_dir, mailbox_dir, server, workspace)
