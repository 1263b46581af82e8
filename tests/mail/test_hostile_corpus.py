"""The malformed-MIME corpus (issue 18: item 7 and "the suite that keeps it so") through the
mail sync and tracking, against a Maildir and Dovecot, tracked into the emulator.

For each backend: the sync stores every message (no exception), every message has a key of
its own (a real Message-ID or a synthetic one, never ``""``), a re-sync and a fresh store give
the same keys, and tracking them all leaves each in the CRM once, read back over the CRM's API,
with nothing parked. The corpus is built in code (tests/corpus/hostile.py) into ``tmp_path``.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.message_identity import is_synthetic, usable_message_id
from core.domain.model import MailRef, TrackState
from core.mail import open_backend, parse_headers
from core.mail.maildir import deliver, new_key
from core.workspace.facade import Workspace
from crmserver import RunningServer
from tests.corpus import hostile
from tests.plugins.crm import crm_http_client
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer
from tests.sync.env import ME, Env

T = TypeVar("T")

#: Hang-guards only (generous; nothing here asserts a speed).
SYNC_GUARD = 120.0
TRACK_GUARD = 300.0


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    yield Env(fresh_crm, dovecot, smtp_server, tmp_path)


def within(seconds: float, what: str, call: Callable[[], T]) -> T:
    """``call()`` in a thread; fails the test (instead of hanging it) after ``seconds``."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # re-raised below, in the test's thread
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True, name=f"guard:{what}")
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{what} still running after {seconds:.0f} s"
    if failure:
        raise failure[0]
    return result[0]


def put_into_maildir(folder_dir: Path, messages: dict[str, bytes]) -> None:
    """Files as an MTA leaves them, bytes untouched (LMTP and APPEND would turn bare CRs into
    CRLF, and the CR-only case would be gone), owned by the owner of the directory above
    (Dovecot's mail user for its mailboxes)."""
    owner = folder_dir.parent.stat()
    for sub in ("", "cur", "new", "tmp"):
        (folder_dir / sub).mkdir(parents=True, exist_ok=True)
    paths = [deliver(folder_dir, new_key(), data) for data in messages.values()]
    if os.geteuid() == 0 and owner.st_uid != 0:
        for path in [folder_dir, *(folder_dir / s for s in ("cur", "new", "tmp")), *paths]:
            os.chown(path, owner.st_uid, owner.st_gid)


def workspace(env: Env, name: str, url: str, user: str | None) -> Workspace:
    def open_mailbox() -> Any:
        if user is None:
            return open_backend(url)
        return open_backend(url, user=user, password=PASSWORD, smtp_url=env.smtp.url())

    crm = CrmClient(
        env.crm.url,
        BasicAuth(ME.email, demo_data.DEMO_PASSWORD),
        timeout=30,
        get_retries=0,
    )
    return Workspace(
        store_path=env.tmp / name / "store.sqlite",
        open_mailbox=open_mailbox,
        crm=crm,
        owner=ME,
        mailbox_name=ME.email,
    )


def keys_by_ref(ws: Workspace, folder: str) -> dict[tuple[str, str], str]:
    store = ws.store()
    out: dict[tuple[str, str], str] = {}
    for row_id in store.message_ids(folder):
        row = store.message(row_id)
        assert row is not None
        out[(row.header.ref.folder, row.header.ref.uid)] = row.header.message_id
    return out


def crm_emails(env: Env, message_id: str) -> list[dict[str, Any]]:
    """The CRM's e-mails with this Message-ID, asked over its API (not through the app)."""
    literal = message_id.replace("'", "''")
    with crm_http_client(env.crm) as http:
        r = http.get(
            "emails", params={"$filter": f"messageid eq '{literal}'", "$select": "activityid"}
        )
    r.raise_for_status()
    return list(r.json()["value"])


def check_corpus(env: Env, url: str, user: str | None, folder: str, count: int) -> None:
    """Sync, keys, re-sync, fresh store, track everything: the assertions of both backends."""
    ws = workspace(env, "a", url, user)
    changes = within(SYNC_GUARD, "first mail sync", ws.sync_mail)
    assert changes.errors == (), changes.errors
    keys = keys_by_ref(ws, folder)
    assert len(keys) == count, "a message of the corpus was not stored"
    ids = list(keys.values())
    assert all(usable_message_id(i) == i for i in ids), ids
    assert len(set(ids)) == count, "two messages share a key"

    within(SYNC_GUARD, "second mail sync", ws.sync_mail)
    assert keys_by_ref(ws, folder) == keys
    again = workspace(env, "b", url, user)  # another device: a store of its own
    within(SYNC_GUARD, "mail sync into a fresh store", again.sync_mail)
    assert keys_by_ref(again, folder) == keys
    again.close()

    within(TRACK_GUARD, "tracking", lambda: ws.track(ws.store().message_ids(folder)))
    for _ in range(5):
        if not ws.queue():
            break
        within(TRACK_GUARD, "sync cycle", ws.sync_cycle)
    assert ws.queue() == [], [(q.subject[:40], q.state, q.last_error) for q in ws.queue()]
    store = ws.store()
    for row_id in store.message_ids(folder):
        row = store.message(row_id)
        assert row is not None and row.track_state is TrackState.TRACKED, row
        assert len(crm_emails(env, row.header.message_id)) == 1, row.header.message_id
    ws.close()


def test_corpus_in_a_maildir_syncs_and_tracks_each_message_once(env: Env, tmp_path: Path) -> None:
    tag = f"-{uuid.uuid4().hex[:8]}"
    messages = hostile.corpus(tag)
    root = tmp_path / "maildir"
    put_into_maildir(root, messages)
    # The 50 MB attachment: on this backend only (written a chunk at a time).
    hostile.write_big_attachment(root / "cur" / f"{new_key()}:2,", tag)
    check_corpus(env, f"maildir:{root}", None, "Inbox", len(messages) + 1)


def test_corpus_in_dovecot_syncs_and_tracks_each_message_once(env: Env) -> None:
    tag = f"-{uuid.uuid4().hex[:8]}"
    messages = hostile.corpus(tag)
    user = env.dovecot.new_user("hostile")
    put_into_maildir(env.dovecot.root / "mail" / user, messages)
    check_corpus(env, env.mailbox_url(), user, "Inbox", len(messages))


def test_the_corpus_has_distinct_content_and_the_classes_it_claims() -> None:
    messages = hostile.corpus("-x")
    assert len(messages) == len(set(messages.values())) == 17
    assert len(messages["huge_subject"]) > 1024 * 1024
    assert messages["many_header_lines"].count(b"\r\nX-Filler-") == 5000
    assert messages["ten_thousand_recipients"].count(b"@rcpt.example>") == 10_000
    assert b"\x00" in messages["nul_bytes"].split(b"\r\n\r\n", 1)[0]
    assert messages["deep_nesting"].count(b"multipart/mixed") == 200
    assert messages["many_parts"].count(b"\r\n--many\r\n") == 10_000
    assert b"\n" not in messages["cr_only_line_ends"]
    assert max(map(len, messages["two_megabyte_line"].split(b"\r\n"))) >= 2 * 1024 * 1024 - 5


def test_synthetic_ids_are_given_to_exactly_the_cases_without_a_usable_one() -> None:

    for name, raw in hostile.corpus("-y").items():
        h = parse_headers(raw, MailRef("Inbox", name))
        assert is_synthetic(h.message_id) == (name in hostile.WITHOUT_USABLE_ID), name
        assert usable_message_id(h.message_id) == h.message_id


#: The cases about the Message-ID field itself (small: Exchange is a fake here).
_ID_CASES = (
    "no_message_id",
    "empty_message_id",
    "message_id_with_spaces",
    "message_id_with_control_characters",
    "message_id_without_at",
    "message_id_2000_characters",
    "duplicate_message_ids",
    "usable_message_id",
)


def test_exchange_items_without_a_usable_id_get_distinct_stable_ones(ews_server: Any) -> None:
    """EWS gives the InternetMessageId as a property: the same rule, without the item's size
    (Exchange counts its properties, which marking it tracked changes)."""
    user = ews_server.new_user()
    url = ews_server.url()

    def synced() -> dict[MailRef, str]:
        with open_backend(url, user=user, password=ews_server.password, auth_type="basic") as b:
            return {
                h.ref: h.message_id for batch in b.sync("Inbox", None, 100) for h in batch.added
            }

    with open_backend(url, user=user, password=ews_server.password, auth_type="basic") as b:
        refs = {name: b.append("Inbox", hostile.CASES[name]("-ews")) for name in _ID_CASES}
    first = synced()
    assert set(first) == set(refs.values())
    assert len(set(first.values())) == len(_ID_CASES)
    for name, ref in refs.items():
        assert is_synthetic(first[ref]) == (name in hostile.WITHOUT_USABLE_ID), name
        assert usable_message_id(first[ref]) == first[ref]
    with open_backend(url, user=user, password=ews_server.password, auth_type="basic") as b:
        b.set_tracked(refs["no_message_id"], "3f2504e0-4f89-11d3-9a0c-0305e82c3301")
    assert synced() == first
