"""Every earlier schema version opens and migrates without losing data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.model import MailRef, TrackState
from core.store import SCHEMA_VERSION, SchemaTooNew, Store
from core.store.schema import migrate

V1_SQL = (Path(__file__).parent / "schema_v1.sql").read_text()


def _make_v1(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1_SQL)
    conn.executescript(
        """
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
        PRAGMA user_version = 1;
        """
    )
    conn.close()


def _make_version(path: Path, version: int) -> None:
    if version == 1:
        _make_v1(path)
        return
    _make_v1(path)
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path), target=version)
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
        assert store.audit_log("<old@x>")[0].reason.code == "manual"
        assert store.settings("organization") == {"trackingprefix": "CRM:"}


def test_v1_fixture_matches_migration_1(tmp_path: Path) -> None:
    """The frozen v1 DDL and MIGRATIONS[0] must produce the same schema."""
    frozen = sqlite3.connect(tmp_path / "a.sqlite")
    frozen.executescript(V1_SQL)
    built = sqlite3.connect(tmp_path / "b.sqlite", isolation_level=None)
    migrate(built, "b", target=1)

    def schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
        return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()

    assert schema(frozen) == schema(built)


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
