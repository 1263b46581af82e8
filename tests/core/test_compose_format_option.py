"""The "Compose in plain text by default" option (issue 17): kept through the profile's
config and the store's snapshot, and what format a compose window starts in."""

from __future__ import annotations

from core.config.local_options import LocalOptions
from core.config.profile_config import ProfileConfig


def test_default_is_rich_text_and_replies_follow_the_original() -> None:
    rich = LocalOptions()
    assert rich.compose_plain_text is False
    assert rich.compose_in_plain_text() is False  # new mail
    assert rich.compose_in_plain_text(original_is_html=True) is False
    assert rich.compose_in_plain_text(original_is_html=False) is True  # plain stays plain


def test_plain_by_default_wins_over_an_html_original() -> None:
    plain = LocalOptions(compose_plain_text=True)
    assert plain.compose_in_plain_text() is True
    assert plain.compose_in_plain_text(original_is_html=True) is True
    assert plain.compose_in_plain_text(original_is_html=False) is True


def test_round_trips_through_the_profile_and_the_snapshot() -> None:
    config = ProfileConfig(mail_url="maildir:/m", crm_url="https://crm.example", crm_user="a")
    assert LocalOptions.from_profile(config).compose_plain_text is False
    saved = LocalOptions(compose_plain_text=True).apply_to(config)
    assert saved.options["compose_plain_text"] is True
    assert LocalOptions.from_profile(saved).compose_plain_text is True
    opts = LocalOptions(compose_plain_text=True)
    assert LocalOptions.from_dict(opts.to_dict()) == opts


def test_a_hand_edited_value_that_is_not_true_is_off() -> None:
    config = ProfileConfig(
        mail_url="maildir:/m",
        crm_url="https://crm.example",
        crm_user="a",
        options={"compose_plain_text": "yes"},
    )
    assert LocalOptions.from_profile(config).compose_plain_text is False
