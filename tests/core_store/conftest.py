"""Fixtures for the store tests: a fresh store file per test, and header factories."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.domain.model import Address, MailRef, MessageHeader
from core.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.sqlite")
    yield s
    s.close()


def make_header(folder: str, uid: int | str, **kw: object) -> MessageHeader:
    n = int(uid) if str(uid).isdigit() else 0
    defaults: dict[str, object] = {
        "message_id": f"<m{uid}@example.test>",
        "subject": f"Subject {uid}",
        "sender": Address(f"sender{n % 7}@example.test", f"Sender {n % 7}"),
        "to": (Address("me@contoso.example", "Me"),),
        "date": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
        "size": 1000 + n,
    }
    defaults.update(kw)
    return MessageHeader(ref=MailRef(folder, str(uid)), **defaults)  # type: ignore[arg-type]
