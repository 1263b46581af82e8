"""Slowing down password guessing on the sign-in page, the device page and the password grant.

Failures are counted per account (the login name as typed, known or not, so the answer does
not tell which accounts exist) and per client address. From the ``limit``-th failure on, that
key is refused for ``lockout`` seconds, doubling with every further failure (at most an hour).
A success clears the account's count; a key without failures for an hour is forgotten. State
is in memory: a restart forgives, which is acceptable for an emulator.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_LOCKOUT = 3600.0
FORGET_AFTER = 3600.0
MAX_KEYS = 100_000


@dataclass
class _Count:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class SigninThrottle:
    def __init__(
        self,
        *,
        account_limit: int,
        address_limit: int,
        lockout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account_limit = account_limit
        self.address_limit = address_limit
        self.lockout = lockout
        self._clock = clock
        self._counts: dict[tuple[str, str], _Count] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(account: str, address: str) -> list[tuple[str, str]]:
        keys = [("address", address)]
        if account.strip():
            keys.append(("account", account.strip().lower()))
        return keys

    def retry_after(self, account: str, address: str) -> int:
        """Seconds until an attempt is allowed (0: now)."""
        now = self._clock()
        with self._lock:
            wait = 0.0
            for key in self._keys(account, address):
                count = self._counts.get(key)
                if count is not None:
                    wait = max(wait, count.locked_until - now)
            return math.ceil(wait) if wait > 0 else 0

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._counts) > MAX_KEYS:
                self._forget(now)
            for key in self._keys(account, address):
                count = self._counts.setdefault(key, _Count())
                if now - count.last_failure > FORGET_AFTER:
                    count.failures = 0
                count.failures += 1
                count.last_failure = now
                limit = self.account_limit if key[0] == "account" else self.address_limit
                if count.failures >= limit:
                    delay = min(self.lockout * 2 ** (count.failures - limit), MAX_LOCKOUT)
                    count.locked_until = now + delay

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._counts.pop(("account", account.strip().lower()), None)

    def _forget(self, now: float) -> None:
        stale = [k for k, c in self._counts.items() if now - c.last_failure > FORGET_AFTER]
        for key in stale:
            del self._counts[key]
        if len(self._counts) > MAX_KEYS:
            self._counts.clear()
