"""A TCP proxy for tests that makes a real server slow (issue 18, item 10): on loopback in front
of Dovecot or the SMTP server, it forwards both ways faithfully (TLS passes through untouched)
until told to :meth:`TrickleProxy.trickle` — then the server's answers reach the client one
byte per ``delay`` seconds — or to :meth:`TrickleProxy.stall` — then they do not reach it at
all. :meth:`TrickleProxy.normal` forwards at full speed again. The mode applies at once to
open connections and to new ones; what the client sends always goes through unchanged.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

NORMAL, TRICKLE, STALL = "normal", "trickle", "stall"


class TrickleProxy:
    """Listens on ``127.0.0.1:<port>`` and forwards to ``upstream`` (host, port)."""

    def __init__(self, upstream: tuple[str, int], delay: float = 0.2) -> None:
        self.upstream = upstream
        self.delay = delay
        self.mode = NORMAL
        self.connections = 0  # accepted so far
        self.trickled = 0  # server bytes sent one at a time
        self._changed = threading.Condition()
        self._closed = False
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = "127.0.0.1"
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="trickle-accept", daemon=True).start()

    # --- modes -----------------------------------------------------------------------------

    def _set(self, mode: str) -> None:
        with self._changed:
            self.mode = mode
            self._changed.notify_all()

    def normal(self) -> None:
        self._set(NORMAL)

    def trickle(self) -> None:
        self._set(TRICKLE)

    def stall(self) -> None:
        self._set(STALL)

    # --- plumbing --------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self.connections += 1
            self._socks += [client, server]
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket) -> None:
        """Client to server: always faithful."""
        try:
            while data := client.recv(65536):
                server.sendall(data)
        except OSError:
            pass
        finally:
            _close(server, client)
            with self._changed:
                self._changed.notify_all()

    def _down(self, server: socket.socket, client: socket.socket) -> None:
        """Server to client: at the speed the mode says."""
        try:
            while data := server.recv(65536):
                self._deliver(data, client)
        except OSError:
            pass
        finally:
            _close(server, client)

    def _deliver(self, data: bytes, client: socket.socket) -> None:
        sent = 0
        while sent < len(data):
            with self._changed:
                while self.mode == STALL and not self._closed and client.fileno() != -1:
                    self._changed.wait(0.5)
                mode = self.mode
            if self._closed or client.fileno() == -1:
                raise OSError("proxy or client closed")
            if mode == NORMAL:
                client.sendall(data[sent:])
                return
            client.sendall(data[sent : sent + 1])
            sent += 1
            self.trickled += 1
            with self._changed:
                self._changed.wait(self.delay)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for s in self._socks:
            _close(s)
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> TrickleProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _close(*socks: socket.socket) -> None:
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
