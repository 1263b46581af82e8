"""A fault-injecting reverse proxy for tests: plain HTTP on loopback in front of the CRM
emulator (HTTP or HTTPS upstream), which spoils a seeded random share of the exchanges the way
networks, gateways and overloaded servers do.

Each request draws at most one :class:`Fault` from a :class:`FaultMix` (a rate per fault) with
the proxy's own seeded RNG, so that a sequential client meets the same faults on every run of a
seed. A fault strikes *before* forwarding (the CRM never saw the request) or *after* it (the
CRM did it, the client does not hear so): both matter for exactly-once.

- ``E500`` / ``E502`` / ``E503``: an error status (an OData error or a gateway's HTML page).
- ``THROTTLE``: 429 with ``Retry-After: 1`` and Dataverse's service protection code (before
  only: a 429 means the CRM ran nothing).
- ``MALFORMED``: a 200 whose body is not JSON (HTML, half a JSON document, garbage).
- ``TRUNCATED``: the answer's head with a Content-Length larger than the body sent, then the
  connection closed.
- ``RESET``: the connection reset (TCP RST) instead of an answer.
- ``SLOW``: the answer 0.5-1 s late.
- ``FOREIGN_LINK``: a collection page gets an ``@odata.nextLink`` to another origin
  (``foreign``, e.g. a :class:`Trap`), which a careful client never follows (after only).

Like a reverse proxy must (and ``tests/fakes/ntlm_proxy.py`` does), links the CRM writes
(nextLink, deltaLink, OData-EntityId) are rewritten to name the proxy. :attr:`FaultProxy.log`
lists ``(method, path, fault, phase)`` for every request; :attr:`FaultProxy.counts` the faults.
"""

from __future__ import annotations

import enum
import json
import random
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

#: Headers a proxy does not pass on (hop-by-hop, and ones httpx recomputes or decodes).
_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "accept-encoding",
    "host",
    "te",
    "upgrade",
    "proxy-authorization",
}


class Fault(enum.StrEnum):
    E500 = "500"
    E502 = "502"
    E503 = "503"
    THROTTLE = "429"
    MALFORMED = "malformed"
    TRUNCATED = "truncated"
    RESET = "reset"
    SLOW = "slow"
    FOREIGN_LINK = "foreign-link"


class Phase(enum.StrEnum):
    BEFORE = "before"  # the CRM never saw the request
    AFTER = "after"  # the CRM did it; the client does not hear so


#: Where each fault can strike.
_PHASES: dict[Fault, tuple[Phase, ...]] = {
    Fault.THROTTLE: (Phase.BEFORE,),
    Fault.FOREIGN_LINK: (Phase.AFTER,),
}
_BOTH = (Phase.BEFORE, Phase.AFTER)
#: Every fault but the foreign link (which a careful client refuses: no retry helps).
_ALL = tuple(f for f in Fault if f is not Fault.FOREIGN_LINK)

_THROTTLED = json.dumps(
    {"error": {"code": "0x80072322", "message": "Number of requests exceeded the limit."}}
).encode()
_GARBAGE = (
    b"<html><body><h1>Proxy notice</h1></body></html>",
    b'{"@odata.context": "$metadata#emails", "value": [{"activityid": ',
    b"\x00\xff\xfe not json at all",
)


@dataclass(frozen=True)
class FaultMix:
    """``rates``: the share of requests each fault strikes (their sum at most 1);
    ``after``: the share of those that strike after forwarding, where both phases apply."""

    name: str
    rates: Mapping[Fault, float]
    after: float = 0.5

    def __post_init__(self) -> None:
        if sum(self.rates.values()) > 1.0:
            raise ValueError(f"fault rates of {self.name} add up to more than 1")

    @classmethod
    def only(cls, fault: Fault, rate: float) -> FaultMix:
        return cls(fault.value, {fault: rate})

    @classmethod
    def mixed(cls, rate: float, faults: tuple[Fault, ...]) -> FaultMix:
        """``rate`` of all requests faulty, shared equally by ``faults``."""
        names = "all" if len(faults) == len(_ALL) else "+".join(f.value for f in faults)
        return cls(f"mixed {rate:.0%} ({names})", dict.fromkeys(faults, rate / len(faults)))

    def draw(self, rng: random.Random) -> tuple[Fault, Phase] | None:
        roll, total = rng.random(), 0.0
        for fault, rate in self.rates.items():
            total += rate
            if roll < total:
                phases = _PHASES.get(fault, _BOTH)
                phase = phases[0] if len(phases) == 1 else phases[rng.random() < self.after]
                return fault, phase
        return None


NO_FAULTS = FaultMix("none", {})


@dataclass(frozen=True)
class Strike:
    """One fault drawn for one request: which, when, how slow (SLOW), which variant of an
    error page or garbage body."""

    fault: Fault
    phase: Phase
    delay: float = 0.0
    variant: int = 0


@dataclass
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class FaultProxy:
    """``upstream``: the CRM's root (``http(s)://127.0.0.1:PORT``), verified with ``verify``;
    ``foreign``: the origin FOREIGN_LINK points to. Start with :func:`running_fault_proxy`."""

    upstream: str
    mix: FaultMix = NO_FAULTS
    seed: int = 0
    verify: ssl.SSLContext | bool = True
    foreign: str = "http://127.0.0.2:9"
    #: Strikes (None: no fault) for the next requests, in order, before the mix draws again.
    script: list[Strike | None] = field(default_factory=list)
    log: list[tuple[str, str, str, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.upstream = self.upstream.rstrip("/")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=self.upstream, timeout=60, verify=self.verify)
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def set_mix(self, mix: FaultMix, seed: int | None = None) -> None:
        """Change the faults from the next request on (and reseed the RNG)."""
        with self._lock:
            self.mix = mix
            if seed is not None:
                self._rng.seed(seed)

    def start(self) -> FaultProxy:
        self.httpd = _Server(("127.0.0.1", 0), _handler(self))
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        self._http.close()

    def draw(self, method: str, path: str) -> Strike | None:
        """The fault for this request, if any (every request draws the same number of
        random values, so a seed replays the same faults for the same requests)."""
        with self._lock:
            if self.script:
                strike = self.script.pop(0)
            else:
                drawn = self.mix.draw(self._rng)
                delay, variant = self._rng.uniform(0.5, 1.0), self._rng.randrange(6)
                strike = Strike(drawn[0], drawn[1], delay, variant) if drawn else None
            if strike is None:
                self.log.append((method, path, "", ""))
                return None
            self.log.append((method, path, strike.fault, strike.phase))
            self.counts[f"{strike.fault} {strike.phase}"] += 1
        return strike

    def forward(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> _Answer:
        upstream = self._http.request(
            method,
            path,
            headers={k: v for k, v in headers.items() if k.lower() not in _HOP},
            content=body,
        )
        ours, theirs = self.url, self.upstream
        return _Answer(
            upstream.status_code,
            [
                (k, v.replace(theirs, ours))
                for k, v in upstream.headers.items()
                if k.lower() not in _HOP
            ],
            upstream.content.replace(theirs.encode(), ours.encode()),
        )

    def foreign_page(self, answer: _Answer) -> _Answer:
        """The page with a nextLink to the foreign origin (unchanged if not a collection)."""
        try:
            page = json.loads(answer.body)
        except ValueError:
            return answer
        if answer.status != 200 or not isinstance(page, dict) or "value" not in page:
            return answer
        page["@odata.nextLink"] = f"{self.foreign}/api/data/v9.2/emails?$skiptoken=stolen"
        return _Answer(answer.status, answer.headers, json.dumps(page).encode())


@contextmanager
def running_fault_proxy(
    upstream: str,
    mix: FaultMix = NO_FAULTS,
    *,
    seed: int = 0,
    verify: ssl.SSLContext | bool = True,
    foreign: str = "http://127.0.0.2:9",
) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, mix, seed, verify, foreign).start()
    try:
        yield proxy
    finally:
        proxy.stop()


class Trap:
    """A listener that stands for a foreign host: counts every connection made to it and
    answers nothing useful. ``url`` is its origin."""

    def __init__(self) -> None:
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection the proxy itself broke, or a client that gave up, is not news."""


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # else every request stalls ~40 ms
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            path = self.path.split("?", 1)[0]
            strike = proxy.draw(self.command, path)
            if strike is not None and strike.phase is Phase.BEFORE and self._strike(strike, None):
                return
            answer = proxy.forward(self.command, self.path, dict(self.headers.items()), body)
            if strike is not None and strike.phase is Phase.AFTER and self._strike(strike, answer):
                return
            self._send(answer)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any  # noqa: N815

        def _strike(self, strike: Strike, answer: _Answer | None) -> bool:
            """Answer with the fault (True), or leave the answering to the caller (False):
            a slow answer after a delay, a foreign link in the page."""
            fault = strike.fault
            if fault in (Fault.E500, Fault.E502, Fault.E503):
                self._send(_error(int(fault.value), gateway=strike.variant % 2 == 1))
            elif fault is Fault.THROTTLE:
                headers = [("Content-Type", "application/json"), ("Retry-After", "1")]
                self._send(_Answer(429, headers, _THROTTLED))
            elif fault is Fault.MALFORMED:
                garbage = _GARBAGE[strike.variant % len(_GARBAGE)]
                self._send(_Answer(200, [("Content-Type", "application/json")], garbage))
            elif fault is Fault.TRUNCATED:
                whole = answer or _Answer(200, [("Content-Type", "application/json")], _GARBAGE[1])
                self._send(whole, truncate=True)
                self.close_connection = True
            elif fault is Fault.RESET:
                self._reset()
            elif fault is Fault.SLOW:
                time.sleep(strike.delay)
                return False
            elif fault is Fault.FOREIGN_LINK and answer is not None:
                self._send(proxy.foreign_page(answer))
            else:
                return False
            return True

        def _send(self, answer: _Answer, *, truncate: bool = False) -> None:
            data = answer.body
            self.send_response(answer.status)
            for key, value in answer.headers:
                self.send_header(key, value)
            if not any(k.lower() == "content-type" for k, _ in answer.headers):
                self.send_header("Content-Type", "text/plain; charset=utf-8")
            if answer.status != 204:
                # Truncated: the length of the whole answer (at least one byte more than
                # sent), then only its first half.
                self.send_header("Content-Length", str(len(data) + (1 if truncate else 0)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if truncate else data)
            self.wfile.flush()

        def _reset(self) -> None:
            """Close with a TCP RST (SO_LINGER 0): the client reads "connection reset"."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def finish(self) -> None:
            try:
                super().finish()
            except (OSError, ValueError):
                pass  # the socket this handler reset on purpose

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def _error(status: int, *, gateway: bool) -> _Answer:
    """An error page: a gateway's HTML, or the CRM's own OData error."""
    if gateway:
        page = f"<html><body><h1>{status} Bad Gateway</h1></body></html>".encode()
        return _Answer(status, [("Content-Type", "text/html")], page)
    error = {
        "error": {"code": "0x80040216", "message": f"An unexpected error occurred ({status})."}
    }
    return _Answer(status, [("Content-Type", "application/json")], json.dumps(error).encode())


__all__ = [
    "NO_FAULTS",
    "Fault",
    "FaultMix",
    "FaultProxy",
    "Phase",
    "Strike",
    "Trap",
    "running_fault_proxy",
]
