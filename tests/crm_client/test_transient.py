"""Transient failures (429/503 with Retry-After, 5xx) against a scripted HTTP server on
loopback: the emulator cannot be told to throttle, so this tiny server answers from a script
and records what the client sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.crm import BasicAuth, CrmClient, CrmPermanentError, CrmUnavailable


class Scripted(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: list[tuple[int, dict[str, str], bytes]] = []
        self.seen: list[tuple[str, str, dict[str, str]]] = []


class Handler(BaseHTTPRequestHandler):
    server: Scripted
    disable_nagle_algorithm = True

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        status, headers, body = self.server.script.pop(0)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _client(server: Scripted) -> CrmClient:
    host, port = server.server_address[:2]
    return CrmClient(
        f"http://{host!s}:{port}", BasicAuth("u", "secret-pw"), get_retries=2, max_retry_wait=5
    )


WHO = json.dumps(
    {
        "UserId": "00000000-0000-0000-0000-000000000001",
        "BusinessUnitId": "00000000-0000-0000-0000-000000000002",
        "OrganizationId": "00000000-0000-0000-0000-000000000003",
    }
).encode()
BUSY = json.dumps({"error": {"code": "0x80072321", "message": "Too many requests"}}).encode()


def test_get_retries_after_retry_after(scripted: Scripted) -> None:
    scripted.script = [
        (429, {"Retry-After": "0"}, BUSY),
        (503, {}, b"down"),
        (200, {"Content-Type": "application/json"}, WHO),
    ]
    with _client(scripted) as crm:
        assert crm.who_am_i().user_id.endswith("1")
    assert len(scripted.seen) == 3
    method, path, headers = scripted.seen[0]
    assert (method, path) == ("GET", "/api/data/v9.2/WhoAmI")
    assert headers["OData-Version"] == "4.0" and headers["Accept"] == "application/json"


def test_gives_up_with_retry_after_when_too_long(scripted: Scripted) -> None:
    scripted.script = [(429, {"Retry-After": "120"}, BUSY)]
    with _client(scripted) as crm, pytest.raises(CrmUnavailable) as info:
        crm.who_am_i()
    assert info.value.retry_after == 120 and info.value.status == 429
    assert len(scripted.seen) == 1


def test_writes_are_never_retried(scripted: Scripted) -> None:
    scripted.script = [(503, {"Retry-After": "0"}, BUSY)]
    with _client(scripted) as crm, pytest.raises(CrmUnavailable):
        crm.create("contacts", {"lastname": "x"})
    assert len(scripted.seen) == 1


def test_error_body_that_is_not_json(scripted: Scripted) -> None:
    scripted.script = [(403, {"Content-Type": "text/html"}, b"<h1>Forbidden</h1>")]
    with _client(scripted) as crm, pytest.raises(CrmPermanentError) as info:
        crm.get("contacts", "00000000-0000-0000-0000-000000000009")
    assert info.value.status == 403 and info.value.code == ""
    assert "secret-pw" not in str(info.value)


def test_create_reads_the_entity_id_header(scripted: Scripted) -> None:
    new = "5f2c1e3a-0000-4000-8000-00000000abcd"
    scripted.script = [(204, {"OData-EntityId": f"http://x/api/data/v9.2/contacts({new})"}, b"")]
    with _client(scripted) as crm:
        assert crm.create("contacts", {"lastname": "x"}) == new
