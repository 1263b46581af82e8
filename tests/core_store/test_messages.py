"""Folders, headers, paging, tracked state and the audit log on a real SQLite file."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.domain.model import (
    Address,
    Decision,
    Folder,
    FolderRole,
    MailRef,
    Party,
    Reason,
    RecordRef,
    TrackState,
)
from core.store import ORDER_COLUMNS, Store, thread_root
from core.store.rows import ROW_SELECT
from tests.core_store.conftest import make_header

ACCOUNT = RecordRef("account", "11111111-1111-1111-1111-111111111111", "Fabrikam Inc.")
TOKEN = Reason("token", "The subject carries tracking token CRM:0001001.")


def test_open_sets_wal_and_foreign_keys(store: Store) -> None:
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_folders_roundtrip_and_sync_state(store: Store) -> None:
    store.upsert_folders(
        [
            Folder("Inbox", "Inbox", FolderRole.INBOX),
            Folder("Inbox/Projects", "Projects", None, "Inbox"),
        ]
    )
    store.upsert_folders([Folder("Inbox", "Posteingang", FolderRole.INBOX)])
    assert store.folders() == [
        Folder("Inbox", "Posteingang", FolderRole.INBOX),
        Folder("Inbox/Projects", "Projects", None, "Inbox"),
    ]
    assert store.folder_sync_state("Inbox") is None
    store.set_folder_sync_state("Inbox", "uidvalidity=1;modseq=9")
    assert store.folder_sync_state("Inbox") == "uidvalidity=1;modseq=9"
    store.set_folder_sync_state("Unknown/Folder", "s")
    assert store.folder_sync_state("Unknown/Folder") == "s"
    assert store.folder_sync_state("Nope") is None


def test_header_roundtrip_preserves_every_field(store: Store) -> None:
    tz = timezone(timedelta(hours=2))
    header = make_header(
        "Inbox",
        5,
        subject="Ünïcode “quotes” CRM:0001001",
        cc=(Address("cc@x.test", "C C"),),
        date=datetime(2024, 3, 1, 10, 0, tzinfo=tz),
        has_attachments=True,
        is_read=True,
        thread_index="AQHZ" + "A" * 28,
        tracked_marker="tracked",
        in_reply_to="<parent@x>",
        references=("<a@x>", "<parent@x>"),
        keywords=("crm",),
        parse_errors=("bad date",),
    )
    assert store.upsert_headers([header]) == 1
    (row,) = store.message_rows("Inbox", 0, 10)
    assert row.header == header
    assert row.track_state is TrackState.NOT_TRACKED
    assert (row.activity_id, row.regarding, row.reason, row.tracked_by_other) == (
        None,
        None,
        None,
        False,
    )
    assert store.message(row.id) == row
    assert store.message_by_ref(MailRef("Inbox", "5")) == row
    assert store.messages_by_token("crm:0001001") == [row]


def test_upsert_updates_header_and_keeps_track_state(store: Store) -> None:
    store.upsert_headers([make_header("Inbox", 1)])
    store.tracking.set_state(
        "<m1@example.test>", TrackState.TRACKED, activity_id="a1", regarding=ACCOUNT, reason=TOKEN
    )
    store.upsert_headers([make_header("Inbox", 1, is_read=True, subject="Changed")])
    (row,) = store.message_rows("Inbox", 0, 10)
    assert row.header.is_read and row.header.subject == "Changed"
    assert (row.track_state, row.activity_id, row.regarding, row.reason) == (
        TrackState.TRACKED,
        "a1",
        ACCOUNT,
        TOKEN,
    )
    assert store.message_count("Inbox") == 1


def test_track_state_applies_to_every_copy_and_to_later_copies(store: Store) -> None:
    store.upsert_headers(
        [make_header("Inbox", 1), make_header("Archive", 9, message_id="<m1@example.test>")]
    )
    changed = store.tracking.set_state(
        "<m1@example.test>", TrackState.TRACKED_BY_OTHER, activity_id="a1"
    )
    assert changed == 2
    store.upsert_headers([make_header("Sent", 3, message_id="<m1@example.test>")])
    rows = store.messages_by_message_id("<m1@example.test>")
    assert len(rows) == 3
    assert all(r.track_state is TrackState.TRACKED_BY_OTHER and r.tracked_by_other for r in rows)
    assert store.tracking.state_of("<m1@example.test>") is TrackState.TRACKED_BY_OTHER


def test_track_state_before_header_arrives(store: Store) -> None:
    assert store.tracking.set_state("<early@x>", TrackState.PENDING) == 0
    store.upsert_headers([make_header("Inbox", 1, message_id="<early@x>")])
    assert store.messages_by_message_id("<early@x>")[0].track_state is TrackState.PENDING


def test_remove_messages(store: Store) -> None:
    store.upsert_headers(make_header("Inbox", i) for i in range(5))
    assert (
        store.remove_messages(
            [MailRef("Inbox", "1"), MailRef("Inbox", "3"), MailRef("Inbox", "99")]
        )
        == 2
    )
    assert store.message_count("Inbox") == 3
    assert store.clear_folder("Inbox") == 3
    assert store.message_count("Inbox") == 0


@pytest.mark.parametrize("order_by", sorted(ORDER_COLUMNS))
@pytest.mark.parametrize("descending", [True, False])
def test_paging_is_a_stable_total_order(store: Store, order_by: str, descending: bool) -> None:
    store.upsert_headers(make_header("Inbox", i, size=i % 3) for i in range(50))
    store.tracking.set_state("<m7@example.test>", TrackState.TRACKED, regarding=ACCOUNT)
    pages = [
        store.message_rows("Inbox", off, 7, order_by=order_by, descending=descending)
        for off in range(0, 50, 7)
    ]
    ids = [r.id for page in pages for r in page]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 50


def test_paging_orders(store: Store) -> None:
    store.upsert_headers(
        [
            make_header("Inbox", 1, subject="Re: banana", sender=Address("z@x", "Zed")),
            make_header("Inbox", 2, subject="apple", sender=Address("a@x", "")),
            make_header("Inbox", 3, subject="FW: cherry", sender=Address("m@x", "mike")),
        ]
    )

    def uids(order_by: str, descending: bool = False) -> list[str]:
        rows = store.message_rows("Inbox", 0, 10, order_by=order_by, descending=descending)
        return [r.header.ref.uid for r in rows]

    assert uids("date", descending=True) == ["3", "2", "1"]
    assert uids("subject") == ["2", "1", "3"]
    assert uids("sender") == ["2", "3", "1"]
    with pytest.raises(ValueError, match="order_by"):
        store.message_rows("Inbox", 0, 10, order_by="id; DROP TABLE messages")


def test_every_order_uses_an_index(store: Store) -> None:
    for column in ORDER_COLUMNS.values():
        plan = " ".join(
            r[3]
            for r in store.conn.execute(
                f"EXPLAIN QUERY PLAN SELECT {ROW_SELECT} FROM messages WHERE folder = ? "
                f"ORDER BY {column} DESC, id DESC LIMIT 50 OFFSET 100",
                ("Inbox",),
            )
        )
        assert "INDEX" in plan and "TEMP B-TREE" not in plan, plan
    plan = " ".join(
        r[3]
        for r in store.conn.execute(
            f"EXPLAIN QUERY PLAN SELECT {ROW_SELECT} FROM messages WHERE track_state = ? "
            "ORDER BY date_ts DESC, id DESC LIMIT 50",
            ("tracked",),
        )
    )
    assert "TEMP B-TREE" not in plan


def test_counts_and_state_views(store: Store) -> None:
    store.upsert_headers(make_header("Inbox", i) for i in range(10))
    store.upsert_headers([make_header("Sent", 100, message_id="<m2@example.test>")])
    store.tracking.set_state("<m2@example.test>", TrackState.TRACKED, reason=TOKEN)
    store.tracking.set_state("<m5@example.test>", TrackState.NEEDS_ATTENTION)
    counts = store.tracking.state_counts()
    assert counts[TrackState.TRACKED] == 2
    assert counts[TrackState.NEEDS_ATTENTION] == 1
    assert counts[TrackState.NOT_TRACKED] == 8
    assert counts[TrackState.FAILED] == 0
    tracked = store.tracking.messages_in_state(TrackState.TRACKED, 0, 10)
    assert [r.header.ref for r in tracked] == [MailRef("Sent", "100"), MailRef("Inbox", "2")]


def test_folder_counts_give_messages_and_unread_per_folder(store: Store) -> None:
    store.upsert_headers(make_header("Inbox", i, is_read=i % 3 == 0) for i in range(9))
    store.upsert_headers([make_header("Inbox/Projects", 50, is_read=True)])
    assert store.folder_counts() == {"Inbox": (9, 6), "Inbox/Projects": (1, 0)}
    store.remove_messages([MailRef("Inbox/Projects", "50")])
    assert store.folder_counts() == {"Inbox": (9, 6)}


def test_audit_log(store: Store) -> None:
    decision = Decision(
        track=True,
        reason=TOKEN,
        regarding=ACCOUNT,
        needs_review=True,
        parties=(Party(Address("a@x"), "from", (ACCOUNT,)),),
        unresolved=(Address("u@x"),),
        correlation_method="token",
    )
    store.tracking.record_decision("<m1@x>", decision, source="auto")
    store.tracking.record_decision(
        "<m1@x>", Decision(False, Reason("user", "Untracked by you")), source="user"
    )
    first, second = store.tracking.audit_log("<m1@x>")
    assert (first.track, first.reason, first.regarding, first.source) == (
        True,
        TOKEN,
        ACCOUNT,
        "auto",
    )
    assert first.details["needs_review"] and first.details["unresolved"] == ["u@x"]
    assert first.at.tzinfo is not None and first.at <= second.at
    assert (second.track, second.regarding, second.source) == (False, None, "user")
    assert store.tracking.audit_log("<other@x>") == []


def test_settings_snapshot(store: Store) -> None:
    assert store.snapshots.get("organization") is None
    store.snapshots.save("organization", {"trackingprefix": "CRM:", "enablesmartmatching": False})
    store.snapshots.save("organization", {"trackingprefix": "TB:"})
    assert store.snapshots.get("organization") == {"trackingprefix": "TB:"}
    assert store.snapshots.saved_at("organization") is not None


def test_body_cache_is_bounded_lru(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", body_cache_bytes=3000) as store:
        store.upsert_headers(make_header("Inbox", i) for i in range(4))
        ids = [r.id for r in store.message_rows("Inbox", 0, 10, descending=False)]
        for row_id in ids[:3]:
            store.bodies.put(row_id, b"x" * 1000)
        assert store.bodies.get(ids[0]) == b"x" * 1000  # now most recently used
        store.bodies.put(ids[3], b"y" * 1000)
        assert store.bodies.get(ids[1]) is None  # the least recently used went
        assert store.bodies.get(ids[0]) is not None and store.bodies.get(ids[3]) is not None
        assert store.bodies.size() <= 3000
        store.bodies.put(ids[2], b"z" * 5000)  # larger than the bound: not cached
        assert store.bodies.size() <= 3000
        store.remove_messages([MailRef("Inbox", "0")])  # bodies follow their message
        assert store.bodies.get(ids[0]) is None
        assert store.bodies.evict(0) >= 1 and store.bodies.size() == 0


def test_thread_root_and_lookup(store: Store) -> None:
    from core.domain.conversation_index import ConversationIndex

    first = ConversationIndex.new()
    reply = first.child()
    assert thread_root(first.header) == thread_root(reply.header) == first.root
    assert thread_root("not base64!") is None and thread_root(None) is None
    store.upsert_headers(
        [
            make_header("Inbox", 1, thread_index=first.header),
            make_header("Inbox", 2, thread_index=reply.header),
            make_header("Inbox", 3),
        ]
    )
    rows = store.messages_by_thread_root(first.root)
    assert sorted(r.header.ref.uid for r in rows) == ["1", "2"]


def test_transaction_rolls_back_everything(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_headers([make_header("Inbox", 1)])
        store.tracking.set_state("<m1@example.test>", TrackState.PENDING)
        raise RuntimeError("boom")
    assert store.message_count("Inbox") == 0
    assert store.tracking.state_of("<m1@example.test>") is TrackState.NOT_TRACKED


def test_worker_thread_with_its_own_store(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    main = Store.open(path)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with Store.open(path) as own:
                own.upsert_headers(make_header("Inbox", i) for i in range(500))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    for _ in range(20):
        main.message_count("Inbox")  # readers never block on the writer (WAL)
    thread.join()
    assert not errors
    assert main.message_count("Inbox") == 500
    main.close()


def test_date_naive_is_utc_and_sorts_with_aware(store: Store) -> None:
    store.upsert_headers(
        [
            make_header("Inbox", 1, date=datetime(2024, 1, 1, 12, 0)),
            make_header("Inbox", 2, date=datetime(2024, 1, 1, 11, 30, tzinfo=UTC)),
            make_header("Inbox", 3, date=None),
        ]
    )
    rows = store.message_rows("Inbox", 0, 10, descending=True)
    assert [r.header.ref.uid for r in rows] == ["1", "2", "3"]


def test_apply_flag_changes(store: Store) -> None:
    from core.mail.base import FlagChange

    store.upsert_headers([make_header("Inbox", 1), make_header("Inbox", 2)])
    changed = store.apply_flag_changes(
        [
            FlagChange(MailRef("Inbox", "1"), True, ("crm", "red"), "tracked"),
            FlagChange(MailRef("Inbox", "404"), True),
        ]
    )
    assert changed == 1
    header = store.message_by_ref(MailRef("Inbox", "1")).header  # type: ignore[union-attr]
    assert (header.is_read, header.keywords, header.tracked_marker) == (
        True,
        ("crm", "red"),
        "tracked",
    )


def test_deferred_checkpoint_nests_and_restores(store: Store) -> None:
    def autocheckpoint() -> int:
        return int(store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    before = autocheckpoint()
    with store.deferred_checkpoint():
        assert autocheckpoint() == 0
        with store.deferred_checkpoint():
            store.upsert_headers(make_header("Inbox", i) for i in range(50))
        assert autocheckpoint() == 0
    assert autocheckpoint() == before
    assert store.message_count("Inbox") == 50


def test_a_later_copy_sorts_by_regarding_like_the_first(store: Store) -> None:
    """A copy that inherits its tracked state gets the same Regarding sort key as the
    copies that were there when the state was set (case folding beyond ASCII, no padding)."""
    regarding = RecordRef("account", "22222222-2222-2222-2222-222222222222", "Ärzte Straße ")
    store.upsert_headers([make_header("Inbox", 1, message_id="<m2@example.test>")])
    store.tracking.set_state("<m2@example.test>", TrackState.TRACKED, regarding=regarding)
    store.upsert_headers([make_header("Archive", 2, message_id="<m2@example.test>")])
    keys = [
        k
        for (k,) in store.conn.execute(
            "SELECT regarding_sort FROM messages WHERE message_id = ?", ("<m2@example.test>",)
        )
    ]
    assert keys == ["ärzte strasse", "ärzte strasse"]
