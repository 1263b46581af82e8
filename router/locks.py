"""Leases that expire: the per-mailbox lock and the scheduler's leadership.

Two workers must never process one mailbox at once (a redelivered message can arrive while the
first worker, cut off from Redis, is still running), and only one scheduler may enqueue. Both
are a *lease*: a key set only if absent (``SET NX PX``) holding a random token, renewed by its
holder, released by a compare-and-delete so a holder whose lease expired never frees a lease
someone else has taken since. A holder that dies simply lets it expire.

:class:`RedisLocks` is the distributed version; :class:`LocalLocks` the in-process one for the
embedded mode (same semantics, TTLs included, so the tests of one hold for the other).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast

from router import KEY_PREFIX

# Compare-and-delete: only the token's owner releases.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Compare-and-extend: only the token's owner renews.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


def new_token() -> str:
    return secrets.token_hex(16)


class Locks(Protocol):
    """Named leases. ``acquire`` answers the token, or None when someone else holds it."""

    def acquire(self, name: str, ttl_s: float, token: str | None = None) -> str | None: ...

    def renew(self, name: str, token: str, ttl_s: float) -> bool: ...

    def release(self, name: str, token: str) -> bool: ...

    def holder(self, name: str) -> str | None: ...


class RedisLocks:
    """Leases in Redis: ``SET key token NX PX ttl``; Lua compare-and-delete / -extend."""

    def __init__(self, client: Any, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)

    def key(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"

    def acquire(self, name: str, ttl_s: float, token: str | None = None) -> str | None:
        token = token or new_token()
        ok = self.client.set(self.key(name), token, nx=True, px=_ms(ttl_s))
        return token if ok else None

    def renew(self, name: str, token: str, ttl_s: float) -> bool:
        return bool(self._renew(keys=[self.key(name)], args=[token, _ms(ttl_s)]))

    def release(self, name: str, token: str) -> bool:
        return bool(self._release(keys=[self.key(name)], args=[token]))

    def holder(self, name: str) -> str | None:
        value = self.client.get(self.key(name))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else cast(str, value)


class LocalLocks:
    """The same leases in one process (embedded mode): a dict under a mutex, TTLs honoured."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: dict[str, tuple[str, float]] = {}

    def _live(self, name: str) -> tuple[str, float] | None:
        entry = self._held.get(name)
        if entry is not None and entry[1] <= time.monotonic():
            del self._held[name]
            return None
        return entry

    def acquire(self, name: str, ttl_s: float, token: str | None = None) -> str | None:
        token = token or new_token()
        with self._mutex:
            if self._live(name) is not None:
                return None
            self._held[name] = (token, time.monotonic() + ttl_s)
            return token

    def renew(self, name: str, token: str, ttl_s: float) -> bool:
        with self._mutex:
            entry = self._live(name)
            if entry is None or entry[0] != token:
                return False
            self._held[name] = (token, time.monotonic() + ttl_s)
            return True

    def release(self, name: str, token: str) -> bool:
        with self._mutex:
            entry = self._live(name)
            if entry is None or entry[0] != token:
                return False
            del self._held[name]
            return True

    def holder(self, name: str) -> str | None:
        with self._mutex:
            entry = self._live(name)
            return entry[0] if entry else None


@contextmanager
def renewed(
    locks: Locks, name: str, token: str, ttl_s: float, also: Callable[[], None] | None = None
) -> Iterator[threading.Event]:
    """Keep a held lease alive while the body runs (renewed every third of its TTL, with
    ``also``: other leases of the same holder); the yielded event is set if a renewal failed,
    i.e. the lease was lost."""
    stop, lost = threading.Event(), threading.Event()

    def keep() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                held = locks.renew(name, token, ttl_s)
                if also is not None:
                    also()
            except Exception:  # a blip reaching Redis: the lease may still be valid, try again
                continue
            if not held:
                lost.set()
                return

    thread = threading.Thread(target=keep, name=f"lease-{name}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
