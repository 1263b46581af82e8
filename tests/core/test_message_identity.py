"""The rule of a message's identity (issue 18 item 7): a usable Message-ID is kept; anything
else gets a stable synthetic one the CRM accepts, never the shared key ``""``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain.message_identity import (
    MAX_MESSAGE_ID,
    MISSING,
    UNUSABLE,
    is_synthetic,
    synthetic_message_id,
    unusable_reason,
    usable_message_id,
)
from core.domain.model import MailRef
from core.mail.headers import parse_headers

DATE = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a.b@x.example>", "<a.b@x.example>"),
        ("  <a.b@x.example>  ", "<a.b@x.example>"),
        ("bare-id@x.example", "<bare-id@x.example>"),
        ("junk <first@x> <second@y>", "<first@x>"),
        ("<caf\u00e9@x.example>", "<caf\u00e9@x.example>"),
        ("<" + "x" * (MAX_MESSAGE_ID - 5) + "@yz>", "<" + "x" * (MAX_MESSAGE_ID - 5) + "@yz>"),
    ],
)
def test_a_usable_message_id_is_kept(value: str, expected: str) -> None:
    assert usable_message_id(value) == expected
    assert unusable_reason(value) == ""


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, MISSING),
        ("", MISSING),
        ("   \t", MISSING),
        ("<>", f"{UNUSABLE}: no '@'"),
        ("<no-at-sign>", f"{UNUSABLE}: no '@'"),
        ("<@x.example>", f"{UNUSABLE}: no '@'"),
        ("<left@>", f"{UNUSABLE}: no '@'"),
        ("<a b@x.example>", f"{UNUSABLE}: white space or control characters"),
        ("<a\x01b@x.example>", f"{UNUSABLE}: white space or control characters"),
        ("<a\x00b@x.example>", f"{UNUSABLE}: white space or control characters"),
        ("<a\udcffb@x.example>", f"{UNUSABLE}: white space or control characters"),
        ("<a@b", f"{UNUSABLE}: white space or control characters"),
        ("<" + "x" * 2000 + "@y.example>", f"{UNUSABLE}: longer than {MAX_MESSAGE_ID} characters"),
    ],
)
def test_an_unusable_message_id_is_refused_with_its_reason(value: str | None, reason: str) -> None:
    assert usable_message_id(value) is None
    assert unusable_reason(value) == reason


def test_the_synthetic_id_is_stable_normalised_and_fits_the_crm() -> None:
    one = synthetic_message_id(
        date=DATE,
        sender="Jane@Fabrikam.example",
        to=["b@x.example", "a@x.example"],
        subject="Quote  for\tchairs",
        size=1234,
    )
    same = synthetic_message_id(
        date=DATE.astimezone(timezone(timedelta(hours=2))).replace(microsecond=7),
        sender=" jane@fabrikam.example ",
        to=["A@x.example", "b@x.example"],
        subject="Quote for chairs",
        size=1234,
    )
    assert one == same
    assert is_synthetic(one) and usable_message_id(one) == one
    assert one.endswith("@trackbox.invalid>") and len(one) <= MAX_MESSAGE_ID
    assert not is_synthetic("<a@b.example>")
    # Naive dates are UTC, as the store takes them.
    assert synthetic_message_id(date=DATE.replace(tzinfo=None), sender=None) == (
        synthetic_message_id(date=DATE, sender=None)
    )


_FIELDS = st.fixed_dictionaries(
    {
        "date": st.none() | st.datetimes(timezones=st.just(UTC)),
        "sender": st.none() | st.emails(),
        "to": st.lists(st.emails(), max_size=3),
        "cc": st.lists(st.emails(), max_size=2),
        "subject": st.text(max_size=40),
        "size": st.none() | st.integers(min_value=0, max_value=10**9),
        "extra": st.lists(st.text(max_size=10), max_size=2),
    }
)


@given(_FIELDS, _FIELDS)
def test_different_content_gives_different_ids(a: dict, b: dict) -> None:  # type: ignore[type-arg]
    ida, idb = synthetic_message_id(**a), synthetic_message_id(**b)
    assert is_synthetic(ida) and usable_message_id(ida) == ida
    assert ida == synthetic_message_id(**a)
    if ida == idb:  # only when the normalised content is the same
        norm = {k: v for k, v in a.items() if k in ("size", "extra")}
        assert norm == {k: v for k, v in b.items() if k in ("size", "extra")}


@given(st.text(max_size=400))
def test_any_field_value_gives_a_usable_id_or_a_reason(value: str) -> None:
    found = usable_message_id(value)
    if found is None:
        assert unusable_reason(value).startswith((MISSING, UNUSABLE))
    else:
        assert unusable_reason(value) == ""
        assert found.startswith("<") and found.endswith(">") and "@" in found
        assert len(found) <= MAX_MESSAGE_ID and found.isprintable() and " " not in found


_REF = MailRef("INBOX", "1")


@given(st.binary(max_size=300))
def test_parse_headers_never_gives_an_empty_key(raw: bytes) -> None:
    h = parse_headers(raw, _REF)
    assert usable_message_id(h.message_id) == h.message_id
    assert h.message_id == parse_headers(raw, _REF).message_id
    if is_synthetic(h.message_id):
        assert any(e.startswith((MISSING, UNUSABLE)) for e in h.parse_errors)


def test_parse_headers_gives_broken_ids_distinct_synthetic_ones() -> None:
    def header(field: bytes | None, subject: bytes = b"hi") -> tuple[str, tuple[str, ...]]:
        raw = b"From: a@b.example\r\nSubject: " + subject + b"\r\n"
        raw += b"Message-ID: " + field + b"\r\n" if field is not None else b""
        h = parse_headers(raw + b"\r\nbody\r\n", _REF)
        return h.message_id, h.parse_errors

    assert header(b"<ok@x.example>") == ("<ok@x.example>", ())
    ids = set()
    for field in (None, b"", b"<a b@x>", b"<a\x01b@x>", b"<nope>", b"<" + b"x" * 2000 + b"@y>"):
        mid, errors = header(field)
        assert is_synthetic(mid) and errors and errors[0].startswith((MISSING, UNUSABLE))
        ids.add(mid)
    assert len(ids) == 6
    assert header(None, b"other")[0] != header(None)[0]
