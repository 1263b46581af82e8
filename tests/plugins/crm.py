"""Fixtures that run the CRM emulator (``trackbox-crm``) on loopback over real HTTP(S).

- ``crm_server`` (session): the emulator seeded with the demo organisation
  (``core/domain/demo_data.py``) in a temporary directory; yields a ``crmserver.RunningServer``
  (``.url`` is the root, the Web API is at ``.url + "/api/data/v9.2/"``). Log in with HTTP
  Basic as any ``demo_data.USERS`` e-mail and ``demo_data.DEMO_PASSWORD``. Shared by the whole
  session: tests must not depend on it being pristine (create your own records, use unique
  Message-IDs).
- ``fresh_crm`` (function): a new emulator with the demo seed and its own database, for tests
  that change organisation settings or need to know every row.
- ``crm_tls`` (session): a trustme CA and a server certificate for 127.0.0.1 / localhost / ::1
  in a temporary directory, as ``crmserver.TlsFiles`` (``.cert``, ``.key``, ``.ca``).
- ``crm_https`` (session): like ``crm_server`` but over HTTPS with ``crm_tls``: ``.url`` is
  ``https://127.0.0.1:PORT``, ``.ca_file`` is the CA file to verify it with (httpx:
  ``verify=crm_ssl_context(server)``, as ``str`` is deprecated there; requests / MSAL:
  ``verify=server.ca_file``), ``.settings`` its settings. Shared: same rules as ``crm_server``.
- ``fresh_crm_https`` (function): like ``fresh_crm`` over HTTPS (own database, same CA).
- ``crm_client`` (function): an ``httpx.Client`` on ``crm_server``'s Web API, logged in as the
  demo user ``ME`` with the OData headers set.

Helpers: :func:`crm_http_client` (such a client on any emulator, HTTP or HTTPS, as any
user), :func:`crm_ssl_context` (a TLS context trusting its CA) and
:func:`crm_emails_with` (the e-mail activities with a Message-ID in a demo environment's CRM).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import trustme

from core.crm.client import ODATA_HEADERS
from core.domain import demo_data
from crmserver import RunningServer, Settings, TlsFiles, run_in_thread

if TYPE_CHECKING:
    from desktop.demo import DemoEnvironment


def crm_http_client(
    server: RunningServer, email: str = demo_data.ME.email, password: str = demo_data.DEMO_PASSWORD
) -> httpx.Client:
    """An httpx client on the server's Web API (v9.2) with Basic auth as ``email``; over
    HTTPS it verifies the server with ``server.ca_file``."""
    return httpx.Client(
        base_url=server.url + "/api/data/v9.2/",
        auth=(email, password),
        headers=ODATA_HEADERS,
        timeout=30,
        verify=crm_ssl_context(server),
    )


def crm_ssl_context(server: RunningServer) -> ssl.SSLContext:
    """A client TLS context that trusts ``server.ca_file`` (the system CAs when ``None``)."""
    return ssl.create_default_context(cafile=server.ca_file)


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


@pytest.fixture(scope="session")
def crm_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    folder: Path = tmp_path_factory.mktemp("crm-tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    leaf.private_key_pem.write_to_path(str(folder / "server-key.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
    for pem in leaf.cert_chain_pems[1:]:
        pem.write_to_path(str(folder / "server.pem"), append=True)
    return TlsFiles(
        cert=str(folder / "server.pem"),
        key=str(folder / "server-key.pem"),
        ca=str(folder / "ca.pem"),
    )


@pytest.fixture(scope="session")
def crm_https(
    tmp_path_factory: pytest.TempPathFactory, crm_tls: TlsFiles
) -> Iterator[RunningServer]:
    path: Path = tmp_path_factory.mktemp("crm-https") / "org.db"
    with run_in_thread(Settings(db_path=path, seed="demo"), tls=crm_tls) as server:
        yield server


@pytest.fixture
def fresh_crm_https(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    settings = Settings(db_path=tmp_path / "fresh-org.db", seed="demo")
    with run_in_thread(settings, tls=crm_tls) as server:
        yield server


@pytest.fixture
def crm_client(crm_server: RunningServer) -> Iterator[httpx.Client]:
    with crm_http_client(crm_server) as client:
        yield client
