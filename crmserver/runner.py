"""Run the emulator on a background thread (for ``trackbox demo`` and for tests).

The listening socket is bound before the thread starts, so port 0 works and ``url`` is known
at once; :func:`run_in_thread` returns once uvicorn reports it is serving.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from types import TracebackType

import uvicorn
from starlette.middleware import Middleware

from .app import Settings, create_app

START_TIMEOUT = 30.0
#: Request line + headers: long ``$filter``s (50 Message-IDs ORed) pass h11's 16 KiB default.
MAX_HEAD_BYTES = 64 * 1024


class RunningServer:
    """A started emulator: ``url`` is the root (``http://127.0.0.1:PORT``); the Web API is at
    ``url + "/api/data/v9.2/"``."""

    def __init__(
        self,
        server: uvicorn.Server,
        thread: threading.Thread,
        sock: socket.socket,
        settings: Settings,
    ) -> None:
        self._server = server
        self._thread = thread
        self._sock = sock
        self.settings = settings
        host, port = sock.getsockname()[:2]
        self.host = host
        self.port = int(port)
        self.url = root_url(host, self.port)

    @property
    def api_url(self) -> str:
        return self.url + "/api/data/v9.2/"

    def stop(self) -> None:
        self._server.should_exit = True
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


def root_url(host: str, port: int) -> str:
    """``http://host:port`` (an IPv6 host in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def run_in_thread(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    middleware: Sequence[Middleware] = (),
) -> RunningServer:
    """Start the emulator; raises RuntimeError if it does not come up. ``middleware``: see
    :func:`create_app`."""
    app = create_app(settings, middleware=middleware)
    sock = listen(host, port)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )
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
    return RunningServer(server, thread, sock, settings)
