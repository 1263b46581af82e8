"""The status bar's words (core.workspace.feedback): counts and plurals, and no message that
contradicts the connection state."""

from __future__ import annotations

import pytest

from core.workspace.feedback import (
    MailVerb,
    TrackingVerb,
    counted,
    mail_action_done,
    retry_done,
    retry_refused,
    sync_done,
    tracking_done,
    tracking_partly,
    tracking_progress,
    tracking_queued,
    undone,
)


def test_counts_and_plurals() -> None:
    assert counted(0) == "0 messages"
    assert counted(1) == "1 message"
    assert counted(3) == "3 messages"
    assert counted(12345, "operation") == "12,345 operations"


def test_tracking_results_say_what_happened() -> None:
    assert tracking_done(TrackingVerb.TRACK, 3) == "Tracked 3 messages"
    assert tracking_done(TrackingVerb.UNTRACK, 1) == "Untracked 1 message"
    assert tracking_done(TrackingVerb.SET_REGARDING, 2, "Contoso") == (
        "Set regarding Contoso on 2 messages"
    )
    assert tracking_progress(TrackingVerb.TRACK, 1) == "Tracking 1 message…"
    assert tracking_progress(TrackingVerb.UNTRACK, 4) == "Untracking 4 messages…"
    assert tracking_partly(TrackingVerb.TRACK, 2, 1) == "Tracked 2 messages; 1 message could not be"


def test_queued_says_why() -> None:
    assert tracking_queued(1) == "1 queued: the CRM is offline"
    assert tracking_queued(5, work_offline=True) == "5 queued: working offline"


@pytest.mark.parametrize(
    ("verb", "count", "folder", "said"),
    [
        (MailVerb.MOVE, 4, "Archive", "Moved 4 messages to Archive"),
        (MailVerb.ARCHIVE, 1, "Archive", "Moved 1 message to Archive"),
        (MailVerb.COPY, 2, "Projects/2026", "Copied 2 messages to Projects/2026"),
        (MailVerb.READ, 1, "", "Marked 1 message as read"),
        (MailVerb.UNREAD, 7, "", "Marked 7 messages as unread"),
        (MailVerb.FLAG, 1, "", "Flagged 1 message"),
        (MailVerb.CLEAR_FLAG, 2, "", "Cleared the flag on 2 messages"),
        (MailVerb.DELETE, 3, "", "Deleted 3 messages"),
        (MailVerb.DELETE_FOR_GOOD, 1, "", "Deleted 1 message for good"),
    ],
)
def test_mail_actions(verb: MailVerb, count: int, folder: str, said: str) -> None:
    assert mail_action_done(verb, count, folder) == said
    assert mail_action_done(verb, count, folder, work_offline=True) == (
        said + "; queued: working offline"
    )


def test_nothing_to_do_is_not_a_count_of_zero() -> None:
    assert "0 messages" not in mail_action_done(MailVerb.READ, 0)


def test_retry_while_offline_says_why_nothing_happened() -> None:
    assert retry_refused(5) == (
        "The CRM is offline: 5 operations wait; they are sent when it is back"
    )
    assert retry_refused(1) == "The CRM is offline: 1 operation waits; it is sent when it is back"
    assert retry_refused(2, work_offline=True) == (
        "You are working offline: 2 operations wait; they are sent when you go online"
    )
    assert retry_done(0) == "Sent: nothing waits for the CRM."
    assert retry_done(1) == "Retried; 1 operation still waits for the CRM."


def test_synchronised_only_when_everything_was_reached() -> None:
    assert sync_done(crm_online=True) == "Synchronised"
    for said in (
        sync_done(crm_online=False),
        sync_done(crm_online=True, mail_online=False),
        sync_done(crm_online=False, mail_online=False),
        sync_done(crm_online=True, work_offline=True),
    ):
        assert not said.startswith("Synchronised"), said
    assert "the CRM is offline" in sync_done(crm_online=False)
    assert undone("Move") == "Undone: Move"
