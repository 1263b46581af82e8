"""Dataverse's service protection limits, enforced by the emulator so that the client can be
tested as a good citizen under them (``reference/microsoft-365.md``, "Dataverse service
protection limits"; Microsoft's "Service protection API limits" page).

Per user, over a sliding window (300 s by default): at most 6,000 requests, 1,200 s of combined
execution time, and 52 requests at once. Over a limit the answer is ``429 Too Many Requests``
with ``Retry-After`` (whole seconds, at least 1: the time until the window admits a request
again) and Dataverse's error body, whose ``code`` says which limit:

=====================  ===============  ==============
limit                  error code       hex code
=====================  ===============  ==============
number of requests     ``-2147015902``  ``0x80072322``
execution time         ``-2147015903``  ``0x80072321``
concurrent requests    ``-2147015898``  ``0x80072326``
=====================  ===============  ==============

The user is the caller the ``Authorization`` header names — read here only to key the
counters; whether the credentials are good is the app's business (``crmserver/auth.py``):
Basic: the user name, case-insensitively; Bearer: the JWT's ``oid`` (else ``sub``) claim, read
without verifying the signature, or a digest of a token that is not a JWT; no header: one
anonymous caller. Only the Web API (``/api/data``) is limited, never the sign-in endpoints.

A 429 opens a *Retry-After window* for its user: every request that arrives before it ends is
answered 429 again and counted as a **violation** (a client that honours Retry-After has none).
:class:`ProtectionStats` keeps, per user, the requests admitted, the 429s (with when they were
answered) and the violations, for tests and benchmarks that read them in-process::

    stats = ProtectionStats()
    run_in_thread(settings, middleware=[
        Middleware(ServiceProtection, limits=Limits(requests=20, window=1), stats=stats)])
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX = "/api/data"
ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Limits:
    """Dataverse's defaults per user and web server: ``requests`` and ``execution`` (seconds
    of combined execution time) over a sliding ``window`` (seconds), and at most
    ``concurrent`` requests at once."""

    requests: int = 6000
    window: float = 300.0
    execution: float = 1200.0
    concurrent: int = 52

    def __post_init__(self) -> None:
        for name in ("requests", "concurrent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise LimitsError(name, str(value), "not a positive whole number")
        for name in ("window", "execution"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise LimitsError(name, str(value), "not a positive number of seconds")
            if not math.isfinite(value):
                raise LimitsError(name, str(value), "not a finite number of seconds")


class LimitsError(ValueError):
    """A limit that cannot be used: ``name`` (``requests``, ``window`` …, or the unknown key
    given), the ``value`` as given, and ``reason``."""

    def __init__(self, name: str, value: str, reason: str) -> None:
        super().__init__(f"limit {name!r} = {value!r}: {reason}")
        self.name = name
        self.value = value
        self.reason = reason


_KEYS = tuple(f.name for f in fields(Limits))


def parse_limits(text: str) -> Limits:
    """``"requests=20,window=1"`` (any of ``requests``, ``window``, ``execution``,
    ``concurrent``; the others keep Dataverse's defaults) as :class:`Limits`. ``window`` and
    ``execution`` are seconds (decimals allowed), the others whole numbers. Raises
    :class:`LimitsError` naming the part that is wrong."""
    given: dict[str, int | float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep:
            raise LimitsError(key, "", f"expected {key}=VALUE")
        if key not in _KEYS:
            raise LimitsError(key, value, f"unknown limit; expected one of {', '.join(_KEYS)}")
        if key in given:
            raise LimitsError(key, value, "given twice")
        try:
            number: int | float = int(value) if key in ("requests", "concurrent") else float(value)
        except ValueError:
            kind = "whole number" if key in ("requests", "concurrent") else "number of seconds"
            raise LimitsError(key, value, f"not a {kind}") from None
        given[key] = number
    if not given:
        raise LimitsError("limits", text, "no limit given; expected e.g. requests=20,window=1")
    return Limits(**given)  # type: ignore[arg-type]  # keys checked against the fields


@dataclass(frozen=True, slots=True)
class Breach:
    """One of the three limits as Dataverse reports it: the SDK's error code and the hex code
    the Web API puts in ``error.code`` (the same 32-bit value)."""

    limit: str
    error_code: int

    @property
    def hex_code(self) -> str:
        return f"0x{self.error_code & 0xFFFFFFFF:08x}"


REQUESTS = Breach("requests", -2147015902)  # 0x80072322
EXECUTION = Breach("execution", -2147015903)  # 0x80072321
CONCURRENT = Breach("concurrent", -2147015898)  # 0x80072326
BREACHES = {b.hex_code: b for b in (REQUESTS, EXECUTION, CONCURRENT)}


def breach_message(breach: Breach, limits: Limits) -> str:
    """Dataverse's wording of each breach."""
    window = f"{limits.window:g}"
    if breach is REQUESTS:
        return (
            f"Number of requests exceeded the limit of {limits.requests} over time window "
            f"of {window} seconds."
        )
    if breach is EXECUTION:
        return (
            f"Combined execution time of incoming requests exceeded limit of "
            f"{round(limits.execution * 1000):,} milliseconds over time window of {window} "
            f"seconds. Decrease number of concurrent requests or reduce the duration of "
            f"requests and try again later."
        )
    return f"Number of concurrent requests exceeded the limit of {limits.concurrent}."


@dataclass(frozen=True, slots=True)
class UserCounts:
    """What one user met: requests admitted, 429 answers (``throttled_at``: when, on the
    middleware's clock), and violations (requests inside a Retry-After window)."""

    admitted: int = 0
    throttled_at: tuple[float, ...] = ()
    violations: int = 0

    @property
    def throttled(self) -> int:
        return len(self.throttled_at)


class ProtectionStats:
    """The counters of one :class:`ServiceProtection`, safe to read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, UserCounts] = {}

    def record(
        self, user: str, *, admitted: int = 0, at: float | None = None, violation: bool = False
    ) -> None:
        """Count ``admitted`` requests, a 429 answered ``at``, a violation."""
        with self._lock:
            old = self._users.get(user, UserCounts())
            self._users[user] = UserCounts(
                old.admitted + admitted,
                old.throttled_at + ((at,) if at is not None else ()),
                old.violations + int(violation),
            )

    def users(self) -> dict[str, UserCounts]:
        """Per user key (see :func:`caller_key`)."""
        with self._lock:
            return dict(self._users)

    def user(self, key: str) -> UserCounts:
        with self._lock:
            return self._users.get(key, UserCounts())

    @property
    def violations(self) -> int:
        return sum(u.violations for u in self.users().values())

    @property
    def throttled(self) -> int:
        """429 answers in all (violations included)."""
        return sum(u.throttled for u in self.users().values())

    @property
    def admitted(self) -> int:
        return sum(u.admitted for u in self.users().values())


@dataclass
class _Ledger:
    """One user's sliding window."""

    arrivals: deque[float] = field(default_factory=deque)
    executions: deque[tuple[float, float]] = field(default_factory=deque)  # (ended, seconds)
    execution_total: float = 0.0
    in_flight: int = 0
    blocked_until: float = 0.0
    blocked_by: Breach = REQUESTS


@dataclass(frozen=True, slots=True)
class _Refusal:
    breach: Breach
    retry_after: int


class ServiceProtection:
    """ASGI middleware enforcing :class:`Limits` on ``/api/data`` per caller (see the module
    docstring). ``stats``: where the counters go (a new :class:`ProtectionStats` when None;
    either way ``self.stats``). ``clock``: monotonic seconds."""

    def __init__(
        self,
        app: ASGIApp,
        limits: Limits | None = None,
        *,
        stats: ProtectionStats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.stats = stats if stats is not None else ProtectionStats()
        self.clock = clock
        self._ledgers: dict[str, _Ledger] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_api(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        user = caller_key(_header(scope, b"authorization"))
        refusal = self._admit(user, self.clock())
        if refusal is not None:
            await _drain(receive)
            await _too_many(send, refusal, self.limits)
            return
        started = self.clock()
        finished = False

        async def send_and_finish(message: Message) -> None:
            # The request ends with its last byte, before the client can read it and send
            # the next one (ending it after the app returned let a prompt client's next
            # request still find this one running, with its execution time too long).
            nonlocal finished
            last = message["type"] == "http.response.body" and not message.get("more_body")
            if last and not finished:
                finished = True
                self._finish(user, started, self.clock())
            await send(message)

        try:
            await self.app(scope, receive, send_and_finish)
        finally:
            if not finished:
                self._finish(user, started, self.clock())

    def _admit(self, user: str, now: float) -> _Refusal | None:
        """Admit the request (counted in the window, in flight) or say why not. Runs on the
        event loop only: no lock needed for the ledgers."""
        ledger = self._ledgers.setdefault(user, _Ledger())
        if now < ledger.blocked_until:
            wait = _whole_seconds(ledger.blocked_until - now)
            self.stats.record(user, at=now, violation=True)
            return _Refusal(ledger.blocked_by, wait)
        self._slide(ledger, now)
        refusal = self._breach(ledger, now)
        if refusal is not None:
            ledger.blocked_until = now + refusal.retry_after
            ledger.blocked_by = refusal.breach
            self.stats.record(user, at=now)
            return refusal
        ledger.arrivals.append(now)
        ledger.in_flight += 1
        self.stats.record(user, admitted=1)
        return None

    def _breach(self, ledger: _Ledger, now: float) -> _Refusal | None:
        limits = self.limits
        if ledger.in_flight >= limits.concurrent:
            return _Refusal(CONCURRENT, 1)  # a slot frees when a running request ends
        if len(ledger.arrivals) >= limits.requests:
            oldest = ledger.arrivals[len(ledger.arrivals) - limits.requests]
            return _Refusal(REQUESTS, _whole_seconds(oldest + limits.window - now))
        if ledger.execution_total >= limits.execution:
            # The window admits again once enough of the oldest execution time has left it.
            left = ledger.execution_total
            opens = now
            for ended, seconds in ledger.executions:
                left -= seconds
                opens = ended + limits.window
                if left < limits.execution:
                    break
            return _Refusal(EXECUTION, _whole_seconds(opens - now))
        return None

    def _slide(self, ledger: _Ledger, now: float) -> None:
        start = now - self.limits.window
        while ledger.arrivals and ledger.arrivals[0] <= start:
            ledger.arrivals.popleft()
        while ledger.executions and ledger.executions[0][0] <= start:
            ledger.execution_total -= ledger.executions.popleft()[1]
        if not ledger.executions:
            ledger.execution_total = 0.0  # no float drift left behind

    def _finish(self, user: str, started: float, ended: float) -> None:
        ledger = self._ledgers[user]
        ledger.in_flight -= 1
        seconds = max(0.0, ended - started)
        ledger.executions.append((ended, seconds))
        ledger.execution_total += seconds


def caller_key(authorization: str | None) -> str:
    """Whom a request counts against (see the module docstring); never the secret itself."""
    if not authorization:
        return ANONYMOUS
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "basic-invalid:" + _digest(credentials)
        return "user:" + decoded.partition(":")[0].strip().casefold()
    if scheme.lower() == "bearer":
        claims = _jwt_claims(credentials)
        for claim in ("oid", "sub"):
            value = claims.get(claim)
            if isinstance(value, str) and value:
                return f"{claim}:{value.lower()}"
        return "token:" + _digest(credentials)
    return "other:" + _digest(authorization)


def _jwt_claims(token: str) -> dict[str, object]:
    """The payload of a JWT, unverified (keying only); ``{}`` for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:24]


def _whole_seconds(seconds: float) -> int:
    """Retry-After: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds - 1e-9))


def _is_api(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _drain(receive: Receive) -> None:
    """Read a refused request's body, so that its connection stays usable."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _too_many(send: Send, refusal: _Refusal, limits: Limits) -> None:
    body = json.dumps(
        {
            "error": {
                "code": refusal.breach.hex_code,
                "message": breach_message(refusal.breach, limits),
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json; odata.metadata=minimal; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(refusal.retry_after).encode()),
                (b"odata-version", b"4.0"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = [
    "BREACHES",
    "CONCURRENT",
    "EXECUTION",
    "REQUESTS",
    "Breach",
    "Limits",
    "LimitsError",
    "ProtectionStats",
    "ServiceProtection",
    "UserCounts",
    "breach_message",
    "caller_key",
    "parse_limits",
]
