"""The user's own exclusions (issue 17): the never-track list and stopped conversations, on
values — every automatic rule honours them, a manual Track does not."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.config.local_options import LocalOptions
from core.domain.crm_settings import IncomingFilter
from core.domain.model import Address
from core.domain.never_track import (
    InvalidEntry,
    NeverTrack,
    StoppedConversations,
    normalise_entry,
)
from core.domain.tracking import STOPPED_TEXT, TrackReason
from core.sync.decisions import DecisionRules, NotTracked, Promotion, lookups_needed, plan_decisions
from tests.core import JANE, KENJI, STRANGER, World, X, message, reply

# --- entries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Alice@X.com", "alice@x.com"),
        ("  <alice@x.com> ", "alice@x.com"),
        ("x.com", "@x.com"),
        ("@Lists.X.com.", "@lists.x.com"),
    ],
)
def test_entries_are_normalised(typed: str, stored: str) -> None:
    assert normalise_entry(typed) == stored


@pytest.mark.parametrize("typed", ["", "com", "@", "alice@", "alice@com", "a b@x.com", "x..com"])
def test_entries_that_are_neither_address_nor_domain_are_refused(typed: str) -> None:
    with pytest.raises(InvalidEntry):
        normalise_entry(typed)


def test_a_domain_catches_its_subdomains_but_not_lookalikes() -> None:
    never = NeverTrack.of(["x.com", "bob@y.com"])
    assert never.entry_for("jane@x.com") == "@x.com"
    assert never.entry_for("list@lists.x.com") == "@x.com"
    assert never.entry_for("jane@notx.com") is None
    assert never.entry_for("BOB@Y.com") == "bob@y.com"
    assert never.entry_for("alice@y.com") is None


# --- the rule --------------------------------------------------------------------------------


def all_mail() -> World:
    world = World()
    world.options = replace(world.options, incoming_filter=IncomingFilter.ALL)
    return world


def test_all_mail_option_does_not_track_a_sender_on_the_list() -> None:
    world = all_mail()
    decision = world.decide(
        message("Private", sender=JANE), never_track=NeverTrack.of([JANE.email])
    )
    assert not decision.track
    assert decision.reason.code == TrackReason.NEVER_TRACK
    assert decision.reason.text == f"Not tracked: {JANE.email} is on your never-track list"


def test_a_recipient_on_the_list_by_domain_is_named_with_the_domain() -> None:
    world = all_mail()
    mail = message("Hello", sender=JANE, to=(X,), cc=(Address("all@lists.internal.example"),))
    decision = world.decide(mail, never_track=NeverTrack.of(["internal.example"]))
    assert not decision.track
    assert decision.reason.text == (
        "Not tracked: all@lists.internal.example is on your never-track list (internal.example)"
    )


def test_the_users_own_address_never_counts() -> None:
    world = all_mail()
    own_domain = X.email.rpartition("@")[2]
    decision = world.decide(message("Hi", sender=JANE), never_track=NeverTrack.of([own_domain]))
    assert decision.track  # X is on the list's domain, Jane is not


def test_correlation_does_not_track_a_reply_from_someone_on_the_list() -> None:
    world = World()  # responses to CRM mail
    sent = world.send_from_crm("Quote", to=JANE)
    never = NeverTrack.of(["fabrikam.example"])
    assert world.decide(reply(sent, JANE)).track
    decision = world.decide(reply(sent, JANE), never_track=never)
    assert decision.reason.code == TrackReason.NEVER_TRACK


def test_outgoing_reply_to_someone_on_the_list_is_not_tracked() -> None:
    world = World()
    world.options = replace(world.options, track_replies_to_tracked=True)
    sent = world.send_from_crm("Quote", to=JANE)
    answer = reply(reply(sent, JANE), X, recipients=(JANE,))
    assert world.decide(answer).track
    decision = world.decide(answer, never_track=NeverTrack.of([JANE.email]))
    assert decision.reason.code == TrackReason.NEVER_TRACK


def test_manual_track_of_someone_on_the_list_still_tracks() -> None:
    world = all_mail()
    decision = world.decide(
        message("Private", sender=JANE), manual=True, never_track=NeverTrack.of([JANE.email])
    )
    assert decision.track
    assert decision.reason.code == TrackReason.MANUAL


# --- stopped conversations --------------------------------------------------------------------


def test_a_reply_in_a_stopped_conversation_is_not_correlated() -> None:
    world = World()
    sent = world.send_from_crm("Quote", to=JANE)
    other = world.send_from_crm("Contract", to=KENJI)
    stopped = StoppedConversations().stop(sent)
    later = reply(sent, JANE)
    decision = world.decide(later, stopped=stopped)
    assert not decision.track
    assert decision.reason.code == TrackReason.CONVERSATION_STOPPED
    assert decision.reason.text == STOPPED_TEXT
    assert world.decide(reply(other, KENJI), stopped=stopped).track


def test_stopping_from_a_reply_catches_replies_by_in_reply_to_only() -> None:
    world = World()
    sent = world.send_from_crm("Quote", to=JANE)
    first = reply(sent, JANE)
    stopped = StoppedConversations().stop(first)
    # a client that keeps no Thread-Index and no References, only In-Reply-To the reply
    second = replace(reply(first, X, threaded=False), in_reply_to=first.message_id)
    assert stopped.contains(second)
    assert not world.decide(second, stopped=stopped).track


def test_a_token_or_smart_match_into_a_stopped_conversation_is_stopped_too() -> None:
    world = World()
    sent = world.send_from_crm("Quote", to=JANE)
    stopped = StoppedConversations().stop(sent)
    unthreaded = reply(sent, JANE, threaded=False)  # only the token in the subject
    assert not stopped.contains(unthreaded)
    decision = world.decide(unthreaded, stopped=stopped)
    assert decision.reason.code == TrackReason.CONVERSATION_STOPPED


def test_stopped_conversation_is_not_tracked_by_the_all_mail_option_either() -> None:
    world = all_mail()
    first = message("Lunch?", sender=STRANGER)
    stopped = StoppedConversations().stop(first)
    decision = world.decide(replace(reply(first, STRANGER)), stopped=stopped)
    assert decision.reason.code == TrackReason.CONVERSATION_STOPPED


def test_manual_track_in_a_stopped_conversation_still_tracks() -> None:
    world = World()
    sent = world.send_from_crm("Quote", to=JANE)
    stopped = StoppedConversations().stop(sent)
    assert world.decide(reply(sent, JANE), manual=True, stopped=stopped).track


def test_resume_forgets_the_whole_conversation_and_storage_round_trips() -> None:
    world = World()
    sent = world.send_from_crm("Quote", to=JANE)
    first = reply(sent, JANE)
    stopped = StoppedConversations().stop(sent).stop(first)  # merged: one conversation
    assert len(stopped.groups) == 1
    again = StoppedConversations.of(stopped.stored())
    assert again == stopped
    resumed = again.resume(first)
    assert not resumed
    assert world.decide(reply(first, JANE), stopped=resumed).track


def test_local_options_keep_the_list_normalised_and_refuse_bad_entries() -> None:
    opts = LocalOptions(never_track=("Jane@Fabrikam.example", "x.com", "@X.com"))
    assert opts.never_track == ("jane@fabrikam.example", "@x.com")
    assert LocalOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(InvalidEntry):
        LocalOptions(never_track=("not an address",))
    stored = {"never_track": ["ok.example", "bad entry"], "stopped_conversations": "x"}
    loaded = LocalOptions.from_dict(stored)
    assert loaded.never_track == ("@ok.example",)
    assert loaded.stopped_conversations == ()


# --- the sync cycle's plan ------------------------------------------------------------------


def test_the_plan_honours_both_and_asks_the_crm_nothing_for_excluded_mail() -> None:
    world = World()
    sent = world.send_from_crm("Quote", to=JANE)
    other = world.send_from_crm("Contract", to=KENJI)
    rules = DecisionRules(
        world.options,
        world.org,
        world.resolver,
        world.correlator,
        never_track=NeverTrack.of(["gmail.example"]),
        stopped=StoppedConversations().stop(sent),
    )
    stopped_reply, tracked_reply = reply(sent, JANE), reply(other, KENJI)
    unknown = message("RE: Quote CRM:0999999", sender=STRANGER)
    plan = plan_decisions([stopped_reply, tracked_reply, unknown], {}, set(), rules)
    kinds = [type(a) for a in plan.actions]
    assert kinds == [NotTracked, Promotion, NotTracked]
    codes = [a.decision.reason.code for a in plan.actions]  # type: ignore[union-attr]
    assert codes[0] == TrackReason.CONVERSATION_STOPPED
    assert codes[2] == TrackReason.NEVER_TRACK
    assert unknown.message_id not in lookups_needed([unknown], rules)
