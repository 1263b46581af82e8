"""The demo mailbox generator: deterministic, idempotent, and containing what the demo needs."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from core.domain import demo_data as dd
from core.domain.model import FolderRole, MessageHeader
from core.mail.demo import ANCHOR, create_demo_mailbox
from core.mail.maildir import MaildirBackend
from core.mail.parse import parse_message


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_demo_mailbox(tmp_path_factory.mktemp("demo") / "mail", messages=2000)


@pytest.fixture(scope="module")
def headers(demo: Path) -> dict[str, list[MessageHeader]]:
    box = MaildirBackend(demo)
    out: dict[str, list[MessageHeader]] = {}
    for f in box.folders():
        out[f.path] = [h for b in box.sync(f.path, None) for h in b.added]
    return out


def test_deterministic_and_idempotent(demo: Path, tmp_path: Path) -> None:
    other = create_demo_mailbox(tmp_path / "again", messages=2000)
    assert _tree_digest(other) == _tree_digest(demo)
    before = _tree_digest(demo)
    create_demo_mailbox(demo, messages=50, seed=99)  # exists: left alone
    assert _tree_digest(demo) == before


def test_folders_and_size(demo: Path, headers: dict[str, list[MessageHeader]]) -> None:
    box = MaildirBackend(demo)
    roles = {f.role for f in box.folders() if f.role}
    assert roles == set(FolderRole)
    assert {"Inbox/Projects", "Inbox/Projects/Fabrikam", "Archive"} <= set(headers)
    assert sum(len(v) for v in headers.values()) == 2000
    assert sum(1 for v in headers.values() if v) >= 5
    total = sum(p.stat().st_size for p in demo.rglob("*") if p.is_file())
    assert total < 30_000_000


def test_content_covers_the_demo_story(headers: dict[str, list[MessageHeader]]) -> None:
    allh = [h for v in headers.values() for h in v]
    senders = {h.sender.key for h in allh if h.sender}
    assert {c.email for c in dd.CONTACTS[:3]} <= senders
    assert {x.email for x in dd.LEADS} <= senders
    assert {e for _, e in dd.UNKNOWN_SENDERS[:2]} <= senders
    assert {u.email for u in dd.COLLEAGUES} <= senders
    assert any("CRM:" in h.subject and h.subject.upper().startswith("RE:") for h in allh)
    assert any(not h.subject.isascii() for h in allh)
    assert 1 <= sum(1 for h in allh if h.parse_errors) <= 10
    assert all(h.date is None or h.date <= ANCHOR for h in allh)
    assert sum(1 for h in allh if h.size > 1_000_000) >= 1
    # Threads: Outlook conversation index grows by 5-byte child blocks along a reply chain.
    replies = [h for h in allh if h.thread_index and h.in_reply_to]
    assert replies
    for h in replies:
        raw = base64.b64decode(h.thread_index or "")
        assert len(raw) >= 27 and (len(raw) - 22) % 5 == 0 and raw[0] == 1
    assert any(len(h.references) >= 3 for h in allh)
    assert sum(1 for h in headers["Inbox"] if not h.is_read) > 10


def test_html_newsletter_has_remote_image_and_script(
    demo: Path, headers: dict[str, list[MessageHeader]]
) -> None:
    box = MaildirBackend(demo)
    news = next(h for h in headers["Inbox"] if h.sender and h.sender.email.startswith("news@"))
    msg = parse_message(box.fetch(news.ref), news.ref)
    assert msg.html and "<script" in msg.html and 'src="http://' in msg.html
    assert "document.location" not in msg.text  # text rendering drops scripts


def test_thread_index_chains_follow_replies(headers: dict[str, list[MessageHeader]]) -> None:
    from core.domain.conversation_index import ConversationIndex

    allh = {h.message_id: h for v in headers.values() for h in v}
    checked = 0
    for h in allh.values():
        parent = allh.get(h.in_reply_to or "")
        if parent is None or not (h.thread_index and parent.thread_index):
            continue
        child, par = ConversationIndex(h.thread_index), ConversationIndex(parent.thread_index)
        assert child.is_descendant_of(par) and child.same_thread(par)
        assert child.depth >= par.depth + 1
        checked += 1
    assert checked > 50


def test_tracking_tokens_are_in_the_organisations_format(
    headers: dict[str, list[MessageHeader]],
) -> None:
    from core.domain.crm_settings import TrackingTokenSettings
    from core.domain.subjects import find_token

    tokens = {
        find_token(h.subject, TrackingTokenSettings())
        for v in headers.values()
        for h in v
        if "CRM:" in h.subject
    }
    assert None not in tokens and len(tokens) > 20
