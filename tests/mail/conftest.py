"""Backends under test: one factory per kind, each giving a fresh, empty mailbox.

The contract suite (``test_contract.py``) is parametrised over :data:`KINDS`; adding a backend
means adding a factory here (vdirsyncer ``tests/storage``: ``get_storage_args``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import pytest

from core.mail import MailBackend, open_backend

KINDS = ["maildir", "imap", "ews", "ews-ntlm"]
Opener: TypeAlias = "tuple[str, Callable[[], MailBackend]]"
CUSTOM_FOLDERS = ("Inbox/Projects", "Inbox/Projects/Fabrikam", "Archive")


@dataclass
class Mailbox:
    """A fresh mailbox: the backend, the owner's address, and how to open a second session on
    it (another device)."""

    kind: str
    backend: MailBackend
    address: str
    reopen: Callable[[], MailBackend]


def _maildir(tmp_path: Path, request: pytest.FixtureRequest) -> Opener:
    root = tmp_path / "Maildir"
    return "me@test.example", lambda: open_backend(f"maildir:{root}")


def _imap(tmp_path: Path, request: pytest.FixtureRequest) -> Opener:
    dovecot = request.getfixturevalue("dovecot")
    smtp = request.getfixturevalue("smtp_server")
    user = dovecot.new_user()
    return user, lambda: open_backend(
        dovecot.url("imaps"),
        user=user,
        password=dovecot.password,
        ssl_context=dovecot.tls.client_context(),
        smtp_url=smtp.url(),
    )


def _ews(tmp_path: Path, request: pytest.FixtureRequest) -> Opener:
    ews = request.getfixturevalue("ews_server")
    user = ews.new_user()
    return user, lambda: open_backend(
        ews.url(), user=user, password=ews.password, auth_type="basic"
    )


def _ews_ntlm(tmp_path: Path, request: pytest.FixtureRequest) -> Opener:
    """EWS as on-premises Exchange asks for it: NTLM only, user ``CORP\\name``."""
    ews = request.getfixturevalue("ews_ntlm_server")
    user = ews.new_user("ntlm")
    principal = "CORP\\" + user.split("@")[0]
    ews.add_ntlm_user(principal, ews.password, user)
    return user, lambda: open_backend(
        ews.url(), user=principal, password=ews.password, email=user, auth_type="ntlm"
    )


_FACTORIES = {"maildir": _maildir, "imap": _imap, "ews": _ews, "ews-ntlm": _ews_ntlm}


@pytest.fixture(params=KINDS)
def mailbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mailbox]:
    address, opener = _FACTORIES[request.param](tmp_path, request)
    backend = opener()
    for path in CUSTOM_FOLDERS:
        backend.create_folder(path)
    opened = [backend]

    def reopen() -> MailBackend:
        b = opener()
        opened.append(b)
        return b

    yield Mailbox(request.param, backend, address, reopen)
    for b in opened:
        b.close()
