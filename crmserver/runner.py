"""Run the emulator on a background thread (for ``trackbox demo`` and for tests).

The listening socket is bound before the thread starts, so port 0 works and ``url`` is known
at once; :func:`run_in_thread` returns once uvicorn reports it is serving.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Literal

import uvicorn
from starlette.middleware import Middleware
from starlette.types import ASGIApp

from .app import Settings, create_app
from .forwarded import ForwardedMiddleware, check_proxy_settings
from .tls import TlsFiles, check_tls_files

START_TIMEOUT = 30.0
#: Request line + headers: long ``$filter``s (50 Message-IDs ORed) pass h11's 16 KiB default.
MAX_HEAD_BYTES = 64 * 1024
#: Seconds an idle client connection is kept open (IIS and Azure's front doors keep them
#: for minutes; clients pool connections between the requests of a sync).
KEEP_ALIVE_S = 65
#: Seconds :meth:`RunningServer.stop` lets requests in flight finish before it drops them.
GRACE_S = 1.0


class RunningServer:
    """A started emulator: ``url`` is the root (``http://127.0.0.1:PORT``, ``https://…`` when
    it serves TLS); the Web API is at ``url + "/api/data/v9.2/"``. ``ca_file``: the CA a client
    verifies the server with (``verify=ca_file``), when it serves TLS with a private CA."""

    def __init__(
        self,
        server: uvicorn.Server,
        thread: threading.Thread,
        sock: socket.socket,
        settings: Settings,
        tls: TlsFiles | None = None,
    ) -> None:
        self._server = server
        self._thread = thread
        self._sock = sock
        self.settings = settings
        host, port = sock.getsockname()[:2]
        self.host = host
        self.port = int(port)
        self.url = root_url(host, self.port, "https" if tls else "http")
        self.ca_file: str | None = tls.ca if tls else None

    @property
    def api_url(self) -> str:
        return self.url + "/api/data/v9.2/"

    def stop(self) -> None:
        """Stop serving: requests in flight get a moment to finish, then connections still
        open (a client's idle keep-alive pool, a stalled peer) are dropped rather than waited
        for."""
        self._server.should_exit = True
        self._thread.join(timeout=GRACE_S)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: any free port) and listening, so
    connections queue from now on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio only disables Nagle on sockets that say so, and
    # without that every keep-alive response stalls ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def root_url(host: str, port: int, scheme: str = "http") -> str:
    """``http://host:port`` (an IPv6 host in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def server_config(
    app: ASGIApp,
    *,
    tls: TlsFiles | None = None,
    public_url: str | None = None,
    forwarded_allow_ips: str | Sequence[str] | None = None,
    log_level: str = "warning",
    access_log: bool = False,
    lifespan: Literal["auto", "on", "off"] = "auto",
) -> uvicorn.Config:
    """uvicorn's configuration for the emulator app: TLS when ``tls`` is given, and
    :class:`ForwardedMiddleware` outermost (uvicorn's own proxy-header handling is off: it
    trusts loopback by default, and only our middleware decides which peers are trusted).
    Raises :class:`~crmserver.forwarded.ProxySettingError` for a bad ``public_url`` or
    ``forwarded_allow_ips``."""
    wrapped = ForwardedMiddleware(app, public_url=public_url, trusted=forwarded_allow_ips)
    return uvicorn.Config(
        wrapped,
        log_level=log_level,
        access_log=access_log,
        lifespan=lifespan,
        proxy_headers=False,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        # Longer than a device-code sign-in's 5 s poll: with uvicorn's 5 s default a poll
        # could meet the connection as the server closes it (requests does not resend a POST).
        timeout_keep_alive=KEEP_ALIVE_S,
        ssl_certfile=tls.cert if tls else None,
        ssl_keyfile=tls.key if tls else None,
    )


def run_in_thread(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    middleware: Sequence[Middleware] = (),
    tls: TlsFiles | None = None,
    public_url: str | None = None,
    forwarded_allow_ips: str | Sequence[str] | None = None,
) -> RunningServer:
    """Start the emulator; raises RuntimeError if it does not come up. ``middleware``: see
    :func:`create_app`. ``tls``: serve HTTPS with these files (``url`` is then
    ``https://…``). ``public_url`` / ``forwarded_allow_ips``: the root clients see behind a
    reverse proxy, or the proxies whose forwarded headers are honoured (see
    :mod:`crmserver.forwarded`). Invalid values raise ``ProxySettingError`` or
    ``TlsFilesError`` before anything starts."""
    check_proxy_settings(public_url, forwarded_allow_ips)
    if tls is not None:
        check_tls_files(tls)
    app = create_app(settings, middleware=middleware)
    config = server_config(
        app,
        tls=tls,
        public_url=public_url,
        forwarded_allow_ips=forwarded_allow_ips,
        lifespan="on",
    )
    sock = listen(host, port)
    server = uvicorn.Server(config)
    # uvicorn installs signal handlers only on the main thread, so none are taken here.
    started = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the starting thread
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=serve, name="trackbox-crm", daemon=True)
    thread.start()
    waited = 0.0
    while not server.started and not started.is_set() and waited < START_TIMEOUT:
        started.wait(0.01)
        waited += 0.01
    if not server.started:
        server.should_exit = True
        sock.close()
        raise RuntimeError(
            f"trackbox-crm did not start on {host}:{port}: {failure[0] if failure else 'timeout'}"
        )
    return RunningServer(server, thread, sock, settings, tls)
