"""A real Radicale (CalDAV/CardDAV) server on loopback for the PIM tests (issue 20).

``radicale_server`` (session): Radicale (Debian package ``radicale``; GPL: run as a separate
process, never imported) on a free port with its own storage folder, htpasswd auth with plain
passwords, no system config. Missing: skip locally, fail in CI (``CI=true``).
``radicale_book`` (function): a new, empty address book of the test user; ``.url`` is the
collection, ``.auth`` the (user, password) pair. ``make_collection`` makes more (a calendar
with ``kind="calendar"``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.plugins.mailservers import free_port, require_binary, stop_process, wait_for_port

USER = "pim-user"
PASSWORD = "pim-password"  # a throwaway server's test password, not a secret

_MKCOL = """<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:C="{ns}">
  <D:set><D:prop>
    <D:resourcetype><D:collection/><C:{tag}/></D:resourcetype>
    <D:displayname>{name}</D:displayname>{extra}
  </D:prop></D:set>
</D:mkcol>"""


@dataclass
class RadicaleServer:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return (USER, PASSWORD)

    def make_collection(self, name: str | None = None, *, kind: str = "addressbook") -> str:
        """A new collection of the test user (``addressbook`` or ``calendar``); its URL."""
        name = name or f"{kind}-{uuid.uuid4().hex[:10]}"
        if kind == "addressbook":
            ns, tag, extra = "urn:ietf:params:xml:ns:carddav", "addressbook", ""
        else:
            ns, tag = "urn:ietf:params:xml:ns:caldav", "calendar"
            extra = (
                '<C:supported-calendar-component-set><C:comp name="VEVENT"/>'
                '<C:comp name="VTODO"/></C:supported-calendar-component-set>'
            )
        url = f"{self.url}/{USER}/{name}/"
        body = _MKCOL.format(ns=ns, tag=tag, name=name, extra=extra)
        with httpx.Client(auth=self.auth, timeout=30) as client:
            client.request("PROPFIND", f"{self.url}/{USER}/", headers={"Depth": "0"})
            response = client.request(
                "MKCOL", url, content=body, headers={"Content-Type": "application/xml"}
            )
        if response.status_code not in (201, 200):
            raise RuntimeError(f"MKCOL {url}: {response.status_code} {response.text[:300]}")
        return url


@dataclass(frozen=True)
class DavCollection:
    url: str
    auth: tuple[str, str]
    server: RadicaleServer


def memory_dir() -> str | None:
    """``/dev/shm`` when there is one: Radicale fsyncs every write, and on a busy disk that
    makes each PUT ~10x slower (a throwaway server keeps nothing worth a disk)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def start_radicale(root: Path) -> RadicaleServer:
    binary = require_binary("radicale", "radicale")
    users = root / "users"
    users.write_text(f"{USER}:{PASSWORD}\n")
    (root / "collections").mkdir()
    port = free_port()
    log = root / "radicale.log"
    args = [
        binary,
        "--config", "",
        "--server-hosts", f"127.0.0.1:{port}",
        "--storage-filesystem-folder", str(root / "collections"),
        "--auth-type", "htpasswd",
        "--auth-htpasswd-filename", str(users),
        "--auth-htpasswd-encryption", "plain",
        "--rights-type", "owner_only",
        "--web-type", "none",
        "--logging-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    wait_for_port(port, "radicale", log)
    return RadicaleServer(root, port, proc)


def stop_radicale(server: RadicaleServer) -> None:
    stop_process(server.proc)


@pytest.fixture(scope="session")
def radicale_server() -> Iterator[RadicaleServer]:
    root = Path(tempfile.mkdtemp(prefix="trackbox-radicale-", dir=memory_dir()))
    server = start_radicale(root)
    try:
        yield server
    finally:
        stop_radicale(server)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def radicale_book(radicale_server: RadicaleServer) -> DavCollection:
    """A new, empty address book of the test user."""
    return DavCollection(radicale_server.make_collection(), radicale_server.auth, radicale_server)
