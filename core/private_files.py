"""Files and folders only this user may read (0700 folders, 0600 files, whatever the umask):
the store, the logs, the profiles and the demo hold mail, the CRM's data and sign-in state.
Shared by the store and the configuration, which may not import each other."""

from __future__ import annotations

import os
from pathlib import Path


def make_private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents readable by this user only (0700, whatever
    the umask): they hold mail, the CRM's data and logs. Existing parents are left alone;
    ``path`` itself is made 0700 even when it exists (it is ours)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
    chmod_if_there(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` (and its directory, see :func:`make_private_dir`) as a file only this
    user can read (0600, whatever the umask); an existing one is made 0600."""
    if not path.parent.exists():
        make_private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o600))
    os.chmod(path, 0o600)
    return path


def chmod_if_there(path: Path, mode: int) -> None:
    """``chmod`` that does nothing for a file that is not there (yet)."""
    try:
        os.chmod(path, mode)
    except FileNotFoundError:
        pass


__all__ = ["chmod_if_there", "make_private_dir", "private_file"]
