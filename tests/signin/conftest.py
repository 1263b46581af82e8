"""Fixtures of the sign-in tests: a fresh in-memory keyring, a private TRACKBOX_HOME, and the
``trackbox`` headless commands run in this process (so that the keyring — and the token cache
in it — lives from one command to the next, as the system keyring does)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import keyring
import pytest

from core.cli import add_commands
from core.config import credentials
from tests.memory_keyring import MemoryKeyring


@pytest.fixture
def ring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    for var in credentials.ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


@dataclass
class Ran:
    code: int
    out: str
    err: str


class Cli:
    def __init__(self, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.home = home
        self.capsys = capsys

    def __call__(self, *argv: str) -> Ran:
        parser = argparse.ArgumentParser(prog="trackbox")
        add_commands(parser.add_subparsers(dest="command"))
        args = parser.parse_args(list(argv))
        self.capsys.readouterr()
        code = args.func(args)
        out, err = self.capsys.readouterr()
        assert "Traceback" not in err, err
        return Ran(code, out, err)


@pytest.fixture
def cli(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ring: MemoryKeyring,
) -> Iterator[Cli]:
    home = tmp_path / "home"
    monkeypatch.setenv("TRACKBOX_HOME", str(home))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield Cli(home, capsys)
    for handler in root.handlers[:]:
        if handler not in handlers:  # the profile logs the commands set up
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def maildir(path: Path) -> str:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return f"maildir:{path}"
