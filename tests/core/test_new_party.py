"""A new CRM party from a mail: the name split, the signature-free body, the link column and
the reason a record has no address to write to (core.domain.new_party)."""

from __future__ import annotations

import pytest

from core.domain.new_party import (
    DO_NOT_EMAIL,
    NO_ADDRESS,
    PersonName,
    body_beginning,
    email_exclusion_reason,
    link_column,
    new_party_columns,
    split_name,
)


@pytest.mark.parametrize(
    ("display", "email", "first", "last"),
    [
        ("Jane Doe", "", "Jane", "Doe"),
        ("Doe, Jane", "", "Jane", "Doe"),
        ('"Doe, Jane"', "", "Jane", "Doe"),
        ("'Jane Doe'", "", "Jane", "Doe"),
        ("“Jane Doe”", "", "Jane", "Doe"),
        ("Jane Q. van Doe", "", "Jane Q. van", "Doe"),
        ("van der Berg, Anna Maria", "", "Anna Maria", "van der Berg"),
        ("Jane Doe (Sales)", "", "Jane", "Doe"),
        ("  Jane   Doe  ", "", "Jane", "Doe"),
        ("Madonna", "", "", "Madonna"),
        ("Doe,", "", "", "Doe"),
        ("jane@example.com", "jane@example.com", "", ""),
        ("'jane@example.com'", "", "", ""),
        ("JANE.DOE", "jane.doe", "", ""),
        ("", "jane@example.com", "", ""),
    ],
)
def test_split_name(display: str, email: str, first: str, last: str) -> None:
    assert split_name(display, email) == PersonName(first, last)


def test_body_cuts_quoted_reply() -> None:
    text = (
        "Hi Alex,\n\nCould you send the price list?\n\n"
        "On Mon, 3 Mar 2025, Alex <alex@example.com> wrote:\n> Here is the offer.\n"
    )
    assert body_beginning(text) == "Hi Alex,\n\nCould you send the price list?"


def test_body_cuts_outlook_original() -> None:
    text = (
        "Fine by me.\n\n________________________________\nFrom: Alex\nSent: Monday\n"
        "Subject: offer\n\nOld text"
    )
    assert body_beginning(text) == "Fine by me."
    text = "Fine.\n-----Original Message-----\nFrom: Alex"
    assert body_beginning(text) == "Fine."


def test_body_cuts_signature_delimiter_and_mobile_footer() -> None:
    assert body_beginning("Call me.\n-- \nJane Doe\n+1 555 0100") == "Call me."
    assert body_beginning("Call me.\n\nSent from my iPhone") == "Call me."
    assert body_beginning("Sent from my iPhone") == ""


@pytest.mark.parametrize(
    "sign_off", ["Best regards,", "Kind regards", "Regards", "Thanks!", "Cheers,", "Viele Grüße"]
)
def test_body_cuts_sign_off(sign_off: str) -> None:
    text = f"We would like a demo next week.\n\n{sign_off}\nJane Doe\nFabrikam Inc."
    assert body_beginning(text) == "We would like a demo next week."


def test_a_sign_off_word_alone_is_kept() -> None:
    # "Thanks!" as the whole mail is what the sender wrote, not a signature.
    assert body_beginning("Thanks!\n") == "Thanks!"
    # A sentence that merely starts like a sign-off is not one.
    assert body_beginning("Thanks for the call.\nBye") == "Thanks for the call.\nBye"


def test_body_is_bounded_at_a_word() -> None:
    text = "word " * 1000
    cut = body_beginning(text, limit=100)
    assert len(cut) <= 101 and cut.endswith("word…")


def test_new_party_columns() -> None:
    name = PersonName("Jane", "Doe")
    assert new_party_columns("contact", name, "j@x.example", description="Hello") == {
        "firstname": "Jane",
        "lastname": "Doe",
        "emailaddress1": "j@x.example",
        "description": "Hello",
    }
    lead = new_party_columns("lead", PersonName("", "Doe"), "j@x.example", topic="Demo")
    assert lead == {"lastname": "Doe", "emailaddress1": "j@x.example", "subject": "Demo"}
    with pytest.raises(ValueError):
        new_party_columns("account", name, "j@x.example")


def test_link_column_takes_the_first_free_and_asks_before_overwriting() -> None:
    assert link_column({"emailaddress1": "a@x"}, "n@x").column == "emailaddress2"
    assert link_column({}, "n@x").column == "emailaddress1"
    full = link_column(
        {"emailaddress1": "a@x", "emailaddress2": "b@x", "emailaddress3": "c@x"}, "n@x"
    )
    assert (full.column, full.replaces) == ("emailaddress3", "c@x")
    same = link_column({"emailaddress2": "N@X"}, "n@x")
    assert same.already and same.column == "emailaddress2"


def test_exclusion_reasons() -> None:
    assert email_exclusion_reason("contact", {"emailaddress1": None}) == NO_ADDRESS
    assert email_exclusion_reason("contact", {"emailaddress1": "a@x", "donotemail": True}) == (
        DO_NOT_EMAIL
    )
    assert email_exclusion_reason(
        "systemuser", {"internalemailaddress": "u@x", "isdisabled": 1}
    ) == ("disabled user")
    assert email_exclusion_reason("lead", {"emailaddress1": "a@x", "statecode": 2}) == "inactive"
    assert email_exclusion_reason("account", {"emailaddress1": "a@x", "statecode": 0}) is None
