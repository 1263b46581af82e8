"""Subject normalisation and tracking tokens, as a user of the CRM would check them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.correlation import (
    TrackingTokenSettings,
    find_token,
    format_token,
    normalize_subject,
    smart_match_key,
    strip_token,
)

DEFAULT = TrackingTokenSettings()


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("RE: Quote", "Quote"),
        ("Re: RE: re: Quote", "Quote"),
        ("FW: RE: Fwd: Quote", "Quote"),
        ("RE[2]: Quote", "Quote"),
        ("Re^3: Quote", "Quote"),
        ("Re(4): Quote", "Quote"),
        ("[Fwd: Quote for 200 licences]", "Quote for 200 licences"),
        ("[EXTERNAL] RE: Quote", "Quote"),
        ("*EXTERNAL* Quote", "Quote"),
        ("AW: WG: Angebot für München", "Angebot für München"),  # German
        ("TR: RE : Devis", "Devis"),  # French, with the space before the colon
        ("RV: RE: Presupuesto", "Presupuesto"),  # Spanish
        ("R: I: RIF: Preventivo", "Preventivo"),  # Italian
        ("RES: ENC: Orçamento", "Orçamento"),  # Portuguese
        ("Antw: Doorst: Offerte", "Offerte"),  # Dutch
        ("SV: VS: VB: Offert", "Offert"),  # Nordic
        ("VL: Tarjous", "Tarjous"),  # Finnish
        ("Odp: PD: Oferta", "Oferta"),  # Polish
        ("PŘ: Odp: Nabídka", "Nabídka"),  # Czech
        ("YNT: İLT: Teklif", "Teklif"),  # Turkish
        ("ΑΠ: ΣΧΕΤ: ΠΡΘ: Προσφορά", "Προσφορά"),  # Greek
        ("VÁ: TOV: Ajánlat", "Ajánlat"),  # Hungarian
        ("回复：转发: 报价", "报价"),  # Chinese, full-width colon
        ("返信: 転送: 見積もり", "見積もり"),  # Japanese
        ("  Quote \t for\n 200   licences ", "Quote for 200 licences"),
        ("Réunion: ordre du jour", "Réunion: ordre du jour"),  # not a prefix: kept
        ("Re:", ""),
        ("Reply needed", "Reply needed"),
        ("[Project X] status", "[Project X] status"),  # list tags are not gateway tags
    ],
)
def test_normalize_subject(subject: str, expected: str) -> None:
    assert normalize_subject(subject) == expected


@settings(max_examples=300)
@given(st.text())
def test_normalize_subject_is_idempotent_and_total(subject: str) -> None:
    once = normalize_subject(subject)
    assert normalize_subject(once) == once


@settings(max_examples=100)
@given(
    st.sampled_from(["RE", "Fw", "AW", "SV", "Odp", "回复"]),
    st.text(min_size=1).filter(lambda s: s.strip() and normalize_subject(s) == s),
)
def test_prefix_is_removed_from_any_normal_subject(prefix: str, subject: str) -> None:
    assert normalize_subject(f"{prefix}: {subject}") == subject


def test_token_format_uses_crm_defaults() -> None:
    assert format_token(DEFAULT, 1, 1) == "CRM:0001001"
    assert format_token(TrackingTokenSettings(base=500), 1, 7) == "CRM:0501007"
    assert format_token(DEFAULT, 10, 23) == "CRM:0010023"
    assert format_token(DEFAULT, 1, 1000) == "CRM:0001000"  # counter recycles 999 -> 000


def test_token_user_number_must_fit() -> None:
    with pytest.raises(ValueError):
        format_token(DEFAULT, 1000, 1)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Quote CRM:0010023", "CRM:0010023"),
        ("RE: Quote crm:0010023", "CRM:0010023"),  # case of the prefix does not matter
        ("CRM:0010023 at the start", "CRM:0010023"),
        ("(CRM:0010023)", "CRM:0010023"),
        ("Quote XCRM:0010023", None),  # inside a longer word
        ("Quote CRM:00100234", None),  # inside a longer number
        ("Quote CRM:0010023a", None),
        ("Quote CRM:001002", None),
        ("Quote", None),
        ("", None),
    ],
)
def test_find_token(subject: str, expected: str | None) -> None:
    assert find_token(subject, DEFAULT) == expected


def test_older_prefixes_are_still_recognised() -> None:
    tokens = TrackingTokenSettings(prefix="TBX#", old_prefixes=("CRM:",))
    assert find_token("RE: Quote crm:0001001", tokens) == "CRM:0001001"
    assert find_token("RE: Quote tbx#0001001", tokens) == "TBX#0001001"
    assert format_token(tokens, 1, 1) == "TBX#0001001"


def test_strip_token() -> None:
    assert strip_token("RE: Quote CRM:0010023", DEFAULT) == "RE: Quote"
    assert strip_token("Quote  CRM:0010023  now", DEFAULT) == "Quote now"
    assert strip_token("Quote", DEFAULT) == "Quote"


token_settings = st.builds(
    TrackingTokenSettings,
    prefix=st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20
    ).filter(lambda p: not p[-1].isdigit()),
    base=st.integers(0, 500),
    user_digits=st.integers(3, 6),
    counter_digits=st.integers(1, 6),
)


@settings(max_examples=200)
@given(
    token_settings,
    st.integers(0, 499),
    st.integers(0, 10**7),
    st.text(max_size=30),
    st.text(max_size=30),
)
def test_find_token_round_trips(
    tokens: TrackingTokenSettings, user: int, counter: int, before: str, after: str
) -> None:
    token = format_token(tokens, user, counter)
    assert find_token(token, tokens) == token
    subject = f"{before} {token} {after}"
    found = find_token(subject, tokens)
    # Text around the token may itself contain a token-shaped string; ours is still found
    # when it is the first one.
    if find_token(before, tokens) is None:
        assert found == token


def test_smart_match_key_ignores_case_prefixes_and_token() -> None:
    assert smart_match_key("Re: hello") == smart_match_key("Hello")
    key = smart_match_key("RE: Quote for 200 licences CRM:0010023", tokens=DEFAULT)
    assert key == smart_match_key("quote FOR 200 licences", tokens=DEFAULT)
    assert smart_match_key("RE:") == ""


@settings(max_examples=300)
@given(
    st.lists(
        st.sampled_from(
            [
                "CRM:",
                "crm:",
                "Crm:",
                "x",
                "_",
                " ",
                "0",
                "1",
                "0001001",
                "00010012",
                "RE: ",
                "é",
                "ß",
                "-",
                "K",
            ]
        ),
        max_size=12,
    )
)
def test_fast_token_search_agrees_with_the_regex(parts: list[str]) -> None:
    from core.domain.subjects import _canonical_prefix, _compile_token_re

    subject = "".join(parts)
    match = _compile_token_re(DEFAULT).search(subject)
    expected = (
        None
        if match is None
        else _canonical_prefix(DEFAULT, match.group("prefix")) + match.group("digits")
    )
    assert find_token(subject, DEFAULT) == expected


@pytest.mark.parametrize(
    "subject",
    ["RE: caf\udce9 CRM:0001001", "\udcff", "Re:\x00\x1c x", "[Fwd: \u2028]", "回复：" * 50],
)
def test_undecodable_and_control_characters_do_not_break_subject_handling(subject: str) -> None:
    once = normalize_subject(subject)
    assert normalize_subject(once) == once
    find_token(subject, DEFAULT)
    strip_token(subject, DEFAULT)
    smart_match_key(subject, tokens=DEFAULT)
