-- Trackbox store schema version 9, frozen as released (sqlite_master dump; FTS
-- shadow tables omitted). test_migrations opens databases made with it. Never edit.
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
CREATE TABLE ab_sync (
    entity TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    delta_link TEXT,
    synced_at TEXT,
    record_count INTEGER NOT NULL DEFAULT 0
);
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
, owner_id TEXT, pull_mark INTEGER);
CREATE INDEX tracked_emails_message_id ON tracked_emails (message_id)
    WHERE message_id IS NOT NULL;
CREATE INDEX tracked_emails_token ON tracked_emails (token_key) WHERE token_key IS NOT NULL;
CREATE INDEX tracked_emails_root ON tracked_emails (conversation_root)
    WHERE conversation_root IS NOT NULL;
CREATE INDEX tracked_emails_smart ON tracked_emails (smart_key) WHERE smart_key != '';
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
CREATE TABLE crm_email_sync (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL DEFAULT 0,
    key_settings TEXT,
    next_link TEXT,
    delta_link TEXT,
    pulled_at TEXT,
    synced_at TEXT
);
CREATE VIRTUAL TABLE message_search USING fts5 (
    sender, recipients, subject, body,
    tokenize = 'unicode61 remove_diacritics 2'
);
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
CREATE TRIGGER bodies_search_ad AFTER DELETE ON bodies BEGIN
    UPDATE message_search SET body = '' WHERE rowid = old.message_row AND body != '';
    DELETE FROM search_backlog WHERE message_row = old.message_row;
END;
CREATE INDEX messages_folder_unread ON messages (folder, date_ts, id) WHERE is_read = 0;
CREATE INDEX messages_folder_attached ON messages (folder, date_ts, id)
    WHERE has_attachments = 1;
