"""Secrets go to the keyring only; no backend means a clear error, never a file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from core.config import credentials
from core.config.credentials import CredentialsUnavailable, SecretKind
from tests.memory_keyring import MemoryKeyring


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in credentials.ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)


def test_roundtrip_through_the_keyring(memory_keyring: MemoryKeyring, no_env: None) -> None:
    assert credentials.get_secret("work", SecretKind.CRM, "alex") is None
    assert credentials.set_secret("work", "crm", "alex", "s3cret") is True
    assert credentials.get_secret("work", "crm", "alex") == "s3cret"
    assert credentials.get_secret("work", "mail", "alex") is None  # kinds are separate
    assert credentials.get_secret("home", "crm", "alex") is None  # profiles are separate
    credentials.delete_secret("work", "crm", "alex")
    credentials.delete_secret("work", "crm", "alex")  # twice is fine
    assert credentials.get_secret("work", "crm", "alex") is None


def test_environment_wins_and_stores_nothing(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKBOX_CRM_PASSWORD", "from-env")
    monkeypatch.delenv("TRACKBOX_MAIL_PASSWORD", raising=False)
    assert credentials.set_secret("work", "crm", "alex", "typed") is False
    assert credentials.get_secret("work", "crm", "alex") == "from-env"
    assert memory_keyring._secrets == {}
    credentials.set_secret("work", "mail", "alex", "mailpw")
    assert credentials.get_secret("work", "mail", "alex") == "mailpw"


def test_no_backend_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, no_env: None, tmp_path: Path
) -> None:
    previous = keyring.get_keyring()
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(CredentialsUnavailable) as info:
            credentials.set_secret("work", "crm", "alex", "s3cret")
        message = str(info.value)
        assert "PYTHON_KEYRING_BACKEND" in message and "gnome-keyring" in message
        assert "s3cret" not in message
        with pytest.raises(CredentialsUnavailable):
            credentials.get_secret("work", "crm", "alex")
        assert credentials.describe_backend().startswith("unavailable")
        # the environment still works without any keyring
        monkeypatch.setenv("TRACKBOX_CRM_PASSWORD", "env")
        assert credentials.get_secret("work", "crm", "alex") == "env"
    finally:
        keyring.set_keyring(previous)


class _PlaintextLike(MemoryKeyring):
    """Stands for keyrings.alt's file backend (not installed here) by its module name."""


_PlaintextLike.__module__ = "keyrings.alt.file"


def test_plaintext_backend_chosen_silently_is_refused(
    monkeypatch: pytest.MonkeyPatch, no_env: None
) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(_PlaintextLike())
    try:
        monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
        with pytest.raises(CredentialsUnavailable, match="plaintext"):
            credentials.set_secret("work", "crm", "alex", "s3cret")
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
        assert credentials.set_secret("work", "crm", "alex", "s3cret")  # chosen by the user
    finally:
        keyring.set_keyring(previous)
