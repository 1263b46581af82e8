"""Schema of the per-profile SQLite store and its numbered migrations.

The schema version is SQLite's ``PRAGMA user_version`` (0 = empty file). ``MIGRATIONS[n - 1]``
takes a database from version ``n - 1`` to ``n``; each runs inside the same ``BEGIN IMMEDIATE``
transaction as the version bump, so a crash mid-migration leaves the old version intact
(SQLite DDL is transactional). Never edit a released migration: append a new one.
"""

from __future__ import annotations

import sqlite3

# v1: folders, messages with tracked state, tracking (state by Message-ID), audit log,
# settings snapshots, body cache, outbox.
V1 = """
CREATE TABLE folders (
    path TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT,
    parent TEXT,
    sync_state TEXT
);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    folder TEXT NOT NULL,
    uid TEXT NOT NULL,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    subject_sort TEXT NOT NULL DEFAULT '',
    sender_email TEXT,
    sender_name TEXT,
    sender_key TEXT,
    sender_sort TEXT NOT NULL DEFAULT '',
    to_json TEXT NOT NULL DEFAULT '[]',
    cc_json TEXT NOT NULL DEFAULT '[]',
    date TEXT,
    date_ts REAL,
    size INTEGER NOT NULL DEFAULT 0,
    has_attachments INTEGER NOT NULL DEFAULT 0,
    is_read INTEGER NOT NULL DEFAULT 0,
    thread_index TEXT,
    thread_root TEXT,
    in_reply_to TEXT,
    references_json TEXT NOT NULL DEFAULT '[]',
    keywords_json TEXT NOT NULL DEFAULT '[]',
    tracked_marker TEXT,
    parse_errors_json TEXT NOT NULL DEFAULT '[]',
    token TEXT,
    track_state TEXT NOT NULL DEFAULT 'not_tracked',
    activity_id TEXT,
    regarding_entity TEXT,
    regarding_id TEXT,
    regarding_name TEXT,
    regarding_sort TEXT NOT NULL DEFAULT '',
    reason_code TEXT,
    reason_text TEXT,
    tracked_by_other INTEGER NOT NULL DEFAULT 0,
    UNIQUE (folder, uid)
);
CREATE INDEX messages_folder_date ON messages (folder, date_ts, id);
CREATE INDEX messages_folder_sender ON messages (folder, sender_sort, id);
CREATE INDEX messages_folder_subject ON messages (folder, subject_sort, id);
CREATE INDEX messages_folder_size ON messages (folder, size, id);
CREATE INDEX messages_folder_state ON messages (folder, track_state, id);
CREATE INDEX messages_folder_regarding ON messages (folder, regarding_sort, id);
CREATE INDEX messages_message_id ON messages (message_id);
CREATE INDEX messages_token ON messages (token) WHERE token IS NOT NULL;
CREATE INDEX messages_thread_root ON messages (thread_root) WHERE thread_root IS NOT NULL;
CREATE INDEX messages_sender_key ON messages (sender_key);
CREATE INDEX messages_state_date ON messages (track_state, date_ts, id);

-- Tracked state by Message-ID: the source of truth, mirrored onto every copy in messages so
-- the list can sort by it with an index. It outlives the copies (a message moved away and
-- back keeps its state) and can be set before the header arrives.
CREATE TABLE tracking (
    message_id TEXT PRIMARY KEY,
    track_state TEXT NOT NULL,
    activity_id TEXT,
    regarding_entity TEXT,
    regarding_id TEXT,
    regarding_name TEXT,
    reason_code TEXT,
    reason_text TEXT,
    tracked_by_other INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE INDEX tracking_activity ON tracking (activity_id) WHERE activity_id IS NOT NULL;

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    track INTEGER NOT NULL,
    reason_code TEXT NOT NULL,
    reason_text TEXT NOT NULL,
    regarding_entity TEXT,
    regarding_id TEXT,
    regarding_name TEXT,
    details_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_message ON audit_log (message_id, id);

CREATE TABLE settings_snapshot (
    kind TEXT PRIMARY KEY,
    data_json TEXT NOT NULL,
    saved_at TEXT NOT NULL
);

CREATE TABLE bodies (
    message_row INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    content BLOB NOT NULL,
    size INTEGER NOT NULL,
    fetched_at TEXT NOT NULL,
    last_used REAL NOT NULL
);
CREATE INDEX bodies_last_used ON bodies (last_used);

-- Durable queue of CRM operations; core/outbox/queue.py owns the semantics (see its docstring).
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    message_id TEXT,
    payload_json TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error_code TEXT,
    last_error_message TEXT,
    result_json TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX outbox_ready ON outbox (state, next_attempt_at, id);
CREATE INDEX outbox_key ON outbox (idempotency_key);
CREATE INDEX outbox_message ON outbox (message_id, id);
"""

# v2: the address-book cache with an FTS5 index over name, e-mail and company.
V2 = """
CREATE TABLE ab_records (
    rowid INTEGER PRIMARY KEY,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    company TEXT NOT NULL DEFAULT '',
    owner_id TEXT,
    UNIQUE (entity, record_id)
);
CREATE INDEX ab_records_email ON ab_records (email_key);

CREATE VIRTUAL TABLE ab_fts USING fts5 (
    name, email, company,
    content = 'ab_records', content_rowid = 'rowid',
    tokenize = "unicode61 remove_diacritics 2 tokenchars '@.-_'"
);
CREATE TRIGGER ab_records_ai AFTER INSERT ON ab_records BEGIN
    INSERT INTO ab_fts (rowid, name, email, company)
    VALUES (new.rowid, new.name, new.email, new.company);
END;
CREATE TRIGGER ab_records_ad AFTER DELETE ON ab_records BEGIN
    INSERT INTO ab_fts (ab_fts, rowid, name, email, company)
    VALUES ('delete', old.rowid, old.name, old.email, old.company);
END;
CREATE TRIGGER ab_records_au AFTER UPDATE ON ab_records BEGIN
    INSERT INTO ab_fts (ab_fts, rowid, name, email, company)
    VALUES ('delete', old.rowid, old.name, old.email, old.company);
    INSERT INTO ab_fts (rowid, name, email, company)
    VALUES (new.rowid, new.name, new.email, new.company);
END;

-- One row per synchronised entity set: its scope and the delta link to resume from.
CREATE TABLE ab_sync (
    entity TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    delta_link TEXT,
    synced_at TEXT,
    record_count INTEGER NOT NULL DEFAULT 0
);
"""

# v3: the correlation index (tracked e-mails by Message-ID, token, conversation root,
# smart-matching key), see core/store/correlation.py.
V3 = """
CREATE TABLE tracked_emails (
    seq INTEGER PRIMARY KEY,
    activity_id TEXT NOT NULL UNIQUE,
    regarding_entity TEXT,
    regarding_id TEXT,
    regarding_name TEXT,
    message_id TEXT,
    token TEXT,
    token_key TEXT,
    conversation_index TEXT,
    conversation_root TEXT,
    smart_key TEXT NOT NULL DEFAULT '',
    addresses_json TEXT NOT NULL DEFAULT '[]',
    subject TEXT NOT NULL DEFAULT '',
    sent_on TEXT
);
CREATE INDEX tracked_emails_message_id ON tracked_emails (message_id)
    WHERE message_id IS NOT NULL;
CREATE INDEX tracked_emails_token ON tracked_emails (token_key) WHERE token_key IS NOT NULL;
CREATE INDEX tracked_emails_root ON tracked_emails (conversation_root)
    WHERE conversation_root IS NOT NULL;
CREATE INDEX tracked_emails_smart ON tracked_emails (smart_key) WHERE smart_key != '';
"""

# v4: address-book search index rebuilt: the default tokenizer (so "contoso" finds
# "alex@contoso.example") and triggers that stand aside while
# ab_bulk holds a row, so a first population loads plain rows and rebuilds the index once
# (three times faster than row-by-row trigger inserts).
V4 = """
DROP TRIGGER ab_records_ai;
DROP TRIGGER ab_records_ad;
DROP TRIGGER ab_records_au;
DROP TABLE ab_fts;
CREATE TABLE ab_bulk (active INTEGER PRIMARY KEY);
CREATE VIRTUAL TABLE ab_fts USING fts5 (
    name, email, company,
    content = 'ab_records', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER ab_records_ai AFTER INSERT ON ab_records
WHEN NOT EXISTS (SELECT 1 FROM ab_bulk) BEGIN
    INSERT INTO ab_fts (rowid, name, email, company)
    VALUES (new.rowid, new.name, new.email, new.company);
END;
CREATE TRIGGER ab_records_ad AFTER DELETE ON ab_records
WHEN NOT EXISTS (SELECT 1 FROM ab_bulk) BEGIN
    INSERT INTO ab_fts (ab_fts, rowid, name, email, company)
    VALUES ('delete', old.rowid, old.name, old.email, old.company);
END;
CREATE TRIGGER ab_records_au AFTER UPDATE ON ab_records
WHEN NOT EXISTS (SELECT 1 FROM ab_bulk) BEGIN
    INSERT INTO ab_fts (ab_fts, rowid, name, email, company)
    VALUES ('delete', old.rowid, old.name, old.email, old.company);
    INSERT INTO ab_fts (rowid, name, email, company)
    VALUES (new.rowid, new.name, new.email, new.company);
END;
INSERT INTO ab_fts (ab_fts) VALUES ('rebuild');
"""

# v5: browsing the address books by name (the address-book dialog before anything is typed)
# is an index walk instead of a sort of every record.
V5 = """
CREATE INDEX ab_records_name ON ab_records (name COLLATE NOCASE, record_id);
CREATE INDEX ab_records_entity_name ON ab_records (entity, name COLLATE NOCASE, record_id);
"""

# v6: v5's name indexes dropped again: with COLLATE NOCASE on random-order names they
# tripled the CPU cost of loading an address book (0.8 s → 2.1 s per 100,000 records);
# browsing sorts instead (~0.1 s at 100,000), which happens far less often than a sync.
V6 = """
DROP INDEX ab_records_name;
DROP INDEX ab_records_entity_name;
"""

# v7: the correlation index doubles as the local copy of the CRM's e-mail activities the user
# can see (issue 13): who owns each one, which full pull last saw it (a pull ends by dropping
# the entries it did not see), and the state of that pull and of the delta that follows it,
# with the settings its keys were computed under.
V7 = """
ALTER TABLE tracked_emails ADD COLUMN owner_id TEXT;
ALTER TABLE tracked_emails ADD COLUMN pull_mark INTEGER;
CREATE TABLE crm_email_sync (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL DEFAULT 0,
    key_settings TEXT,
    next_link TEXT,
    delta_link TEXT,
    pulled_at TEXT,
    synced_at TEXT
);
"""

# v8: mail without a usable Message-ID used to be stored under the key '' (issue 18): every
# such message shared one tracking state, and tracking one queued work for all. Those rows
# go, and their folders sync again from scratch, where each message gets its own synthetic
# key (core.domain.message_identity). Work queued or parked for the shared key is given up
# with a note saying why (the CRM refused the empty id; nothing was done there).
V8 = """
DELETE FROM bodies WHERE message_row IN (SELECT id FROM messages WHERE message_id = '');
UPDATE folders SET sync_state = NULL
 WHERE path IN (SELECT DISTINCT folder FROM messages WHERE message_id = '');
DELETE FROM messages WHERE message_id = '';
DELETE FROM tracking WHERE message_id = '';
UPDATE outbox SET state = 'discarded',
       last_error_code = 'no_message_id',
       last_error_message = 'The mail had no usable Message-ID; Trackbox now gives such '
                            || 'mail its own key: track it again.',
       updated_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')
 WHERE message_id = '' AND state IN ('queued', 'parked');
"""

# v9: search (issue 17): an FTS5 index over each stored message's sender (name and address),
# recipients, subject and the text of its cached body (rowid = messages.id). The header
# columns follow the messages table through triggers; the body text is written by the body
# cache (core/store/cache.py: Python extracts it from the MIME), emptied when a body is
# evicted, and for bodies cached before v9 filled in the background from search_backlog
# (core/store/search.py). Partial indexes make the unread and attachment filters index walks.
V9 = """
CREATE VIRTUAL TABLE message_search USING fts5 (
    sender, recipients, subject, body,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO message_search (rowid, sender, recipients, subject, body)
SELECT id, coalesce(sender_name, '') || ' ' || coalesce(sender_email, ''),
       to_json || ' ' || cc_json, subject, ''
  FROM messages;
CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN
    INSERT INTO message_search (rowid, sender, recipients, subject, body)
    VALUES (new.id, coalesce(new.sender_name, '') || ' ' || coalesce(new.sender_email, ''),
            new.to_json || ' ' || new.cc_json, new.subject, '');
END;
CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid = old.id;
END;
CREATE TRIGGER messages_search_au AFTER UPDATE OF subject, sender_name, sender_email, to_json,
    cc_json ON messages
WHEN old.subject IS NOT new.subject OR old.sender_name IS NOT new.sender_name
  OR old.sender_email IS NOT new.sender_email OR old.to_json IS NOT new.to_json
  OR old.cc_json IS NOT new.cc_json BEGIN
    UPDATE message_search
       SET sender = coalesce(new.sender_name, '') || ' ' || coalesce(new.sender_email, ''),
           recipients = new.to_json || ' ' || new.cc_json,
           subject = new.subject
     WHERE rowid = new.id;
END;
CREATE TABLE search_backlog (message_row INTEGER PRIMARY KEY);
INSERT INTO search_backlog (message_row) SELECT message_row FROM bodies;
CREATE TRIGGER bodies_search_ad AFTER DELETE ON bodies BEGIN
    UPDATE message_search SET body = '' WHERE rowid = old.message_row AND body != '';
    DELETE FROM search_backlog WHERE message_row = old.message_row;
END;
CREATE INDEX messages_folder_unread ON messages (folder, date_ts, id) WHERE is_read = 0;
CREATE INDEX messages_folder_attached ON messages (folder, date_ts, id)
    WHERE has_attachments = 1;
"""

# v10: the records a tracked mail is linked to beyond its regarding (issue 17: Dataverse
# connections), kept so the banner shows them offline: as the CRM last said ('linked', with
# the connection's id) and as the outbox will make them ('adding', 'removing').
V10 = """
CREATE TABLE mail_connections (
    message_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    connection_id TEXT,
    state TEXT NOT NULL DEFAULT 'linked',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (message_id, entity, record_id)
);
"""

MIGRATIONS: tuple[str, ...] = (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The file was written by a newer Trackbox; opening it could lose data."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(path, found, supported)
        self.path = path
        self.found = found
        self.supported = supported

    def __str__(self) -> str:
        return (
            f"{self.path}: schema version {self.found} is newer than this Trackbox "
            f"supports ({self.supported})"
        )


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: str, target: int = SCHEMA_VERSION) -> int:
    """Bring ``conn`` (autocommit mode) up to ``target``; returns the version found.

    Takes the write lock before reading the version so that two processes opening a fresh
    file at once do not both run migration 1.
    """
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(path, found, SCHEMA_VERSION)
    if found >= target:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)
        for number in range(current + 1, target + 1):
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def _statements(script: str) -> list[str]:
    """Split a DDL script into statements (executescript would commit our transaction)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
