"""The HTTP side of the fake Exchange server: one ``ThreadingHTTPServer`` per listening socket,
plain or TLS, routing ``/EWS/Exchange.asmx`` (EWS SOAP) and ``/autodiscover/autodiscover.svc``
(SOAP autodiscover, TLS only, as exchangelib never tries it in clear), with authentication per
connection (:class:`tests.fakes.ews_auth.ConnectionAuth`: NTLM authenticates a connection).

Anything else — another path, a GET, a HEAD outside autodiscover — is answered 404 and recorded
in the server's ``problems`` (a test failure). Every request goes to ``http_log`` as
``"POST /EWS/Exchange.asmx -> 401"``, so a test can check the sequence a client went through.
"""

from __future__ import annotations

import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tests.fakes.ews_auth import ConnectionAuth, Verdict
from tests.fakes.ews_autodiscover import fault, get_user_settings
from tests.fakes.ews_xml import NotUnderstood

if TYPE_CHECKING:
    from tests.fakes.ews_server import FakeEwsServer

EWS_PATH = "/ews/exchange.asmx"
AUTODISCOVER_PATH = "/autodiscover/autodiscover.svc"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (refused our certificate, closed mid-request) is not news."""


def listen(server: FakeEwsServer, port: int, tls: tuple[Path, Path] | None) -> _Server:
    """Bind 127.0.0.1:``port``; raises ``OSError`` if that is not possible (443 needs root)."""
    cert_der: bytes | None = None
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        cert_der = ssl.PEM_cert_to_DER_cert(tls[0].read_text())
    httpd = _Server(("127.0.0.1", port), _handler(server, cert_der))
    if tls is not None:
        # The handshake happens in the connection's thread, not in the accept loop.
        httpd.socket = ctx.wrap_socket(
            httpd.socket, server_side=True, do_handshake_on_connect=False
        )
    return httpd


def _handler(server: FakeEwsServer, cert_der: bytes | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # else every request stalls ~40 ms
        protocol_version = "HTTP/1.1"
        auth: ConnectionAuth

        def setup(self) -> None:
            if isinstance(self.request, ssl.SSLSocket):
                self.request.settimeout(10)
                self.request.do_handshake()
                self.request.settimeout(None)
            super().setup()
            self.auth = ConnectionAuth(
                server.schemes,
                basic=server.basic_user,
                bearer=server.tokens.get,
                ntlm_mailbox=server.ntlm_mailbox,
                accounts=server.ntlm_accounts,
                log=server.auth_log,
                peer_cert=cert_der,
            )

        def do_POST(self) -> None:  # noqa: N802 (http.server API)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            path = urlsplit(self.path).path.lower()
            if path == EWS_PATH:
                verdict = self.auth.check(self.headers.get("Authorization", ""))
                if verdict.user is None:
                    return self._denied(verdict)
                status, data, op = server.handle(verdict.user, body)
                return self._send(status, data, op)
            if path == AUTODISCOVER_PATH and cert_der is not None:
                verdict = self.auth.check(self.headers.get("Authorization", ""))
                if verdict.user is None:
                    return self._denied(verdict)
                return self._autodiscover(body)
            return self._unknown()

        def do_HEAD(self) -> None:  # noqa: N802
            """exchangelib checks an autodiscover URL it was pointed to (DNS SRV, a redirect)
            with an unauthenticated HEAD; IIS answers 401 with its challenge."""
            if urlsplit(self.path).path.lower() == AUTODISCOVER_PATH and cert_der is not None:
                return self._denied(self.auth.offer(), body=False)
            return self._unknown()

        def do_GET(self) -> None:  # noqa: N802
            self._unknown()

        def _autodiscover(self, body: bytes) -> None:
            host = self.headers.get("Host", server.host)
            endpoint = f"https://{host}{urlsplit(self.path).path}"
            try:
                data = get_user_settings(body, server.autodiscover_settings, endpoint)
            except NotUnderstood as exc:
                server.problems.append(f"autodiscover: {exc}")
                return self._send(500, fault(str(exc)), "autodiscover fault")
            self._send(200, data, "GetUserSettings")

        def _denied(self, verdict: Verdict, body: bool = True) -> None:
            self._send(
                401,
                verdict.body if body else b"",
                verdict.note,
                [("WWW-Authenticate", c) for c in verdict.challenge],
                content_length=len(verdict.body),
            )

        def _unknown(self) -> None:
            server.problems.append(f"{self.command} {self.path}")
            self._send(404, b"", "unknown")

        def _send(
            self,
            status: int,
            data: bytes,
            note: str,
            headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
            content_length: int | None = None,
        ) -> None:
            server.http_log.append(f"{self.command} {urlsplit(self.path).path} -> {status} {note}")
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            for k, v in headers:
                self.send_header(k, v)
            self.send_header(
                "Content-Length", str(len(data) if content_length is None else content_length)
            )
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
