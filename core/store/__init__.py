"""Local SQLite store of one profile: folders, message headers and their tracked state, the
audit log, cached bodies, the address-book cache, the outbox table and settings snapshots.

``from core.store import Store`` is the entry point; see ``core/store/store.py`` for the
threading rule and ``core/store/schema.py`` for the schema and its migrations.
"""

from __future__ import annotations

from core.store.address_books import AddressBookEntry, AddressBookRows
from core.store.correlation import SqliteCorrelationIndex
from core.store.rows import AuditEntry, MessageRow, thread_root
from core.store.schema import MIGRATIONS, SCHEMA_VERSION, SchemaTooNew
from core.store.store import ORDER_COLUMNS, HeaderRows, Store, StoreError

__all__ = [
    "MIGRATIONS",
    "ORDER_COLUMNS",
    "SCHEMA_VERSION",
    "AddressBookEntry",
    "AddressBookRows",
    "AuditEntry",
    "HeaderRows",
    "MessageRow",
    "SchemaTooNew",
    "SqliteCorrelationIndex",
    "Store",
    "StoreError",
    "thread_root",
]
