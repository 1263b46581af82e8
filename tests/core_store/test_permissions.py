"""The local store, its caches and logs hold mail and CRM data: they are created readable by
this user only — directories 0700, the SQLite files (with -wal/-shm) and logs 0600 — even
under the usual umask 0o022."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import logs
from core.config.profiles import Profiles
from core.domain.model import Folder
from core.store import Store

PROFILE = {
    "mail_url": "imaps://mail.contoso.example:993",
    "mail_user": "alex",
    "crm_url": "https://contoso.crm.dynamics.com",
    "crm_user": "alex.morgan@contoso.example",
}


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_profile_its_store_and_logs_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    profile = Profiles(home).create("work", PROFILE)
    with Store.open(profile.store_path) as store:
        store.upsert_folders([Folder("Inbox", "Inbox")])  # something in the WAL
        files = [profile.store_path, *(Path(f"{profile.store_path}{s}") for s in ("-wal", "-shm"))]
        assert all(f.exists() for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    handler = logs.setup(profile.log_path)
    try:
        logging.getLogger("trackbox.test").warning("a line")
        assert mode(profile.log_path) == 0o600
        assert mode(profile.log_path.parent) == 0o700
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    created = [home, home / "profiles", *profile.store_path.parents]
    dirs = [d for d in created if d.is_relative_to(home)]
    assert {str(d): mode(d) for d in dirs} == {str(d): 0o700 for d in dirs}


def test_a_store_in_new_directories_is_private(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    path = shared / "a" / "b" / "store.sqlite"
    Store.open(path).close()
    assert mode(path) == 0o600
    assert mode(shared / "a") == 0o700 and mode(shared / "a" / "b") == 0o700
    assert mode(shared) == 0o755  # a directory that was already there is not ours to change


def test_an_existing_world_readable_store_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    Store.open(path).close()
    os.chmod(path, 0o644)
    Store.open(path).close()
    assert mode(path) == 0o600


def test_a_rolled_over_log_is_private(tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "trackbox.log"
    handler = logs.setup(log_path)
    try:
        assert isinstance(handler, logging.handlers.RotatingFileHandler)
        handler.doRollover()
        assert mode(log_path) == 0o600 and mode(Path(f"{log_path}.1")) == 0o600
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
