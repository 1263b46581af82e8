"""A Dynamics 365 on-premises front end for tests: a loopback HTTP(S) reverse proxy that demands
Windows sign-in (NTLM, or Negotiate) the way IIS does, and forwards authenticated requests to
the CRM emulator with HTTP Basic credentials of the mapped CRM user.

NTLM is verified by a real acceptor, pyspnego's, through :class:`tests.fakes.ews_auth.
ConnectionAuth` (the fake Exchange's per-connection state, reused as is): the account file is
:class:`tests.fakes.ews_auth.NtlmAccounts` (``NTLM_USER_FILE``, the ``ntlm_accounts`` fixture).
``Negotiate`` (SPNEGO; NTLM inside, as there is no Kerberos here) has its own small
per-connection state below, verified by ``spnego.server(protocol="negotiate")``. Like IIS, an
authenticated connection needs no ``Authorization`` header on later requests. Over TLS the
acceptor checks the client's channel binding (``tls-server-end-point``).

Every request goes to :attr:`NtlmProxy.http_log` as ``"GET /api/data/v9.2/WhoAmI -> 200"``;
sign-ins and refusals to :attr:`NtlmProxy.auth_log`.
"""

from __future__ import annotations

import base64
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import spnego
from spnego.exceptions import SpnegoError

from tests.fakes.ews_auth import AuthLog, ConnectionAuth, NtlmAccounts, Verdict, _channel_bindings

#: Hop-by-hop headers (and ones httpx recomputes) that a proxy does not pass on.
_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "host",
    "authorization",
    "proxy-authorization",
    "te",
    "upgrade",
}


class NegotiateConnection:
    """Negotiate (SPNEGO) state of one connection, with :class:`ConnectionAuth`'s interface."""

    def __init__(self, mailbox: Any, accounts: NtlmAccounts, log: AuthLog, cbt: Any) -> None:
        self._mailbox = mailbox
        self._accounts = accounts
        self._log = log
        self._cbt = cbt
        self._ctx: Any = None
        self.user: str | None = None

    def offer(self, note: str = "offer") -> Verdict:
        return Verdict(None, ["Negotiate"], note=note)

    def check(self, header: str) -> Verdict:
        kind, _, cred = header.strip().partition(" ")
        if not kind:
            return Verdict(self.user) if self.user else self.offer()
        if kind.lower() != "negotiate":
            return self._refuse(f"{kind}: scheme not offered (Negotiate)")
        self._accounts.check_environment()
        try:
            token = base64.b64decode(cred.strip(), validate=True)
        except ValueError:
            return self._refuse("Negotiate: token is not base64")
        if self._ctx is None:
            self.user = None
            self._ctx = spnego.server(
                protocol="negotiate", service="HTTP", channel_bindings=self._cbt
            )
        try:
            out = self._ctx.step(token)
        except SpnegoError as exc:
            return self._refuse(f"Negotiate: {exc}")
        if not self._ctx.complete:
            return Verdict(
                None, ["Negotiate " + base64.b64encode(out or b"").decode()], b"", "challenge"
            )
        principal = self._ctx.client_principal or ""
        self._ctx = None
        user = self._mailbox(principal)
        if user is None:
            return self._refuse(f"Negotiate: {principal} is not a CRM user")
        self.user = user
        self._log.signins.append(("negotiate", principal))
        final = ["Negotiate " + base64.b64encode(out).decode()] if out else []
        return Verdict(user, final)

    def _refuse(self, why: str) -> Verdict:
        self._ctx = None
        self.user = None
        self._log.refusals.append(why)
        return self.offer(f"refused: {why}")


class NtlmProxy:
    """``url`` is the on-premises CRM's root (``http(s)://127.0.0.1:PORT``). ``users`` maps
    ``DOMAIN\\user`` (as pyspnego reports it) to the CRM e-mail and password the request is
    forwarded with; :meth:`add_user` also writes the NTLM account file."""

    def __init__(
        self,
        upstream: str,
        accounts: NtlmAccounts,
        *,
        scheme: str = "NTLM",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        if scheme not in ("NTLM", "Negotiate"):
            raise ValueError(f"scheme must be NTLM or Negotiate, not {scheme!r}")
        self.upstream = upstream.rstrip("/")
        self.accounts = accounts
        self.scheme = scheme
        self.tls = tls
        self.users: dict[str, tuple[str, str]] = {}
        self.auth_log = AuthLog()
        self.http_log: list[str] = []
        self._http = httpx.Client(base_url=self.upstream, timeout=30)
        self._cert_der: bytes | None = None
        self.httpd: ThreadingHTTPServer | None = None

    def add_user(self, principal: str, password: str, crm_email: str, crm_password: str) -> None:
        self.accounts.add(principal, password)
        self.users[principal.upper()] = (crm_email, crm_password)

    def crm_user(self, principal: str) -> str | None:
        found = self.users.get(principal.upper())
        return principal.upper() if found else None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> NtlmProxy:
        ctx: ssl.SSLContext | None = None
        if self.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            self._cert_der = ssl.PEM_cert_to_DER_cert(self.tls[0].read_text())
        httpd = _Server(("127.0.0.1", 0), _handler(self))
        if ctx is not None:
            httpd.socket = ctx.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.httpd = httpd
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        self._http.close()

    def connection_auth(self) -> ConnectionAuth | NegotiateConnection:
        if self.scheme == "Negotiate":
            cbt = _channel_bindings(self._cert_der) if self._cert_der else None
            return NegotiateConnection(self.crm_user, self.accounts, self.auth_log, cbt)
        return ConnectionAuth(
            ("NTLM",),
            basic=lambda user, password: None,
            bearer=lambda token: None,
            ntlm_mailbox=self.crm_user,
            accounts=self.accounts,
            log=self.auth_log,
            peer_cert=self._cert_der,
        )

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes, principal: str
    ) -> httpx.Response:
        email, password = self.users[principal]
        return self._http.request(
            method,
            path,
            headers={k: v for k, v in headers.items() if k.lower() not in _HOP},
            content=body,
            auth=(email, password),
        )


@contextmanager
def running_proxy(
    upstream: str,
    accounts: NtlmAccounts,
    *,
    scheme: str = "NTLM",
    tls: tuple[Path, Path] | None = None,
) -> Iterator[NtlmProxy]:
    proxy = NtlmProxy(upstream, accounts, scheme=scheme, tls=tls).start()
    try:
        yield proxy
    finally:
        proxy.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up mid-request is not news."""


def _handler(proxy: NtlmProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # else every request stalls ~40 ms
        protocol_version = "HTTP/1.1"
        auth: ConnectionAuth | NegotiateConnection

        def setup(self) -> None:
            if isinstance(self.request, ssl.SSLSocket):
                self.request.settimeout(10)
                self.request.do_handshake()
                self.request.settimeout(None)
            super().setup()
            self.auth = proxy.connection_auth()

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            verdict = self.auth.check(self.headers.get("Authorization", ""))
            if verdict.user is None:
                return self._send(
                    401,
                    verdict.body,
                    [("WWW-Authenticate", c) for c in verdict.challenge],
                    verdict.note,
                )
            upstream = proxy.forward(
                self.command, self.path, dict(self.headers.items()), body, verdict.user
            )
            # As a reverse proxy must: the links the CRM writes (nextLink, deltaLink,
            # OData-EntityId) name the proxy, the only origin the client trusts.
            ours, theirs = proxy.url, proxy.upstream
            headers = [
                (k, v.replace(theirs, ours))
                for k, v in upstream.headers.items()
                if k.lower() not in _HOP
            ]
            headers += [("WWW-Authenticate", c) for c in verdict.challenge]
            data = upstream.content.replace(theirs.encode(), ours.encode())
            self._send(upstream.status_code, data, headers, "")

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any  # noqa: N815

        def _send(
            self, status: int, data: bytes, headers: list[tuple[str, str]], note: str
        ) -> None:
            path = self.path.split("?", 1)[0]
            proxy.http_log.append(
                f"{self.command} {path} -> {status}" + (f" {note}" if note else "")
            )
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            if not any(k.lower() == "content-type" for k, _ in headers):
                self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
