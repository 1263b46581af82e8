"""Every earlier schema version opens and migrates without losing data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.domain.model import MailRef, TrackState
from core.store import SCHEMA_VERSION, SchemaTooNew, Store
from core.store.schema import migrate

HERE = Path(__file__).parent
V1_SQL = (HERE / "schema_v1.sql").read_text()
SAMPLE = """
INSERT INTO folders (path, name, role, sync_state) VALUES ('Inbox', 'Inbox', 'inbox', 's1');
INSERT INTO messages (folder, uid, message_id, subject, date, date_ts, track_state,
                      activity_id, reason_code, reason_text)
VALUES ('Inbox', '7', '<old@x>', 'Old mail', '2023-05-01T10:00:00+00:00', 1682935200,
        'tracked', 'act-1', 'manual', 'Tracked by you.');
INSERT INTO tracking (message_id, track_state, activity_id, updated_at)
VALUES ('<old@x>', 'tracked', 'act-1', '2023-05-01T10:00:00+00:00');
INSERT INTO audit_log (message_id, at, source, track, reason_code, reason_text)
VALUES ('<old@x>', '2023-05-01T10:00:00+00:00', 'user', 1, 'manual', 'Tracked by you.');
INSERT INTO settings_snapshot VALUES ('organization', '{"trackingprefix": "CRM:"}',
                                      '2023-05-01T10:00:00+00:00');
"""
# Rows for tables that later versions added, inserted when the version has them.
SAMPLE_SINCE = {
    2: """
INSERT INTO ab_records (entity, record_id, name, email, email_key, company)
VALUES ('contact', 'c-1', 'Nancy Davolio', 'nancy@fabrikam.example',
        'nancy@fabrikam.example', 'Fabrikam Inc.');
""",
    3: """
INSERT INTO tracked_emails (activity_id, message_id, token, token_key, smart_key)
VALUES ('act-1', '<old@x>', 'CRM:0001001', 'crm:0001001', 'old mail');
""",
}


def frozen_schema(version: int) -> str:
    """The DDL of ``version`` as released (tests/core_store/schema_v<N>.sql)."""
    return (HERE / f"schema_v{version}.sql").read_text()


def _make_version(path: Path, version: int) -> None:
    """A database exactly as Trackbox with schema ``version`` left it, with sample rows."""
    conn = sqlite3.connect(path)
    conn.executescript(frozen_schema(version))
    conn.executescript(SAMPLE)
    for since, sql in SAMPLE_SINCE.items():
        if version >= since:
            conn.executescript(sql)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_opens_every_earlier_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / f"v{version}.sqlite"
    _make_version(path, version)
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        (row,) = store.messages_by_message_id("<old@x>")
        assert row.header.ref == MailRef("Inbox", "7")
        assert (row.track_state, row.activity_id) == (TrackState.TRACKED, "act-1")
        assert store.folder_sync_state("Inbox") == "s1"
        assert store.tracking.audit_log("<old@x>")[0].reason.code == "manual"
        assert store.snapshots.get("organization") == {"trackingprefix": "CRM:"}
        if version >= 2:  # the search index is rebuilt by v4 and finds old rows
            from core.sync.address_books import AddressBook

            book = AddressBook(store)
            assert [r.id for r in book.lookup("NANCY@fabrikam.example")] == ["c-1"]
            assert [e.record.id for e in book.search("fabrikam")] == ["c-1"]
        if version >= 3:
            from core.store import SqliteCorrelationIndex

            found = SqliteCorrelationIndex(store).by_token("CRM:0001001")
            assert found is not None and found.activity_id == "act-1"


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_released_migrations_are_unchanged(tmp_path: Path, version: int) -> None:
    """The frozen DDL of every released version equals what MIGRATIONS[:version] builds:
    editing a released migration (instead of adding one) fails here."""
    frozen = sqlite3.connect(tmp_path / "a.sqlite")
    frozen.executescript(frozen_schema(version))
    built = sqlite3.connect(tmp_path / "b.sqlite", isolation_level=None)
    migrate(built, "b", target=version)

    def schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
        return conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
        ).fetchall()

    assert schema(frozen) == schema(built)


def test_every_earlier_version_has_a_frozen_schema() -> None:
    for version in range(1, SCHEMA_VERSION):
        assert frozen_schema(version).strip()


def test_reopen_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store.open(path).close()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew) as info:
        Store.open(path)
    assert info.value.found == SCHEMA_VERSION + 1 and str(path) in str(info.value)


def test_v8_gives_up_the_shared_empty_message_id(tmp_path: Path) -> None:
    """Mail stored under the key '' (no usable Message-ID, before issue 18) is dropped and
    its folder syncs again; work queued for the shared key is discarded with a reason."""
    path = tmp_path / "v7.sqlite"
    _make_version(path, 7)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        INSERT INTO folders (path, name, sync_state) VALUES ('Odd', 'Odd', 's2');
        INSERT INTO messages (folder, uid, message_id, subject) VALUES ('Odd', '1', '', 'a');
        INSERT INTO messages (folder, uid, message_id, subject) VALUES ('Odd', '2', '', 'b');
        INSERT INTO bodies (message_row, content, size, fetched_at, last_used)
        SELECT id, x'00', 1, '2026-01-01', 0 FROM messages WHERE uid = '1';
        INSERT INTO tracking (message_id, track_state, updated_at)
        VALUES ('', 'failed', '2026-01-01');
        INSERT INTO outbox (kind, idempotency_key, message_id, state, created_at, updated_at)
        VALUES ('promote', 'k1', '', 'parked', '2026-01-01', '2026-01-01'),
               ('promote', 'k2', '<old@x>', 'queued', '2026-01-01', '2026-01-01');
        """
    )
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        assert store.messages_by_message_id("") == []
        assert len(store.messages_by_message_id("<old@x>")) == 1
        assert store.folder_sync_state("Odd") is None
        assert store.folder_sync_state("Inbox") == "s1"
    conn = sqlite3.connect(path)
    states = dict(conn.execute("SELECT idempotency_key, state FROM outbox").fetchall())
    assert states == {"k1": "discarded", "k2": "queued"}
    assert conn.execute("SELECT COUNT(*) FROM bodies").fetchone() == (0,)
    assert conn.execute("SELECT COUNT(*) FROM tracking WHERE message_id = ''").fetchone() == (0,)
    conn.close()
