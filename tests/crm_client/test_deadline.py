"""Every CRM request has a total deadline (issue 18, item 10): a server that trickles its
answer one byte at a time — in the headers, in the body — or never answers at all fails the
request as "unavailable" once the deadline passes, instead of hanging the sync for ever.
Against the real emulator over HTTPS the same transport works, verifies the certificate and
reuses its connection."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator

import httpcore
import httpx
import pytest

from core.crm import BasicAuth, CrmCertificateError, CrmClient, CrmUnavailable
from core.crm.deadline import DeadlineTransport
from core.domain import demo_data
from crmserver import RunningServer
from tests.plugins.crm import crm_ssl_context

#: A generous hang-guard, not a speed requirement: the deadline in these tests is 2 s.
HANG_GUARD = 30.0


class TricklingServer:
    """A loopback HTTP server that reads a request and then answers at one byte per 0.2 s:
    ``headers`` trickles an endless header section, ``body`` sends its headers at once and
    then a 1 MB body a byte at a time, ``silent`` accepts and never says a word (not even a
    TLS handshake)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.mode != "silent":
                    conn.recv(65536)  # the request (its head is all a GET has)
                for byte in self._answer():
                    if self.stop.wait(0.2):
                        return
                    if byte:
                        conn.sendall(byte)
            except OSError:
                return  # the client gave up

    def _answer(self) -> Iterator[bytes]:
        if self.mode == "headers":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            yield from (head[i : i + 1] for i in range(len(head)))
            while True:
                yield from (b"X-Slow: a\r\n"[i : i + 1] for i in range(11))
        if self.mode == "body":
            yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            yield b"Content-Length: 1000000\r\n\r\n"
            while True:
                yield b" "
        while True:
            yield b""

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self._thread.join(5)


@pytest.fixture(params=["headers", "body", "silent"])
def trickling(request: pytest.FixtureRequest) -> Iterator[TricklingServer]:
    server = TricklingServer(request.param)
    yield server
    server.close()


def _client(url: str, transport: httpx.BaseTransport) -> CrmClient:
    auth = BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD)
    return CrmClient(url, auth, timeout=30, get_retries=0, transport=transport)


def test_a_trickling_or_silent_server_fails_the_request_at_its_deadline(
    trickling: TricklingServer,
) -> None:
    """The read timeout (30 s) never fires against one byte per 0.2 s; the deadline does."""
    started = time.monotonic()
    crm = _client(trickling.url, DeadlineTransport(deadline=2))
    with crm, pytest.raises(CrmUnavailable) as raised:
        crm.who_am_i()
    assert time.monotonic() - started < HANG_GUARD
    assert "deadline of 2 s" in str(raised.value)
    assert trickling.connections == 1


def test_a_silent_server_over_https_fails_during_the_handshake_at_its_deadline(
    crm_https: RunningServer,
) -> None:
    server = TricklingServer("silent")
    try:
        url = server.url.replace("http://", "https://")
        transport = DeadlineTransport(deadline=2, verify=crm_ssl_context(crm_https))
        started = time.monotonic()
        with _client(url, transport) as crm, pytest.raises(CrmUnavailable) as raised:
            crm.who_am_i()
        assert time.monotonic() - started < HANG_GUARD
        assert "deadline of 2 s" in str(raised.value)
    finally:
        server.close()


def test_the_deadline_error_is_an_httpx_timeout() -> None:
    """What the CRM client classifies as transient: httpx's TimeoutException."""
    server = TricklingServer("headers")
    try:
        http = httpx.Client(transport=DeadlineTransport(deadline=1))
        with http, pytest.raises(httpx.TimeoutException, match="deadline of 1 s"):
            http.get(server.url)
    finally:
        server.close()


@pytest.mark.parametrize("as_file", [False, True], ids=["ssl-context", "ca-file"])
def test_a_prompt_request_over_https_works_and_reuses_its_connection(
    crm_https: RunningServer, as_file: bool
) -> None:
    verify: ssl.SSLContext | str = crm_https.ca_file if as_file else crm_ssl_context(crm_https)
    assert crm_https.ca_file is not None
    transport = DeadlineTransport(deadline=30, verify=verify)
    with _client(crm_https.url, transport) as crm:
        first = crm.who_am_i()
        second = crm.who_am_i()
        assert first.user_id == second.user_id
        assert len(transport.pool.connections) == 1  # pooled, not one per request


def test_the_certificate_is_still_verified(crm_https: RunningServer) -> None:
    crm = _client(crm_https.url, DeadlineTransport(deadline=30))
    with crm, pytest.raises(CrmCertificateError):
        crm.who_am_i()


def test_the_default_deadline_is_the_documented_one() -> None:
    from core.crm import deadline

    assert DeadlineTransport().deadline == deadline.DEFAULT_REQUEST_DEADLINE == 120.0


def test_httpx_still_keeps_its_pool_in_pool() -> None:
    """The one private attribute used (``core.crm.deadline._use_pool``): if httpx renames
    or changes it, this fails instead of the deadline silently not applying."""
    plain = httpx.HTTPTransport()
    assert isinstance(plain._pool, httpcore.ConnectionPool)
    ours = DeadlineTransport()
    assert ours._pool is ours.pool
    plain.close()
    ours.close()


def test_the_environments_proxy_is_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A transport of our own stops httpx reading the environment: the client reads it."""
    from core.crm.deadline import environment_proxy

    for name in ("https_proxy", "http_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert environment_proxy("https://org.example/api/data/v9.2") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert environment_proxy("https://org.example/api/data/v9.2") == "http://127.0.0.1:9"
    monkeypatch.setenv("NO_PROXY", "org.example")
    assert environment_proxy("https://org.example/api/data/v9.2") is None
    monkeypatch.delenv("NO_PROXY")
    # Through the (closed) proxy port: the CRM is unreachable, not reached directly.
    crm = CrmClient("https://org.example", BasicAuth("u", "p"), get_retries=0)
    with crm, pytest.raises(CrmUnavailable):
        crm.who_am_i()
