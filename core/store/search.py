"""Search over the stored messages (issue 17): an FTS5 index (``message_search``, schema v9)
over sender, recipients, subject and the text of cached bodies, plus the list's quick filters.

The user's words never reach FTS5 as syntax: each is quoted as a string (``"..."``, inner
quotes doubled), so ``"``, ``*``, ``NEAR(``, ``-``, ``OR`` and ``col:`` are only text; the last
word is a prefix while the user types. Quick filters are plain predicates on indexed columns.

The header columns follow the messages table through the schema's triggers; body text is put
in by the body cache (``index_body``, same transaction as the body) and, for bodies cached
before the index existed, by :func:`index_backlog` in the background. Searches run on a
worker; a :class:`SearchCancel` interrupts one that a newer keystroke made stale. A keystroke
first asks for :func:`first_page` (within a folder an index walk that stops after a page),
then for every match (:func:`search_ids`: packed ids, next to no Python work on the worker
while the window repaints).
"""

from __future__ import annotations

import enum
import json
import re
import sqlite3
import sys
import threading
from array import array
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from typing import TYPE_CHECKING

from core.domain.model import TrackState
from core.store.rows import ROW_SELECT, MessageRow, message_row

if TYPE_CHECKING:
    from core.store.store import Store

#: Body text indexed per message (characters): enough for any real mail's words.
BODY_TEXT_LIMIT = 200_000
#: Raw MIME read for the text: a body's text comes before its attachments.
RAW_PARSED = 2 * 1024 * 1024
#: Bodies indexed per backlog transaction (writers are not held up for long).
BACKLOG_BATCH = 200


class QuickFilter(enum.StrEnum):
    """The list's quick filters; several combine with AND."""

    UNREAD = "unread"
    FLAGGED = "flagged"
    ATTACHMENTS = "attachments"
    TRACKED = "tracked"
    NOT_TRACKED = "not_tracked"
    NEEDS_ATTENTION = "needs_attention"


#: The states of the state filters: as the CRM views "Tracked in CRM" and "Needs attention".
FILTER_STATES: dict[QuickFilter, tuple[TrackState, ...]] = {
    QuickFilter.TRACKED: (TrackState.TRACKED, TrackState.TRACKED_BY_OTHER),
    QuickFilter.NOT_TRACKED: (TrackState.NOT_TRACKED,),
    QuickFilter.NEEDS_ATTENTION: (TrackState.NEEDS_ATTENTION, TrackState.FAILED),
}


class SearchCancelled(Exception):
    """A newer search made this one stale and it was stopped."""


class SearchCancel:
    """Stops a search running on another thread: ``cancel()`` interrupts its statement
    (``sqlite3_interrupt``, no Python callback in the query's loop), and a search not yet
    started does not start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.cancelled = False

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._conn is not None:  # only while our statement runs on it
                self._conn.interrupt()

    @contextmanager
    def running(self, conn: sqlite3.Connection) -> Iterator[None]:
        with self._lock:
            if self.cancelled:
                raise SearchCancelled()
            self._conn = conn
        try:
            yield
        finally:
            with self._lock:
                self._conn = None


def flagged_predicate(alias: str = "m") -> str:
    """SQL that holds for flagged mail. One place: v10's ``flagged`` column replaces the
    keyword test (``\\Flagged`` in the stored keywords JSON, where its backslash is doubled;
    LIKE ignores ASCII case as IMAP does)."""
    return f"{alias}.keywords_json LIKE '%\"\\\\flagged\"%'"


def _filter_sql(filters: Collection[QuickFilter]) -> tuple[list[str], list[str]]:
    where: list[str] = []
    params: list[str] = []
    for f in sorted(set(filters)):
        if f == QuickFilter.UNREAD:
            where.append("m.is_read = 0")
        elif f == QuickFilter.ATTACHMENTS:
            where.append("m.has_attachments = 1")
        elif f == QuickFilter.FLAGGED:
            where.append(flagged_predicate())
        else:
            states = FILTER_STATES[f]
            where.append(f"m.track_state IN ({', '.join('?' * len(states))})")
            params.extend(str(s) for s in states)
    return where, params


_WORD = re.compile(r"\w", re.UNICODE)


#: The last word is a prefix from this many characters on: one letter as a prefix matches
#: nearly every message and costs a merge of thousands of terms (~120 ms at 100,000 messages,
#: and cancelled by the next keystroke anyway); as a word it is instant.
PREFIX_FROM = 2
#: Results a keystroke shows before the whole list is known (the list shows ~30 rows).
FIRST_PAGE = 100


def fts_query(text: str, *, prefix_last: bool = True) -> str | None:
    """The FTS5 query for what the user typed: every whitespace-separated word quoted (so
    nothing is FTS5 syntax), all required; the last word a prefix (while typing). None when
    nothing in it can match a token (only punctuation)."""
    words = [w for w in text.split() if _WORD.search(w)]
    if not words:
        return None
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    if prefix_last and len(words[-1]) >= PREFIX_FROM:
        quoted[-1] += "*"
    return " ".join(quoted)


def _order(order_by: str) -> str:
    from core.store.store import ORDER_COLUMNS  # the list's orders (store imports this module)

    column = ORDER_COLUMNS.get(order_by)
    if column is None:
        raise ValueError(f"order_by must be one of {sorted(ORDER_COLUMNS)}, not {order_by!r}")
    return column


def search(
    store: Store,
    text: str = "",
    *,
    folder: str | None = None,
    states: Sequence[TrackState] | None = None,
    filters: Collection[QuickFilter] = (),
    limit: int | None = None,
    offset: int = 0,
    order_by: str = "date",
    descending: bool = True,
    cancel: SearchCancel | None = None,
) -> list[int]:
    """Row ids of the messages matching ``text`` and every filter, in the list's order
    (``order_by`` as ``Store.message_rows``), within ``folder`` (None: all folders) and, when
    given, ``states`` (a CRM view). Text of only punctuation matches nothing. Raises
    :class:`SearchCancelled` when ``cancel`` was cancelled before or while it ran."""
    statement = _statement(text, folder, states, filters, limit, offset, order_by, descending)
    if statement is None:
        return []
    return _run(store.conn, *statement, cancel)


def search_ids(
    store: Store,
    text: str = "",
    *,
    folder: str | None = None,
    states: Sequence[TrackState] | None = None,
    filters: Collection[QuickFilter] = (),
    limit: int | None = None,
    offset: int = 0,
    order_by: str = "date",
    descending: bool = True,
    cancel: SearchCancel | None = None,
) -> array[int]:
    """:func:`search`'s ids as a packed array, for a worker that runs while the user types:
    100,000 ids cost ~1 ms of the GIL this way instead of ~30 ms as Python ints (a JSON
    array parsed in one C call that keeps the GIL), which stalled the window's repaints."""
    statement = _statement(text, folder, states, filters, limit, offset, order_by, descending)
    if statement is None:
        return array("q")
    return _run_packed(store.conn, *statement, cancel)


def _statement(
    text: str,
    folder: str | None,
    states: Sequence[TrackState] | None,
    filters: Collection[QuickFilter],
    limit: int | None,
    offset: int,
    order_by: str,
    descending: bool,
) -> tuple[str, list[object]] | None:
    """The query of :func:`search` (one ``id`` column) and its parameters; None when the
    text is only punctuation (nothing matches)."""
    column = _order(order_by)
    match: str | None = None
    if text.strip():
        match = fts_query(text)
        if match is None:
            return None
    where, args = _where(match, folder, states, filters)
    direction = "DESC" if descending else "ASC"
    if match is None:  # the order's index does it
        source = "messages AS m"
    elif limit is not None and folder is not None:
        # A page: walk the folder's index of this order and keep the matches (their ids, a
        # set SQLite builds from the index once), stopping at the page's end: a common word
        # is found in the first rows, no match's row is read and nothing is sorted.
        source = "messages AS m"
        where[0] = "m.id IN (SELECT rowid FROM message_search WHERE message_search MATCH ?)"
    else:
        # Every match: the matches drive (CROSS JOIN keeps that order: the folder's index
        # would scan the whole folder for a rare word) and are sorted.
        source = "message_search CROSS JOIN messages AS m ON m.id = message_search.rowid"
    sql = (
        f"SELECT m.id AS id FROM {source}"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY m.{column} {direction}, m.id {direction}"
    )
    if limit is not None or offset:
        sql += " LIMIT ? OFFSET ?"
        args.extend((-1 if limit is None else int(limit), int(offset)))
    return sql, args


def first_page(
    store: Store,
    text: str = "",
    *,
    folder: str | None = None,
    states: Sequence[TrackState] | None = None,
    filters: Collection[QuickFilter] = (),
    order_by: str = "date",
    descending: bool = True,
    cancel: SearchCancel | None = None,
    size: int = FIRST_PAGE,
) -> tuple[list[int], bool]:
    """What a keystroke shows first: the first ``size`` results of :func:`search` in the
    list's order, and whether they are all of them. Within a folder a page is an index walk
    that stops early (a few ms where every match sorted takes 30-60 ms at 100,000 messages);
    across folders no index has the order, so the whole list comes at once."""
    ids = search(
        store,
        text,
        folder=folder,
        states=states,
        filters=filters,
        limit=None if folder is None else size,
        order_by=order_by,
        descending=descending,
        cancel=cancel,
    )
    if folder is None:
        return ids, True
    return ids, len(ids) < size


def _where(
    match: str | None,
    folder: str | None,
    states: Sequence[TrackState] | None,
    filters: Collection[QuickFilter],
) -> tuple[list[str], list[object]]:
    """The WHERE terms and their parameters; the MATCH term (when words) first."""
    where: list[str] = []
    args: list[object] = []
    if match is not None:
        where.append("message_search MATCH ?")
        args.append(match)
    if folder is not None:
        where.append("m.folder = ?")
        args.append(folder)
    if states:
        where.append(f"m.track_state IN ({', '.join('?' * len(states))})")
        args.extend(str(s) for s in states)
    filter_where, filter_args = _filter_sql(filters)  # after the others: params in order
    where.extend(filter_where)
    args.extend(filter_args)
    return where, args


def _run(
    conn: sqlite3.Connection, sql: str, args: Sequence[object], cancel: SearchCancel | None
) -> list[int]:
    """The ids as one JSON array: the whole query is one step of C with the GIL released (a
    row at a time, the worker took the GIL back per row and waited for the GUI thread's)."""
    found = _one_value(conn, f"SELECT json_group_array(id) FROM ({sql})", args, cancel)
    return list(json.loads(found))


#: Hex digits per id in :func:`_run_packed`'s text (a signed 64-bit id, two's complement).
_HEX_ID = 16
#: Ids decoded per step: each step keeps the GIL ~0.1 ms, so the GUI thread waits no longer.
_DECODE_STEP = 8192


def _run_packed(
    conn: sqlite3.Connection, sql: str, args: Sequence[object], cancel: SearchCancel | None
) -> array[int]:
    """The ids as fixed-width hex in one text (SQLite builds it with the GIL released),
    decoded in C a slice at a time into a packed array: no Python int per id."""
    query = f"SELECT group_concat(printf('%016x', id), '') FROM ({sql})"
    found = _one_value(conn, query, args, cancel) or ""
    ids = array("q")
    step = _HEX_ID * _DECODE_STEP
    for start in range(0, len(found), step):
        ids.frombytes(bytes.fromhex(found[start : start + step]))
    if sys.byteorder == "little":  # the hex is big-endian
        ids.byteswap()
    return ids


def _one_value(
    conn: sqlite3.Connection, query: str, args: Sequence[object], cancel: SearchCancel | None
) -> str:
    """The one value of a one-row query, run under ``cancel``."""
    if cancel is None:
        return str(conn.execute(query, args).fetchone()[0] or "")
    try:
        with cancel.running(conn):
            found = conn.execute(query, args).fetchone()[0]
    except sqlite3.OperationalError as exc:
        if cancel.cancelled:
            raise SearchCancelled() from exc
        raise
    return str(found or "")


def id_position(ids: array[int], row_id: int, packed: bytes | None = None) -> int | None:
    """Where ``row_id`` is in ``ids`` (None: not there), by a byte search of the packed ids
    (``packed``: ``ids.tobytes()``, kept by a caller that asks often): ~0.3 ms at 100,000
    ids, where ``ids.index`` makes an int per id and a dict of every id costs ~30 ms."""
    buf = ids.tobytes() if packed is None else packed
    try:
        key = int(row_id).to_bytes(ids.itemsize, sys.byteorder, signed=True)
    except OverflowError:
        return None
    start = 0
    while (at := buf.find(key, start)) >= 0:
        if at % ids.itemsize == 0:
            return at // ids.itemsize
        start = at + 1
    return None


def rows_by_ids(store: Store, row_ids: Sequence[int]) -> list[MessageRow]:
    """The messages with these ids, in this order (ids no longer stored left out): one
    primary-key read per id, for a page of search results."""
    if not row_ids:
        return []
    marks = ", ".join("?" * len(row_ids))
    found = {
        row[0]: row
        for row in store.conn.execute(
            f"SELECT {ROW_SELECT} FROM messages WHERE id IN ({marks})", [int(r) for r in row_ids]
        )
    }
    return [message_row(found[r]) for r in row_ids if r in found]


# --- body text ---------------------------------------------------------------------------------

_TAG = re.compile(r"<[^<>]*>")
_SCRIPT = re.compile(r"<(script|style)\b.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_ENTITY = re.compile(r"&(#?\w{1,8});")


def body_text(raw: bytes, limit: int = BODY_TEXT_LIMIT) -> str:
    """The words of a message's body for the index: its text parts (HTML without tags when
    it has no plain text), not its attachments, at most ``limit`` characters. Reads at most
    ``RAW_PARSED`` bytes of MIME; never raises on bad input."""
    try:
        msg = message_from_bytes(raw[:RAW_PARSED], policy=email_policy.compat32)
    except Exception:  # any byte string is a message; this one has no readable body
        return ""
    plain: list[str] = []
    html: list[str] = []
    size = 0
    for part in msg.walk():
        if part.is_multipart() or size >= limit:
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html") or _is_attachment(part):
            continue
        text = _decoded(part)
        (plain if ctype == "text/plain" else html).append(text)
        size += len(text)
    if plain:
        return "\n".join(plain)[:limit]
    return _strip_html("\n".join(html))[:limit]


def _is_attachment(part: Message) -> bool:
    try:
        return part.get_content_disposition() == "attachment" or bool(part.get_filename())
    except Exception:  # a header the parser cannot read: index nothing of the part
        return True


def _decoded(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:  # an unknown charset: most such mail is UTF-8 or Windows-1252
        return payload.decode("utf-8", "replace")


def _strip_html(html: str) -> str:
    import html as _html

    return _html.unescape(_TAG.sub(" ", _SCRIPT.sub(" ", html)))


def index_body(conn: sqlite3.Connection, row_id: int, text: str) -> None:
    """Put a just-cached body's text (:func:`body_text`) into the index, inside the caller's
    transaction."""
    conn.execute("UPDATE message_search SET body = ? WHERE rowid = ?", (text, row_id))
    conn.execute("DELETE FROM search_backlog WHERE message_row = ?", (row_id,))


def index_backlog(store: Store, batch: int = BACKLOG_BATCH) -> int:
    """Index up to ``batch`` bodies cached before the index existed (schema v9 lists them in
    ``search_backlog``); returns how many, 0 when none are left. Run on a worker, repeatedly:
    each batch is one short transaction. The text is extracted outside it."""
    rows = store.conn.execute(
        "SELECT b.message_row, b.content FROM search_backlog AS s"
        " JOIN bodies AS b ON b.message_row = s.message_row LIMIT ?",
        (int(batch),),
    ).fetchall()
    texts = [(body_text(bytes(content)), row_id) for row_id, content in rows]
    with store.transaction() as conn:
        if not rows:  # entries whose body went (the eviction trigger drops those too)
            conn.execute(
                "DELETE FROM search_backlog WHERE message_row NOT IN"
                " (SELECT message_row FROM bodies)"
            )
            return 0
        conn.executemany("UPDATE message_search SET body = ? WHERE rowid = ?", texts)
        conn.executemany(
            "DELETE FROM search_backlog WHERE message_row = ?", ((r,) for _, r in texts)
        )
    return len(rows)


def backlog_size(store: Store) -> int:
    return int(store.conn.execute("SELECT count(*) FROM search_backlog").fetchone()[0])


def indexed_rows(store: Store, match: str) -> set[int]:
    """Row ids the index has for a raw FTS5 ``match`` (tests and the benchmark's baseline)."""
    rows = store.conn.execute(
        "SELECT rowid FROM message_search WHERE message_search MATCH ?", (match,)
    )
    return {r[0] for r in rows}
