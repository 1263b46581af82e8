"""A total deadline per mail command (issue 18, item 10), for imaplib/IMAPClient and smtplib.

A socket timeout bounds one receive or one send and starts again with every byte: a server
that answers one byte a second never trips it, and a sync would wait for ever. Here the
connection's socket is wrapped (:class:`DeadlineSocket`) so that every receive and send gets a
timeout cut to the time left before the deadline of the command being run, which the caller
sets with :meth:`CommandClock.bounded`. When none is left, :class:`MailDeadlineExceeded` (a
``TimeoutError``) is raised; the backends report it as ``MailUnavailable`` ("did not finish
within its deadline"). Outside a ``bounded`` block the socket behaves as before (its own
timeout per operation).

TLS stays the ``ssl`` module's: :class:`DeadlineTlsContext` stands in for the caller's
``ssl.SSLContext`` where the libraries call ``wrap_socket`` (implicit TLS and STARTTLS), runs
the handshake under the deadline (``ssl`` bounds a whole handshake by the socket timeout) and
wraps the TLS socket again. Certificate checks are the caller's context's, unchanged.
"""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: Seconds one mail command may take, first byte sent to last byte read, by default.
DEFAULT_COMMAND_DEADLINE = 120.0
#: The slowest line a large transfer is given time for (bytes a second): a command that
#: moves ``n`` known bytes gets ``n / MIN_TRANSFER_RATE`` seconds on top of its deadline.
MIN_TRANSFER_RATE = 64 * 1024
#: No command is given more than this, whatever size it announces (a message of 100 MB).
MAX_COMMAND_DEADLINE = 30 * 60.0


def deadline_for(base: float, size: int = 0) -> float:
    """``base`` seconds plus time for ``size`` bytes at :data:`MIN_TRANSFER_RATE`, capped at
    :data:`MAX_COMMAND_DEADLINE` (never below ``base``)."""
    return max(base, min(base + max(0, size) / MIN_TRANSFER_RATE, MAX_COMMAND_DEADLINE))


def seconds_text(seconds: float) -> str:
    """``2``, ``0.5``, ``183.2``: seconds as people read them in a message."""
    return f"{seconds:.1f}".rstrip("0").rstrip(".")


class MailDeadlineExceeded(TimeoutError):
    """The command's total deadline passed (the server was too slow, or trickled)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the command did not finish within its deadline of {seconds_text(seconds)} s"
        )
        self.seconds = seconds


def deadline_behind(exc: BaseException) -> MailDeadlineExceeded | None:
    """The deadline that ran out behind ``exc`` (imaplib and smtplib wrap socket errors in
    their own), if one did."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MailDeadlineExceeded):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class CommandClock:
    """The deadline of the command now running on one connection (None between commands)."""

    def __init__(self) -> None:
        self._current: tuple[float, float] | None = None  # (monotonic deadline, seconds)

    @contextlib.contextmanager
    def bounded(self, seconds: float) -> Iterator[None]:
        """Run the block under a deadline ``seconds`` from now; inside another block the
        earlier of the two deadlines holds (a command nested in a command gets no more)."""
        previous = self._current
        mine = (time.monotonic() + seconds, seconds)
        self._current = mine if previous is None or mine[0] < previous[0] else previous
        try:
            yield
        finally:
            self._current = previous

    def extend_to(self, seconds: float) -> None:
        """Give the running command ``seconds`` from its start in all, once its size is known
        (a body FETCH after RFC822.SIZE); never shortens it."""
        if self._current is not None:
            deadline, had = self._current
            if seconds > had:
                self._current = (deadline + seconds - had, seconds)

    def limit(self, timeout: float | None) -> tuple[float | None, float | None]:
        """``timeout`` cut to the time left, and the deadline's seconds when the deadline is
        what bounds it. Raises :class:`MailDeadlineExceeded` when no time is left."""
        if self._current is None:
            return timeout, None
        deadline, seconds = self._current
        left = deadline - time.monotonic()
        if left <= 0:
            raise MailDeadlineExceeded(seconds)
        if timeout is None or left < timeout:
            return left, seconds
        return timeout, None


class DeadlineSocket:
    """A connected socket (plain or TLS) whose receives and sends end by the clock's deadline.

    Only what imaplib, IMAPClient and smtplib use is bounded (``recv``, ``recv_into``,
    ``send``, ``sendall``, ``makefile('rb')``); everything else is the wrapped socket's. A
    non-blocking socket (IMAPClient's IDLE polling) is left alone.
    """

    def __init__(self, sock: socket.socket, clock: CommandClock) -> None:
        self.sock = sock
        self.clock = clock
        self._timeout = sock.gettimeout()
        self._io_refs = 0  # socket.SocketIO counts its files on the socket it reads

    def _bounded(self, call: Callable[[], T]) -> T:
        if self._timeout == 0.0:
            return call()
        limit, by_deadline = self.clock.limit(self._timeout)
        self.sock.settimeout(limit)
        try:
            return call()
        except TimeoutError as exc:
            if by_deadline is not None and not isinstance(exc, MailDeadlineExceeded):
                raise MailDeadlineExceeded(by_deadline) from exc
            raise

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return self._bounded(lambda: self.sock.recv(bufsize, flags))

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        return self._bounded(lambda: self.sock.recv_into(buffer, nbytes, flags))

    def send(self, data: Any, flags: int = 0) -> int:
        return self._bounded(lambda: self.sock.send(data, flags))

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Send in pieces, each bounded (``SSLSocket.sendall`` restarts its timeout per
        piece; a server that reads a byte a second must not hold the command)."""
        with memoryview(data) as view, view.cast("B") as octets:
            sent = 0
            while sent < len(octets):
                sent += self.send(octets[sent:], flags)

    def makefile(self, mode: str = "r", buffering: int | None = None, **_: Any) -> Any:
        """A buffered reader over :meth:`recv_into` (the standard ``SocketIO``, so timeouts
        and non-blocking reads behave as on a plain socket)."""
        if mode not in ("r", "rb"):
            raise ValueError(f"DeadlineSocket.makefile supports reading only, not {mode!r}")
        raw = socket.SocketIO(self, "rb")  # type: ignore[arg-type]
        self._io_refs += 1
        return io.BufferedReader(raw, buffering or io.DEFAULT_BUFFER_SIZE)

    def _decref_socketios(self) -> None:
        self._io_refs = max(0, self._io_refs - 1)

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self.sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0
        self.sock.setblocking(flag)

    def close(self) -> None:
        self.sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class DeadlineTlsContext:
    """Stands in for ``context`` where imaplib, IMAPClient and smtplib call ``wrap_socket``:
    the handshake runs under the clock's deadline and the TLS socket comes back wrapped."""

    def __init__(self, context: ssl.SSLContext, clock: CommandClock) -> None:
        self.context = context
        self.clock = clock

    def wrap_socket(
        self, sock: socket.socket | DeadlineSocket, server_hostname: str | None = None, **kw: Any
    ) -> DeadlineSocket:
        raw = sock.sock if isinstance(sock, DeadlineSocket) else sock
        timeout = sock.gettimeout()
        limit, by_deadline = self.clock.limit(timeout)
        raw.settimeout(limit)
        try:
            tls = self.context.wrap_socket(raw, server_hostname=server_hostname, **kw)
        except TimeoutError as exc:
            if by_deadline is not None:
                raise MailDeadlineExceeded(by_deadline) from exc
            raise
        tls.settimeout(timeout)
        return DeadlineSocket(tls, self.clock)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.context, name)


def connect(host: str, port: int, timeout: float | None, clock: CommandClock) -> DeadlineSocket:
    """A TCP connection to ``host:port``, the connect bounded by the clock's deadline too."""
    limit, by_deadline = clock.limit(timeout)
    try:
        sock = socket.create_connection((host, port), limit)
    except TimeoutError as exc:
        if by_deadline is not None:
            raise MailDeadlineExceeded(by_deadline) from exc
        raise
    sock.settimeout(timeout)
    return DeadlineSocket(sock, clock)


__all__ = [
    "DEFAULT_COMMAND_DEADLINE",
    "MAX_COMMAND_DEADLINE",
    "MIN_TRANSFER_RATE",
    "CommandClock",
    "DeadlineSocket",
    "DeadlineTlsContext",
    "MailDeadlineExceeded",
    "connect",
    "deadline_behind",
    "deadline_for",
    "seconds_text",
]
