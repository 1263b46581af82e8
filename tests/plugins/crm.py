"""Fixtures that run the CRM emulator (``trackbox-crm``) on loopback over real HTTP.

- ``crm_server`` (session): the emulator seeded with the demo organisation
  (``core/domain/demo_data.py``) in a temporary directory; yields a ``crmserver.RunningServer``
  (``.url`` is the root, the Web API is at ``.url + "/api/data/v9.2/"``). Log in with HTTP
  Basic as any ``demo_data.USERS`` e-mail and ``demo_data.DEMO_PASSWORD``. Shared by the whole
  session: tests must not depend on it being pristine (create your own records, use unique
  Message-IDs).
- ``fresh_crm`` (function): a new emulator with the demo seed and its own database, for tests
  that change organisation settings or need to know every row.
- ``crm_client`` (function): an ``httpx.Client`` on ``crm_server``'s Web API, logged in as the
  demo user ``ME`` with the OData headers set.

Helpers: :func:`crm_http_client` (such a client on any emulator, as any user) and
:func:`crm_emails_with` (the e-mail activities with a Message-ID in a demo environment's CRM).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from core.crm.client import ODATA_HEADERS
from core.domain import demo_data
from crmserver import RunningServer, Settings, run_in_thread

if TYPE_CHECKING:
    from desktop.demo import DemoEnvironment


def crm_http_client(
    server: RunningServer, email: str = demo_data.ME.email, password: str = demo_data.DEMO_PASSWORD
) -> httpx.Client:
    """An httpx client on the server's Web API (v9.2) with Basic auth as ``email``."""
    return httpx.Client(
        base_url=server.url + "/api/data/v9.2/",
        auth=(email, password),
        headers=ODATA_HEADERS,
        timeout=30,
    )


def crm_emails_with(env: DemoEnvironment, message_id: str) -> list[dict]:
    """The CRM's e-mail activities with this Message-ID in the demo environment's emulator,
    asked over HTTP as the demo user ``ME`` (not via the app)."""
    literal = message_id.replace("'", "''")
    with crm_http_client(env.server) as client:
        response = client.get(
            "emails",
            params={
                "$filter": f"messageid eq '{literal}'",
                "$select": "activityid,messageid,subject,_regardingobjectid_value",
            },
        )
    response.raise_for_status()
    return response.json()["value"]


@pytest.fixture(scope="session")
def crm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    path: Path = tmp_path_factory.mktemp("crm") / "org.db"
    with run_in_thread(Settings(db_path=path, seed="demo")) as server:
        yield server


@pytest.fixture
def fresh_crm(tmp_path: Path) -> Iterator[RunningServer]:
    with run_in_thread(Settings(db_path=tmp_path / "fresh-org.db", seed="demo")) as server:
        yield server


@pytest.fixture
def crm_client(crm_server: RunningServer) -> Iterator[httpx.Client]:
    with crm_http_client(crm_server) as client:
        yield client
