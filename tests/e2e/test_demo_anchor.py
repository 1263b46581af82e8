"""The demo is anchored on the day it is created (issue 13): made on any day, its newest mail is
from that day, and its first sync shows what the README promises — mail tracked from the CRM,
mail a colleague tracked, and new replies tracked by correlation. The anchor is kept, so later
starts see the same demo, and a demo directory from before anchors were kept still opens."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.domain.correlation import CorrelationMethod
from core.domain.model import MessageHeader, TrackState
from core.domain.tracking import TrackReason
from core.mail.demo import ANCHOR, create_demo_mailbox
from core.mail.maildir import MaildirBackend
from desktop.demo import ANCHOR_FILE, NOW_VARIABLE, DemoEnvironment, demo_anchor, start_demo

# The whole demo: the counts the README's story needs hold for this size.
MESSAGES = 2000
THREAD_METHODS = {
    CorrelationMethod.TOKEN,
    CorrelationMethod.IN_REPLY_TO,
    CorrelationMethod.CONVERSATION_INDEX,
}


def _hour(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _headers(mailbox: Path) -> list[MessageHeader]:
    box = MaildirBackend(mailbox)
    try:
        return [h for f in box.folders() for b in box.sync(f.path, None) for h in b.added]
    finally:
        box.close()


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _newest(headers: list[MessageHeader]) -> datetime:
    return max(h.date for h in headers if h.date is not None)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[DemoEnvironment]]:
    """Demos started by a test, closed after it even when it fails."""
    envs: list[DemoEnvironment] = []
    yield envs
    for env in envs:
        env.close()


@pytest.mark.parametrize(
    "clock",
    [
        datetime(2024, 2, 29, 9, 41, tzinfo=UTC),  # a leap day: six months back crosses a year
        None,  # the real today
        datetime(2031, 7, 1, 23, 59, tzinfo=UTC),
    ],
    ids=["2024-02-29", "today", "2031-07-01"],
)
def test_a_demo_made_any_day_shows_the_readme_story(tmp_path: Path, started, clock) -> None:
    now = clock or datetime.now(UTC)
    env = start_demo(tmp_path / "demo", messages=MESSAGES, anchor=clock)
    started.append(env)
    # The anchor is the creation clock to the hour, recorded beside the mailbox.
    assert env.anchor in (_hour(now), _hour(now) - timedelta(hours=1))  # the hour may turn
    recorded = json.loads((tmp_path / "demo" / ANCHOR_FILE).read_text("utf-8"))
    assert datetime.fromisoformat(recorded["anchor"]) == env.anchor

    headers = _headers(env.mailbox_dir)
    newest = _newest(headers)
    assert env.anchor - timedelta(days=1) <= newest <= env.anchor <= now
    assert min(h.date for h in headers if h.date) >= env.anchor - timedelta(days=200)
    # The CRM's history is made from that mail: nothing in it is newer than the demo's now,
    # and the colleague's tracking is recent.
    ended = [
        datetime.fromisoformat(str(row["actualend"]).replace("Z", "+00:00"))
        for row in env.workspace.crm.query("emails", select=["actualend"])
        if row.get("actualend")
    ]
    assert ended and max(ended) <= env.anchor
    assert max(ended) >= env.anchor - timedelta(days=7)

    report = env.workspace.sync_cycle()  # the first sync in the window
    assert report.ok and report.online and report.mail_online, report.errors
    store = env.workspace.store()
    counts = store.tracking.state_counts()
    assert counts[TrackState.TRACKED] > 0, counts
    assert counts[TrackState.TRACKED_BY_OTHER] > 0, counts
    tracked = store.tracking.messages_in_state(TrackState.TRACKED, 0, 10_000)
    correlated = [
        entry
        for row in tracked
        for entry in store.tracking.audit_log(row.header.message_id)
        if entry.track
        and entry.reason.code == TrackReason.CORRELATED
        and entry.details.get("correlation_method") in THREAD_METHODS
    ]
    assert correlated, "a new reply is tracked because it answers tracked mail"


def test_a_second_start_keeps_the_anchor(tmp_path: Path, started) -> None:
    data = tmp_path / "demo"
    first = start_demo(data, messages=300, anchor=datetime(2027, 3, 14, 15, 9, tzinfo=UTC))
    started.append(first)
    mailbox = _digest(first.mailbox_dir)
    dates = sorted(h.date for h in _headers(first.mailbox_dir) if h.date)
    first.close()
    started.remove(first)

    again = start_demo(data, messages=300, anchor=datetime(2030, 1, 1, tzinfo=UTC))
    started.append(again)
    assert again.anchor == first.anchor == datetime(2027, 3, 14, 15, tzinfo=UTC)
    assert _digest(again.mailbox_dir) == mailbox
    assert sorted(h.date for h in _headers(again.mailbox_dir) if h.date) == dates


def test_a_demo_dir_from_before_anchors_still_opens(tmp_path: Path, started) -> None:
    """What earlier versions left: mailbox, CRM and history made on the fixed anchor, no
    record of it. It keeps that anchor (its CRM history was made from that mail)."""
    data = tmp_path / "demo"
    old = start_demo(data, messages=200, anchor=ANCHOR)
    started.append(old)
    mailbox = _digest(old.mailbox_dir)
    old.close()
    started.remove(old)
    (data / ANCHOR_FILE).unlink()

    env = start_demo(data, messages=200, anchor=datetime(2031, 7, 1, tzinfo=UTC))
    started.append(env)
    assert env.anchor == ANCHOR
    assert _digest(env.mailbox_dir) == mailbox
    assert _newest(_headers(env.mailbox_dir)) <= ANCHOR
    report = env.workspace.sync_cycle()
    assert report.ok and report.online and report.mail_online, report.errors


def test_the_clock_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(NOW_VARIABLE, "2024-02-29")
    assert demo_anchor(tmp_path / "a") == datetime(2024, 2, 29, tzinfo=UTC)
    monkeypatch.setenv(NOW_VARIABLE, "2031-07-01T08:30:00+02:00")
    assert demo_anchor(tmp_path / "b") == datetime(2031, 7, 1, 6, tzinfo=UTC)
    assert demo_anchor(tmp_path / "a") == datetime(2024, 2, 29, tzinfo=UTC)  # recorded
    monkeypatch.setenv(NOW_VARIABLE, "soon")
    with pytest.raises(ValueError, match=NOW_VARIABLE):
        demo_anchor(tmp_path / "c")
    monkeypatch.delenv(NOW_VARIABLE)
    assert demo_anchor(tmp_path / "d") <= datetime.now(UTC)


def test_same_seed_and_anchor_give_the_same_bytes(tmp_path: Path) -> None:
    anchor = datetime(2024, 2, 29, 9, tzinfo=UTC)
    one = create_demo_mailbox(tmp_path / "one", messages=200, anchor=anchor)
    two = create_demo_mailbox(tmp_path / "two", messages=200, anchor=anchor)
    other = create_demo_mailbox(
        tmp_path / "other", messages=200, anchor=anchor + timedelta(days=400)
    )
    assert _digest(one) == _digest(two) != _digest(other)
    # Another anchor moves every date by the same amount: the same mail, later.
    shift = timedelta(days=400)
    assert sorted(h.date + shift for h in _headers(one) if h.date) == sorted(
        h.date for h in _headers(other) if h.date
    )
