"""MSAL's token cache, persisted through a :class:`CacheStore` (the system keyring, see
``core.config.credentials.TokenCacheStore``) and never a plain file.

The cache holds refresh tokens: a secret as good as a password for weeks. It is loaded once
when a sign-in object is made and written back whenever MSAL changed it
(``has_state_changed``: a sign-in, a renewal, a sign-out). A stored cache that does not read
(not JSON, not MSAL's shape, chunks that do not add up) is a *warning*, not a crash: the user
is simply asked to sign in again. Two programs of one profile writing at once: the last write
wins, which costs at most a sign-in.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Protocol

import msal

log = logging.getLogger("trackbox.signin")


class CacheStore(Protocol):
    """Where a serialised cache lives: ``load`` gives the text (None: nothing stored; it may
    warn and give None for an unreadable entry), ``save`` replaces it, ``clear`` removes it."""

    def load(self) -> str | None: ...

    def save(self, text: str) -> None: ...

    def clear(self) -> None: ...


class MemoryCacheStore:
    """A store that forgets on exit (scripts, and the demo's throwaway sign-ins)."""

    def __init__(self, text: str | None = None) -> None:
        self.text = text

    def load(self) -> str | None:
        return self.text

    def save(self, text: str) -> None:
        self.text = text

    def clear(self) -> None:
        self.text = None


class PersistentTokenCache(msal.SerializableTokenCache):  # type: ignore[misc]
    """A ``SerializableTokenCache`` read from ``store`` at once and written back by
    :meth:`persist` when it changed."""

    def __init__(self, store: CacheStore) -> None:
        super().__init__()
        self.store = store
        self._persist_lock = threading.Lock()
        self.corrupt = False  # the stored cache did not read: it started empty
        text = store.load()
        if not text:
            return
        if not _looks_like_cache(text):
            self.corrupt = True
            log.warning("token cache unreadable: starting empty (sign in again)")
            return
        self.deserialize(text)

    def persist(self) -> bool:
        """Write the cache back if MSAL changed it; True when it wrote."""
        with self._persist_lock:
            if not self.has_state_changed:
                return False
            self.store.save(self.serialize())
            return True

    def clear(self) -> None:
        """Forget every account and token, here and in the store."""
        with self._persist_lock:
            self.deserialize("{}")
            self.store.clear()
            self.has_state_changed = False


def _looks_like_cache(text: str) -> bool:
    """MSAL's serialised shape: a JSON object of sections, each an object of objects."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return False
    if not isinstance(data, dict):
        return False
    return all(
        isinstance(section, dict) and all(isinstance(entry, dict) for entry in section.values())
        for section in data.values()
    )


__all__ = ["CacheStore", "MemoryCacheStore", "PersistentTokenCache"]
