"""decide(): token-only mode, the administrator's switch, outgoing mail, size limit, reasons."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.crm_settings import IncomingFilter, OrgSettings, UserOptions
from core.domain.model import Address, MailRef, MessageHeader
from core.domain.tracking import CrmReasonCode, Direction, promote_response
from tests.core import JANE, OPPORTUNITY, PRIYA, STRANGER, World, X, message, reply

MB = 1024 * 1024


def token_only_world(option: IncomingFilter = IncomingFilter.RESPONSES_TO_CRM) -> World:
    return World(
        org=OrgSettings(token_only=True, smart_matching=True),
        options=UserOptions(incoming_filter=option),
    )


# --- token-only mode -------------------------------------------------------------------------


def test_token_only_reply_with_token_is_tracked_and_reason_names_token() -> None:
    world = token_only_world()
    sent = world.send_from_crm("Quote for 200 licences", to=JANE)
    decision = world.decide(reply(sent, JANE))
    assert decision.track
    assert decision.reason.text == "Reply to tracked e-mail CRM:0001023 (tracking token)"
    assert decision.regarding == OPPORTUNITY
    assert decision.correlation_method == "token"
    assert decision.crm_reason_code == CrmReasonCode.CORRELATION_MATCH
    assert not decision.queue_rules_eligible


@pytest.mark.parametrize(
    "option",
    [
        IncomingFilter.ALL,
        IncomingFilter.RESPONSES_TO_CRM,
        IncomingFilter.FROM_LEADS_CONTACTS_ACCOUNTS,
    ],
)
def test_token_only_removing_the_token_stops_tracking(option: IncomingFilter) -> None:
    world = token_only_world(option)
    sent = world.send_from_crm("Quote for 200 licences", to=JANE)
    decision = world.decide(reply(sent, JANE, keep_token=False))  # same thread, no token
    assert not decision.track
    assert decision.reason.text == "Not tracked: token-only mode and no token"
    assert decision.queue_rules_eligible  # e-mail-to-case rules may still pick it up
    assert decision.correlated_activity is None


def test_token_only_pasting_a_token_starts_tracking() -> None:
    world = token_only_world()
    sent = world.send_from_crm("Quote for 200 licences", to=JANE)
    token = sent.subject.split()[-1]
    pasted = message(f"Something else entirely {token.lower()}", sender=STRANGER)
    decision = world.decide(pasted)
    assert decision.track and decision.regarding == OPPORTUNITY


def test_token_only_unknown_token_is_not_tracked() -> None:
    world = token_only_world(IncomingFilter.ALL)
    decision = world.decide(message("Hi CRM:0999999", sender=JANE))
    assert not decision.track and decision.reason.code == "token_unknown"
    assert decision.crm_reason_code == CrmReasonCode.NO_CORRELATION_MATCH
    assert "CRM:0999999" in decision.reason.text


def test_token_only_manual_tracking_still_works() -> None:
    world = token_only_world()
    decision = world.decide(
        message("No token here", sender=JANE), manual=True, regarding=OPPORTUNITY
    )
    assert decision.track and decision.regarding == OPPORTUNITY
    assert decision.reason.text == "Tracked by you, regarding 200 licences"


# --- administrator's switch, duplicates, internal mail ---------------------------------------


def test_admin_switch_stops_automatic_but_not_manual_tracking() -> None:
    world = World(
        options=UserOptions(incoming_filter=IncomingFilter.ALL, automatic_tracking_enabled=False)
    )
    mail = message("Hello", sender=JANE)
    decision = world.decide(mail)
    assert not decision.track and decision.reason.code == "automatic_off"
    assert world.decide(mail, manual=True).track


def test_already_tracked_mail_is_a_duplicate() -> None:
    world = World(options=UserOptions(incoming_filter=IncomingFilter.ALL))
    mail = message("Hello", sender=JANE)
    world.track(mail)
    decision = world.decide(mail)
    assert not decision.track and decision.crm_reason_code == CrmReasonCode.DUPLICATE


def test_internal_mail_ignored_by_org_setting() -> None:
    world = World(
        org=OrgSettings(ignore_internal_email=True),
        options=UserOptions(incoming_filter=IncomingFilter.ALL),
    )
    decision = world.decide(message("Lunch?", sender=PRIYA))
    assert not decision.track
    assert decision.reason.text == "Not tracked: internal mail is ignored"
    assert decision.crm_reason_code == CrmReasonCode.INTERNAL_EMAIL_REJECT


def test_sender_reasons() -> None:
    world = World(options=UserOptions(incoming_filter=IncomingFilter.FROM_LEADS_CONTACTS_ACCOUNTS))
    tracked = world.decide(message("Hello", sender=JANE))
    assert tracked.reason.text == "Sender Jane Doe is a CRM contact"
    assert tracked.crm_reason_code == CrmReasonCode.SENDER_MATCH
    stranger = world.decide(message("Hello", sender=STRANGER))
    assert stranger.reason.text == (
        "Not tracked: sender Chris Parker is not a CRM lead, contact or account"
    )
    assert stranger.crm_reason_code == CrmReasonCode.INVALID_SENDER
    assert STRANGER in stranger.unresolved


def test_responses_option_unknown_token_reason() -> None:
    world = World()
    decision = world.decide(message("Re: old thread CRM:0001999", sender=JANE))
    assert not decision.track and decision.crm_reason_code == CrmReasonCode.NO_CORRELATION_MATCH
    new = world.decide(message("Hello", sender=JANE))
    assert new.reason.text == "Not tracked: not a reply to a tracked e-mail"


# --- outgoing mail ---------------------------------------------------------------------------


def test_outgoing_reply_tracked_only_with_option() -> None:
    world = World(options=UserOptions(incoming_filter=IncomingFilter.ALL))
    incoming = message("Question", sender=JANE)
    world.track(incoming, OPPORTUNITY)
    answer = reply(incoming, X, recipients=(JANE,))
    off = world.decide(answer)
    assert not off.track and off.reason.code == "reply_option_off"
    world.options = replace(world.options, track_replies_to_tracked=True)
    on = world.decide(answer)
    assert on.track and on.regarding == OPPORTUNITY and on.reason.code == "reply_to_tracked"


def test_outgoing_marked_when_sending() -> None:
    world = World()
    mail = message("Proposal", sender=X, to=(JANE,))
    assert world.decide(mail).reason.code == "outgoing_not_marked"
    marked = world.decide(mail, manual=True, regarding=OPPORTUNITY)
    assert marked.track
    assert marked.reason.text == (
        "Tracked because you marked it when sending, regarding 200 licences"
    )


def test_direction_can_be_given() -> None:
    world = World(options=UserOptions(incoming_filter=IncomingFilter.ALL))
    mail = message("Proposal", sender=JANE)
    assert not world.decide(mail, direction=Direction.OUTGOING).track


# --- size limit ------------------------------------------------------------------------------


def test_large_mail_tracked_without_attachments_when_rest_fits() -> None:
    world = World(options=UserOptions(incoming_filter=IncomingFilter.ALL))
    mail = message("Drawings", sender=JANE, size=8 * MB, has_attachments=True)
    decision = world.decide(mail, attachment_bytes=7 * MB)
    assert decision.track and decision.attachments_dropped
    assert "attachments left out" in decision.reason.text
    assert "5.0 MB" in decision.reason.text


def test_large_mail_not_tracked_when_body_alone_too_big() -> None:
    world = World(options=UserOptions(incoming_filter=IncomingFilter.ALL))
    mail = message("Huge body", sender=JANE, size=8 * MB, has_attachments=True)
    decision = world.decide(mail, attachment_bytes=1 * MB)
    assert not decision.track and not decision.attachments_dropped
    assert decision.reason.code == "too_large"
    no_attachments = world.decide(message("Huge", sender=JANE, size=6 * MB), manual=True)
    assert not no_attachments.track  # even manual tracking cannot upload it


def test_promote_response_shape() -> None:
    world = World(options=UserOptions(incoming_filter=IncomingFilter.ALL))
    decision = world.decide(message("Hello", sender=JANE))
    assert promote_response(decision) == {
        "ShouldPromote": True,
        "ShouldDeliver": True,
        "ReasonCode": 6,
    }


# --- hostile input ---------------------------------------------------------------------------

header_text = st.one_of(st.none(), st.text(max_size=60))


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(max_size=80),
    in_reply_to=header_text,
    thread_index=header_text,
    references=st.lists(st.text(max_size=30), max_size=3),
    sender=st.one_of(st.none(), st.builds(Address, st.text(max_size=30), st.text(max_size=20))),
    size=st.integers(0, 50 * MB),
    option=st.sampled_from(list(IncomingFilter)),
    token_only=st.booleans(),
)
def test_decide_never_raises_on_any_headers(
    subject: str,
    in_reply_to: str | None,
    thread_index: str | None,
    references: list[str],
    sender: Address | None,
    size: int,
    option: IncomingFilter,
    token_only: bool,
) -> None:
    world = World(
        org=OrgSettings(smart_matching=True, token_only=token_only),
        options=UserOptions(incoming_filter=option),
    )
    world.send_from_crm("Quote for 200 licences", to=JANE)
    mail = MessageHeader(
        ref=MailRef("Inbox", "1"),
        message_id=subject[:20],
        subject=subject,
        sender=sender,
        to=(X,),
        in_reply_to=in_reply_to,
        references=tuple(references),
        thread_index=thread_index,
        size=size,
        has_attachments=True,
    )
    decision = world.decide(mail)
    assert decision.reason.code and decision.reason.text
    assert not (decision.track and decision.reason.text.startswith("Not tracked"))


def test_direction_from_crm_codes() -> None:
    assert Direction.from_crm(1) is Direction.OUTGOING
    assert Direction.from_crm(True) is Direction.OUTGOING
    assert Direction.from_crm(0) is Direction.INCOMING
    assert Direction.from_crm(None) is None
