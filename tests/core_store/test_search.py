"""Search (issue 17): the FTS5 index follows the store's writes, user text is never FTS5
syntax, quick filters and the folder scope narrow the results, in the list's order."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain.model import Address, MailRef, TrackState
from core.store import Store
from core.store.search import (
    QuickFilter,
    SearchCancel,
    SearchCancelled,
    backlog_size,
    body_text,
    first_page,
    fts_query,
    index_backlog,
    rows_by_ids,
    search,
)
from tests.core_store.conftest import make_header


def mime(text: str, *, html: str | None = None, attachment: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "a@example.test"
    msg["Subject"] = "s"
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    if attachment is not None:
        msg.add_attachment(attachment.encode(), maintype="text", subtype="plain", filename="a.txt")
    return msg.as_bytes()


def row_id(store: Store, folder: str, uid: str) -> int:
    row = store.message_by_ref(MailRef(folder, uid))
    assert row is not None
    return row.id


def test_headers_are_indexed_and_follow_updates_and_deletes(store: Store) -> None:
    store.upsert_headers(
        [
            make_header(
                "Inbox",
                1,
                subject="Quarterly budget",
                sender=Address("nancy@fab.test", "Nancy Davolio"),
            ),
            make_header("Inbox", 2, subject="Lunch", cc=(Address("zed@corp.test", "Zed Quill"),)),
        ]
    )
    one, two = row_id(store, "Inbox", "1"), row_id(store, "Inbox", "2")
    assert search(store, "budget") == [one]
    assert search(store, "davolio") == [one]  # sender name
    assert search(store, "nancy@fab.test") == [one]  # sender address as typed
    assert search(store, "quill") == [two]  # recipients (cc)
    assert search(store, "me@contoso") == [two, one]  # to, prefix while typing; newest first
    store.upsert_headers([make_header("Inbox", 1, subject="Annual plan")])
    assert search(store, "budget") == []
    assert search(store, "annual") == [one]
    store.remove_messages([MailRef("Inbox", "1")])
    assert search(store, "annual") == []
    assert store.conn.execute("SELECT count(*) FROM message_search").fetchone()[0] == 1


def test_flag_and_state_changes_leave_the_index_alone(store: Store) -> None:
    """The update trigger fires only when the indexed text changed (syncs re-upsert rows)."""
    store.upsert_headers([make_header("Inbox", 1, subject="Kept words")])
    rid = row_id(store, "Inbox", "1")
    store.bodies.put(rid, mime("body words"))
    store.upsert_headers([make_header("Inbox", 1, subject="Kept words", is_read=True)])
    store.tracking.set_state("<m1@example.test>", TrackState.TRACKED)
    assert search(store, "body words") == [rid]


def test_body_text_is_indexed_when_cached_and_dropped_when_evicted(store: Store) -> None:
    store.upsert_headers([make_header("Inbox", i) for i in range(1, 4)])
    ids = [row_id(store, "Inbox", str(i)) for i in range(1, 4)]
    assert search(store, "pomegranate") == []
    store.bodies.put(ids[0], mime("We ordered a pomegranate crate."))
    html_only = b"Content-Type: text/html\r\n\r\n<p>Pomegranate <b>juice</b></p>"
    store.bodies.put_many([(ids[1], html_only)])
    assert sorted(search(store, "pomegranate")) == sorted(ids[:2])
    assert search(store, "juice") == [ids[1]]
    store.bodies.put(ids[1], mime("plain", html="<p>Pomegranate <b>juice</b></p>"))
    assert search(store, "juice") == []  # plain text there: the HTML alternative is not read
    store.bodies.put(ids[2], mime("see file", attachment="pomegranate inside attachment"))
    assert search(store, "pomegranate") == [ids[0]]  # not from attachments
    store.bodies.evict(0)
    assert search(store, "pomegranate") == []
    assert search(store, "Subject 1") == [ids[0]]  # the headers stay


def test_deleting_a_message_with_a_cached_body_removes_it(store: Store) -> None:
    store.upsert_headers([make_header("Inbox", 1), make_header("Archive", 2)])
    store.bodies.put(row_id(store, "Inbox", "1"), mime("walnut"))
    store.clear_folder("Inbox")
    assert search(store, "walnut") == []
    assert store.conn.execute("SELECT count(*) FROM message_search").fetchone()[0] == 1


def test_moved_message_is_found_in_its_new_folder(store: Store) -> None:
    """A move is the old copy removed and a new one stored (the backends' sync), or the row's
    folder changed in place: either way the index follows."""
    store.upsert_headers([make_header("Inbox", 1, subject="Moving words")])
    rid = row_id(store, "Inbox", "1")
    with store.transaction() as conn:
        conn.execute("UPDATE messages SET folder = 'Archive' WHERE id = ?", (rid,))
    assert search(store, "moving", folder="Archive") == [rid]
    assert search(store, "moving", folder="Inbox") == []
    store.remove_messages([MailRef("Archive", "1")])
    store.upsert_headers([make_header("Projects", 9, subject="Moving words")])
    assert search(store, "moving") == [row_id(store, "Projects", "9")]


@pytest.mark.parametrize(
    "hostile",
    [
        '"',
        '""',
        "*",
        "a*b",
        "NEAR(",
        "NEAR(a b)",
        "-",
        "-budget",
        "OR",
        "a OR b",
        "AND",
        "NOT",
        "subject:budget",
        "^budget",
        "{subject}: x",
        "(",
        ")",
        "'; DROP TABLE messages; --",
        "\\",
    ],
)
def test_hostile_input_is_only_text(store: Store, hostile: str) -> None:
    store.upsert_headers([make_header("Inbox", 1, subject="Quarterly budget OR plan")])
    search(store, hostile)  # never an FTS5 syntax error
    search(store, hostile + " budget")
    assert store.message_count("Inbox") == 1


def test_quoting() -> None:
    assert fts_query('say "hi" NEAR(') == '"say" """hi""" "NEAR("*'
    assert fts_query("- * ") is None
    assert fts_query("budget", prefix_last=False) == '"budget"'
    assert fts_query("a") == '"a"'  # one letter: a word, not a prefix of every word


def test_operators_are_words(store: Store) -> None:
    store.upsert_headers(
        [make_header("Inbox", 1, subject="alpha beta"), make_header("Inbox", 2, subject="gamma")]
    )
    assert search(store, "alpha OR gamma") == []  # OR is a word to find, not an operator
    assert search(store, "-alpha") == [row_id(store, "Inbox", "1")]  # '-' is punctuation


def test_quick_filters_and_scope(store: Store) -> None:
    store.upsert_headers(
        [
            make_header("Inbox", 1, subject="report", is_read=False),
            make_header("Inbox", 2, subject="report", is_read=True, has_attachments=True),
            make_header("Inbox", 3, subject="report", is_read=True, keywords=("\\Flagged",)),
            make_header("Archive", 4, subject="report", is_read=False),
        ]
    )
    i1, i2, i3 = (row_id(store, "Inbox", str(n)) for n in (1, 2, 3))
    a4 = row_id(store, "Archive", "4")
    store.tracking.set_state("<m2@example.test>", TrackState.TRACKED)
    store.tracking.set_state("<m3@example.test>", TrackState.NEEDS_ATTENTION)
    assert search(store, "report", folder="Inbox") == [i3, i2, i1]
    assert search(store, "report") == [a4, i3, i2, i1]
    assert search(store, "report", filters={QuickFilter.UNREAD}) == [a4, i1]
    assert search(store, "", folder="Inbox", filters={QuickFilter.UNREAD}) == [i1]
    assert search(store, "", filters={QuickFilter.ATTACHMENTS}) == [i2]
    assert search(store, "", filters={QuickFilter.FLAGGED}) == [i3]
    assert search(store, "", filters={QuickFilter.TRACKED}) == [i2]
    assert search(store, "", filters={QuickFilter.NEEDS_ATTENTION}) == [i3]
    assert search(store, "", filters={QuickFilter.NOT_TRACKED}) == [a4, i1]
    assert search(store, "", filters={QuickFilter.UNREAD, QuickFilter.NOT_TRACKED}) == [a4, i1]
    assert search(store, "report", states=(TrackState.TRACKED,)) == [i2]
    assert search(store, "report", folder="Inbox", filters={QuickFilter.NOT_TRACKED}) == [i1]
    assert search(
        store, "", folder="Archive", states=(TrackState.NOT_TRACKED,), filters={QuickFilter.UNREAD}
    ) == [a4]
    assert search(store, "report", folder="Inbox", order_by="date", descending=False) == [
        i1,
        i2,
        i3,
    ]
    assert search(store, "report", limit=2, offset=1) == [i3, i2]
    assert [r.id for r in rows_by_ids(store, [i2, 999_999, i1])] == [i2, i1]


def test_filters_use_indexes(store: Store) -> None:
    plan = store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT m.id FROM messages AS m WHERE m.is_read = 0 AND m.folder = ?"
        " ORDER BY m.date_ts DESC, m.id DESC",
        ("Inbox",),
    ).fetchall()
    assert "messages_folder_unread" in str(plan)


def _shuffled_dates(store: Store) -> None:
    """60 messages in Inbox whose dates are not their arrival order (a sync may store older
    mail later), two thirds about "report", and 10 reports in Archive."""
    base = datetime(2024, 1, 1, tzinfo=UTC)
    store.upsert_headers(
        [
            make_header(
                "Inbox",
                i,
                subject=("report" if i % 3 else "other") + f" {i}",
                date=base + timedelta(hours=(i * 37) % 60),
                size=1000 + (i * 11) % 60,
                is_read=i % 2 == 0,
            )
            for i in range(60)
        ]
        + [make_header("Archive", 100 + i, subject="report") for i in range(10)]
    )


@pytest.mark.parametrize(
    ("text", "order_by", "descending", "filters"),
    [
        ("report", "date", True, ()),
        ("rep", "date", False, ()),
        ("report", "size", True, ()),
        ("report", "subject", False, (QuickFilter.UNREAD,)),
        ("", "date", True, (QuickFilter.UNREAD,)),
    ],
)
def test_first_page_is_the_head_of_the_whole_list(
    store: Store, text: str, order_by: str, descending: bool, filters: tuple[QuickFilter, ...]
) -> None:
    _shuffled_dates(store)
    kw = {"folder": "Inbox", "order_by": order_by, "descending": descending, "filters": filters}
    whole = search(store, text, **kw)  # type: ignore[arg-type]
    assert len(whole) > 10
    assert first_page(store, text, size=10, **kw) == (whole[:10], False)  # type: ignore[arg-type]
    assert first_page(store, text, size=len(whole) + 1, **kw) == (whole, True)  # type: ignore[arg-type]
    assert first_page(store, "zzqx", size=10, **kw) == ([], True)  # type: ignore[arg-type]


def test_first_page_across_folders_is_the_whole_list(store: Store) -> None:
    _shuffled_dates(store)
    whole = search(store, "report")
    assert len(whole) == 50
    assert first_page(store, "report", size=10) == (whole, True)


def test_first_page_walks_the_order_index_and_stops(store: Store) -> None:
    """The page's query reads the folder's index of the list's order and keeps the matches:
    no row of every match read and sorted (a temp B-tree), which the whole list needs."""
    _shuffled_dates(store)
    run: list[str] = []
    store.conn.set_trace_callback(run.append)  # the statement with its parameters bound
    first_page(store, "report", folder="Inbox", size=10)
    first_page(store, "report", folder="Inbox", order_by="sender", size=10)
    store.conn.set_trace_callback(None)
    ours = [sql for sql in run if sql.startswith("SELECT json_group_array")]  # not FTS5's
    plans = [
        " ".join(str(r[3]) for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql)) for sql in ours
    ]
    assert len(plans) == 2
    assert "messages_folder_date" in plans[0] and "messages_folder_sender" in plans[1]
    assert all("TEMP B-TREE" not in plan for plan in plans)


def test_a_cancelled_first_page_stops(store: Store) -> None:
    _shuffled_dates(store)
    cancel = SearchCancel()
    cancel.cancel()
    with pytest.raises(SearchCancelled):
        first_page(store, "report", folder="Inbox", cancel=cancel)


def test_a_cancelled_search_stops(store: Store) -> None:
    store.upsert_headers([make_header("Inbox", i, subject=f"common {i}") for i in range(200)])
    cancel = SearchCancel()
    cancel.cancel()
    with pytest.raises(SearchCancelled):  # cancelled before it started: it does not start
        search(store, "common", cancel=cancel)
    # Cancelled while it runs: its statement is interrupted (the GUI does it from its thread;
    # here the statement's own start, seen by the trace hook, cancels it).
    running = SearchCancel()
    store.conn.set_trace_callback(lambda sql: running.cancel() if "json_group" in sql else None)
    with pytest.raises(SearchCancelled):
        search(store, "common", cancel=running)
    store.conn.set_trace_callback(None)
    assert len(search(store, "common", cancel=SearchCancel())) == 200  # still usable


def test_body_text_of_bad_and_html_mail() -> None:
    assert body_text(b"\x00\xff garbage without headers") is not None
    html = b"Content-Type: text/html\r\n\r\n<style>x{}</style><p>Caf&eacute; <i>menu</i></p>"
    assert "Café" in body_text(html) and "style" not in body_text(html)
    assert len(body_text(mime("word " * 100_000), limit=1000)) == 1000


def test_existing_bodies_are_indexed_from_the_backlog(tmp_path: Path) -> None:
    """A store from before v9: headers are indexed by the migration, cached bodies later by
    the background backlog."""
    path = tmp_path / "old.sqlite"
    store = Store.open(path)
    store.upsert_headers([make_header("Inbox", i) for i in range(1, 4)])
    ids = [row_id(store, "Inbox", str(i)) for i in range(1, 4)]
    for rid in ids:
        store.bodies.put(rid, mime(f"hazelnut {rid}"))
    with store.transaction() as conn:  # as v8 left it: the body text not indexed yet
        conn.execute("UPDATE message_search SET body = ''")
        conn.executemany("INSERT INTO search_backlog VALUES (?)", [(r,) for r in ids])
    store.close()
    store = Store.open(path)
    assert search(store, "hazelnut") == [] and backlog_size(store) == 3
    assert index_backlog(store, batch=2) == 2
    assert index_backlog(store, batch=2) == 1
    assert index_backlog(store) == 0
    assert sorted(search(store, "hazelnut")) == sorted(ids)
    store.close()


def test_migration_indexes_existing_headers(tmp_path: Path) -> None:
    path = tmp_path / "v8.sqlite"
    store = Store.open(path)
    store.upsert_headers([make_header("Inbox", 1, subject="Legacy words")])
    store.bodies.put(row_id(store, "Inbox", "1"), mime("old body"))
    store.close()
    conn = sqlite3.connect(path)  # back to v8: the search objects gone
    for sql in (
        "DROP TRIGGER messages_search_ai",
        "DROP TRIGGER messages_search_ad",
        "DROP TRIGGER messages_search_au",
        "DROP TRIGGER bodies_search_ad",
        "DROP TABLE message_search",
        "DROP TABLE search_backlog",
        "DROP INDEX messages_folder_unread",
        "DROP INDEX messages_folder_attached",
        "DROP TABLE mail_connections",  # v10
        "PRAGMA user_version = 8",
    ):
        conn.execute(sql)
    conn.commit()
    conn.close()
    store = Store.open(path)
    rid = row_id(store, "Inbox", "1")
    assert search(store, "legacy") == [rid]
    assert backlog_size(store) == 1
    index_backlog(store)
    assert search(store, "old body") == [rid]
    store.close()


WORD = st.text(
    alphabet=st.characters(categories=("Lu", "Ll", "Nd"), max_codepoint=0x4FF),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(subjects=st.lists(st.lists(WORD, min_size=1, max_size=5), min_size=1, max_size=8))
def test_every_subject_word_finds_its_message(
    tmp_path_factory: pytest.TempPathFactory, subjects: list[list[str]]
) -> None:
    store = Store.open(tmp_path_factory.mktemp("h") / "s.sqlite")
    try:
        store.upsert_headers(
            [make_header("Inbox", i, subject=" ".join(words)) for i, words in enumerate(subjects)]
        )
        for i, words in enumerate(subjects):
            rid = row_id(store, "Inbox", str(i))
            for word in words:
                assert rid in search(store, word), (word, words)
                assert rid in search(store, word, folder="Inbox")
    finally:
        store.close()
