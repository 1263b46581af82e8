"""The MSAL token cache lives in the keyring (in chunks Windows can hold), is written back only
when MSAL changed it, and a stored cache that does not read starts empty with a warning."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator

import keyring
import pytest

from core.config.credentials import CHUNK_CHARS, TokenCacheStore
from core.crm.token_cache import MemoryCacheStore, PersistentTokenCache
from tests.memory_keyring import MemoryKeyring

SERVICE = "trackbox:work:token-cache"


@pytest.fixture
def ring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


def _cache_text(entries: int) -> str:
    """A cache in MSAL's serialised shape with ``entries`` refresh tokens."""
    tokens = {
        f"uid.utid-login.example-refreshtoken-client{i}--": {  # MSAL's key for the entry
            "credential_type": "RefreshToken",
            "secret": f"rt-{i}-" + "x" * 400,
            "home_account_id": "uid.utid",
            "environment": "login.example",
            "client_id": f"client{i}",
            "target": "",
        }
        for i in range(entries)
    }
    return json.dumps({"RefreshToken": tokens, "Account": {}, "AccessToken": {}})


def test_chunks_round_trip_and_shrink(ring: MemoryKeyring) -> None:
    store = TokenCacheStore("work")
    assert store.load() is None
    big = _cache_text(12)
    assert len(big) > 4 * CHUNK_CHARS
    store.save(big)
    assert store.load() == big
    pieces = [u for (s, u) in ring._secrets if s == SERVICE and u != "chunks"]
    assert len(pieces) == -(-len(big) // CHUNK_CHARS)
    assert all(len(ring._secrets[(SERVICE, u)]) <= CHUNK_CHARS for u in pieces)
    count, digest = ring._secrets[(SERVICE, "chunks")].split()[1:]
    assert int(count) == len(pieces) and digest == hashlib.sha256(big.encode()).hexdigest()
    small = _cache_text(1)
    store.save(small)
    assert store.load() == small
    assert {u for (s, u) in ring._secrets if s == SERVICE} == {"chunks", "0"}
    assert TokenCacheStore("home").load() is None  # per profile
    store.clear()
    assert not [k for k in ring._secrets if k[0] == SERVICE]


@pytest.mark.parametrize("damage", ["missing piece", "changed piece", "bad header"])
def test_damaged_chunks_read_as_nothing_with_a_warning(
    ring: MemoryKeyring, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    store = TokenCacheStore("work")
    store.save(_cache_text(6))
    if damage == "missing piece":
        del ring._secrets[(SERVICE, "2")]
    elif damage == "changed piece":
        ring._secrets[(SERVICE, "1")] = "tampered"
    else:
        ring._secrets[(SERVICE, "chunks")] = "v9 lots"
    with caplog.at_level(logging.WARNING):
        assert store.load() is None
    assert "token cache" in caplog.text
    store.clear()  # also removes pieces a bad header no longer counts
    assert not [k for k in ring._secrets if k[0] == SERVICE]


@pytest.mark.parametrize(
    "stored", ["{not json", "[1, 2]", '{"AccessToken": ["x"]}', '{"Account": {"k": 1}}']
)
def test_a_corrupt_cache_starts_empty_with_a_warning(
    caplog: pytest.LogCaptureFixture, stored: str
) -> None:
    with caplog.at_level(logging.WARNING):
        cache = PersistentTokenCache(MemoryCacheStore(stored))
    assert cache.corrupt
    assert "token cache unreadable" in caplog.text
    assert list(cache.search(cache.CredentialType.REFRESH_TOKEN)) == []
    assert cache.persist() is False  # nothing changed: the bad entry is not rewritten yet


def test_persist_writes_only_changes_through_the_keyring(ring: MemoryKeyring) -> None:
    store = TokenCacheStore("work")
    store.save(_cache_text(3))
    cache = PersistentTokenCache(store)
    assert not cache.corrupt
    assert len(list(cache.search(cache.CredentialType.REFRESH_TOKEN))) == 3
    assert cache.persist() is False
    [rt, *_] = list(cache.search(cache.CredentialType.REFRESH_TOKEN))
    cache.remove_rt(rt)
    assert cache.persist() is True
    again = PersistentTokenCache(TokenCacheStore("work"))
    assert len(list(again.search(again.CredentialType.REFRESH_TOKEN))) == 2
    again.clear()
    assert TokenCacheStore("work").load() is None
