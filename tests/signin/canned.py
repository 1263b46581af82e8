"""A loopback HTTP server that answers every request with what the test set (status, headers,
body) and records what it was asked, for the parts of sign-in that only read one answer: the
401 challenge and the Global Discovery Service's instance list."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Canned:
    status: int = 401
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""


@contextmanager
def canned_server() -> Iterator[Canned]:
    canned = Canned()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802
            canned.seen.append((self.command, self.path, dict(self.headers.items())))
            self.send_response(canned.status)
            for key, value in canned.headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(canned.body)))
            self.end_headers()
            self.wfile.write(canned.body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    canned.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        yield canned
    finally:
        httpd.shutdown()
        httpd.server_close()
