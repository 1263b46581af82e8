"""MIME parsing: the corpus of unusual and broken messages (``tests/corpus``), and properties.

Every corpus file must parse without raising, and what can be read must be read. The fast
header path must give the modern policy's answers.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain.message_identity import is_synthetic
from core.domain.model import Address, MailRef
from core.mail.headers import (
    _parse_date,
    _parse_general,
    _plain_fields,
    _Source,
    simple_addresses,
    split_header_block,
)
from core.mail.parse import parse_headers, parse_message

CORPUS = Path(__file__).parent.parent / "corpus"
REF = MailRef("Inbox", "1")


def _load(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.eml")), ids=lambda p: p.name)
def test_every_corpus_message_parses_and_is_clean_unicode(path: Path) -> None:
    raw = path.read_bytes()
    h = parse_headers(raw, REF)
    m = parse_message(raw, REF)
    texts = [
        h.subject,
        h.message_id,
        h.in_reply_to or "",
        *h.references,
        m.text,
        m.html or "",
        *(a.email + a.name for a in (*h.to, *h.cc, *([h.sender] if h.sender else []))),
        *(a.filename for a in m.attachments),
    ]
    for t in texts:
        t.encode("utf-8")  # no lone surrogates anywhere
    for a in m.attachments:
        assert len(a.payload()) == a.size


EXPECTED_SUBJECTS = {
    "rfc2047-utf8-b.eml": "Angebot für Lizenzen",
    "rfc2047-q-adjacent.eml": "Résumé de la réunion",  # no space between adjacent words
    "rfc2047-mixed-charsets.eml": "€ price and 中文",
    "8bit-headers.eml": "Grüße raw UTF-8 header",
    "latin1-raw-header.eml": "café raw latin-1",
    "header-without-colon.eml": "after a broken line",
    "bad-encoded-word.eml": "=?utf-8?b?not base64 at all!?= tail",
    "nul-bytes.eml": "nul in header",
    "duplicate-headers.eml": "one",
}


@pytest.mark.parametrize("name,subject", sorted(EXPECTED_SUBJECTS.items()))
def test_subjects(name: str, subject: str) -> None:
    assert parse_headers(_load(name), REF).subject == subject


def test_encoded_display_names_and_address_syntax() -> None:
    h = parse_headers(_load("rfc2047-utf8-b.eml"), REF)
    assert h.sender == Address("juergen.maass@litware.example", "Jürgen Maaß")
    h = parse_headers(_load("rfc2047-mixed-charsets.eml"), REF)
    assert h.sender == Address("r@x.example", "Renée “Q”")
    assert [a.email for a in h.to] == ["ivan@y.example", "plain@y.example"]
    assert h.to[0].name == "Привет"
    h = parse_headers(_load("rfc2047-q-adjacent.eml"), REF)
    assert h.sender == Address("fd@tailspin.example", "François Dupont")
    h = parse_headers(_load("groups-and-comments.eml"), REF)
    assert h.sender == Address("jane.doe@fabrikam.example", "Doe, Jane")
    assert h.to == ()  # "undisclosed-recipients:;" is an empty group
    assert [a.email for a in h.cc] == ["mark.chen@fabrikam.example", "pat@fabrikam.example"]
    assert h.cc[1].name == "O'Brien, Pat"
    assert len(parse_headers(_load("long-header-line.eml"), REF).to) == 400


def test_a_display_name_split_into_encoded_words_reads_whole_on_every_path() -> None:
    """Encoders split long names into several encoded words, even inside a character's
    word; the reader joins them (RFC 2047 6.2). The 8-bit subject and the comment send
    these headers through the modern policy, which on its own would read "Jürgen M üller"."""
    raw = (
        "From: =?utf-8?q?J=C3=BCrgen_M?= =?utf-8?q?=C3=BCller?= <j@x.example>\r\n"
        "To: =?iso-8859-1?q?Ren=E9?=\r\n =?utf-8?b?IETDvHJy?= <r@x.example> (Einkauf),\r\n"
        ' "=?utf-8?q?a?= =?utf-8?q?b?=" <q@x.example>\r\n'
        "Subject: caf\xe9\r\nMessage-ID: <a@b>\r\n\r\n"
    ).encode("latin-1")
    h = parse_headers(raw, REF)
    assert h.sender == Address("j@x.example", "Jürgen Müller")
    assert h.to[0] == Address("r@x.example", "René Dürr")
    # Inside quotes these are not encoded words: left as the modern policy reads them.
    alone = BytesParser(policy=policy.default).parsebytes(
        b'To: "=?utf-8?q?a?= =?utf-8?q?b?=" <q@x.example>\r\n\r\n', headersonly=True
    )
    assert h.to[1].name == alone["to"].addresses[0].display_name
    assert h.subject == "café"


def test_threading_headers_and_ids() -> None:
    h = parse_headers(_load("outlook-winmail.eml"), REF)
    assert h.thread_index == "AdzbWpSLhYCPWGHctDxE6q2ELU255QAxNXEE"
    assert h.in_reply_to == "<p1@contoso.example>"
    assert h.references == ("<p0@fabrikam.example>", "<p1@contoso.example>")
    assert h.has_attachments
    h = parse_headers(_load("msgid-without-brackets.eml"), REF)
    assert h.message_id == "<bare-id@x.example>"
    assert h.in_reply_to == "<parent@x.example>"
    assert h.references == ("<r1@x.example>", "<r2@x.example>", "<r3@x.example>")


def test_broken_messages_show_what_can_be_read() -> None:
    for name in ("binary-garbage.eml", "no-headers.eml", "empty.eml"):
        h = parse_headers(_load(name), REF)
        assert is_synthetic(h.message_id) and "no Message-ID" in h.parse_errors
    h = parse_headers(_load("bad-encoded-word.eml"), REF)
    assert "subject: undecodable encoded word" in h.parse_errors
    assert h.sender is not None and h.sender.email == "odd@broken.example"
    h = parse_headers(_load("header-without-colon.eml"), REF)
    assert h.message_id == "<c12@x.example>" and h.parse_errors
    assert parse_headers(_load("latin1-raw-header.eml"), REF).parse_errors
    assert not parse_headers(_load("8bit-headers.eml"), REF).parse_errors  # RFC 6532
    assert parse_headers(_load("bad-date-zone.eml"), REF).date is not None


def test_bodies_charsets_and_attachments() -> None:
    assert parse_message(_load("odd-charset-body.eml")).text.strip() == "Привет, мир"
    m = parse_message(_load("lying-charset.eml"))
    assert m.text.strip() == "café crème" and m.parse_errors
    m = parse_message(_load("unknown-charset.eml"))
    assert m.text.strip() == "café" and m.parse_errors
    m = parse_message(_load("rfc2231-filename.eml"))
    assert [a.filename for a in m.attachments] == ["Angebot für Lizenzen – 2027.pdf"]
    assert m.attachments[0].payload() == b"%PDF-1.4 fake"
    m = parse_message(_load("missing-boundary.eml"))
    assert m.text.strip() == "first part, no end" and m.parse_errors
    m = parse_message(_load("nested-rfc822.eml"))
    assert m.text.strip() == "see below"  # the forwarded message is not spliced in
    assert [a.content_type for a in m.attachments] == ["message/rfc822"]
    assert b"<inner@z.example>" in m.attachments[0].payload()
    m = parse_message(_load("html-only-cid.eml"))
    assert m.html and "cid:logo@x" in m.html and m.text.strip() == "Logo:"
    assert m.attachments[0].content_id == "<logo@x>" and m.attachments[0].inline
    assert not m.header.has_attachments  # an inline image is not an attachment
    m = parse_message(_load("truncated-base64.eml"))
    assert m.header.has_attachments and m.attachments[0].filename == "x.png"


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_raising(raw: bytes) -> None:
    h = parse_headers(raw, REF)
    m = parse_message(raw, REF)
    (h.subject + h.message_id + m.text).encode("utf-8")


_atext = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
    min_size=1,
    max_size=10,
)
_email = st.builds(
    lambda a, b, c: f"{a}@{b}.{c}", _atext, _atext, st.sampled_from(["example", "com", "co.uk"])
)
_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ,'-", max_size=20)


def _render(name: str, email: str, quote: bool) -> str:
    if not name.strip():
        return email
    if quote or "," in name:
        return f'"{name}" <{email}>'
    return f"{name} <{email}>"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_name, _email, st.booleans()), min_size=1, max_size=5))
def test_fast_address_path_agrees_with_the_modern_policy(items: list) -> None:
    value = ", ".join(_render(n, e, q) for n, e, q in items)
    fast = simple_addresses(value)
    block = f"To: {value}\r\n\r\n".encode()
    modern = _Source(block, [], None).modern_addresses("to")
    if fast is not None:
        assert list(fast) == modern


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80))
def test_fast_subject_path_agrees_with_the_modern_policy(subject: str) -> None:
    raw = f"Subject: {subject}\r\nMessage-ID: <a@b>\r\n\r\n".encode()
    fast = parse_headers(raw, REF).subject
    modern = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    assert fast == " ".join(str(modern["subject"] or "").split())


_words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
    min_size=1,
    max_size=30,
)


def _encoded(text: str, charset: str) -> str:
    from email.header import Header

    return Header(text, charset).encode(maxlinelen=76).replace("\n", "")


@settings(max_examples=300, deadline=None)
@given(
    _words,
    st.sampled_from(["utf-8", "iso-8859-1", "windows-1252"]),
    st.sampled_from(["", "Re: ", "AW: Angebot "]),
    st.sampled_from(["", " tail", " 42"]),
)
def test_fast_encoded_words_agree_with_the_modern_policy(
    text: str, charset: str, prefix: str, suffix: str
) -> None:
    try:
        word = _encoded(text, charset)
    except UnicodeEncodeError:
        return
    raw = f"Subject: {prefix}{word}{suffix}\r\nMessage-ID: <a@b>\r\n\r\n".encode()
    modern = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    assert parse_headers(raw, REF).subject == " ".join(str(modern["subject"]).split())


@settings(max_examples=200, deadline=None)
@given(_words, _email, st.sampled_from(["utf-8", "iso-8859-1"]))
def test_fast_encoded_display_names_agree_with_the_modern_policy(
    name: str, email: str, charset: str
) -> None:
    try:
        value = f"{_encoded(name, charset)} <{email}>, plain@x.example"
    except UnicodeEncodeError:
        return
    fast = simple_addresses(value)
    modern = _Source(f"To: {value}\r\n\r\n".encode(), [], None).modern_addresses("to")
    if fast is None:
        return
    # RFC 2047 6.2: the white space between adjacent encoded words is not part of the name
    # (CPython's parser keeps it; the general path merges such words first).
    assert fast[0].name == " ".join(name.split())
    assert list(fast) == modern


# --- the plain-header shortcut gives the general path's answers ----------------------------

_ascii = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
_msgid_value = st.one_of(
    st.builds(lambda a, b: f"<{a}@{b}>", _atext, _atext),
    _atext,
    st.just(""),
    _ascii,
    st.builds(lambda a, b: f"<{a}@{b}> (comment)", _atext, _atext),
)
_address_list = st.one_of(
    st.lists(st.tuples(_name, _email, st.booleans()), max_size=3).map(
        lambda items: ", ".join(_render(n, e, q) for n, e, q in items)
    ),
    st.sampled_from(
        [
            "Undisclosed recipients:;",
            "a@b.example (Alice)",
            "<>",
            "@@",
            "x",
            "=?utf-8?q?J=C3=BCrgen?= <j@x.example>",
            '"=?utf-8?q?a?=" <a@b.c>',
            "Team: a@b.example, c@d.example;",
        ]
    ),
    _ascii,
)
_dates = st.one_of(
    st.builds(
        lambda wd, d, mon, y, hh, mm, ss, zone: f"{wd}{d} {mon} {y} {hh:02d}:{mm:02d}{ss} {zone}",
        st.sampled_from(["", "Mon, ", "Tue,", "Xyz, "]),
        st.integers(0, 32),
        st.sampled_from(["Jan", "feb", "MAR", "Apr", "Foo", "Dec"]),
        st.sampled_from(["2026", "1999", "0000", "26", "10000"]),
        st.integers(0, 25),
        st.integers(0, 61),
        st.sampled_from(["", ":00", ":59", ":60", ":7"]),
        st.sampled_from(
            ["+0000", "-0000", "+0530", "-0800", "+2400", "+0099", "GMT", "EST", "+00", ""]
        ),
    ),
    _ascii,
)


@st.composite
def _header_blocks(draw: st.DrawFn) -> tuple[bytes, dict]:
    fields = {
        "Message-ID": _msgid_value,
        "In-Reply-To": _msgid_value,
        "References": st.lists(_msgid_value, max_size=3).map(" ".join),
        "Subject": st.one_of(
            _ascii,
            st.builds(_encoded, _words, st.just("utf-8")).map(lambda w: f"Re: {w}"),
            st.sampled_from(["=?bogus?q?x?=", "=?utf-8?b?!!?=", "a=?utf-8?q?b?=", "\x01bell"]),
        ),
        "From": _address_list,
        "Sender": _address_list,
        "To": _address_list,
        "Cc": _address_list,
        "Date": _dates,
        "Thread-Index": st.sampled_from(["AdzbN8prJefbaDJNPeNDVrOFgAHIQw==", "", "x", " a "]),
        "Content-Type": st.sampled_from(
            ["text/plain", "multipart/mixed; boundary=x", "Multipart/Mixed", "bogus", ""]
        ),
        "X-Other": _ascii,
    }
    names = draw(st.lists(st.sampled_from(sorted(fields)), max_size=12))
    lines = []
    for name in names:
        value = draw(fields[name])
        if draw(st.booleans()) and " " in value.strip():  # fold at a space
            i = value.strip().index(" ")
            value = value.strip()[:i] + "\r\n " + value.strip()[i + 1 :]
        lines.append(f"{draw(st.sampled_from([name, name.lower(), name.upper()]))}: {value}")
    newline = draw(st.sampled_from(["\r\n", "\n"]))
    raw = (newline.join(lines) + newline + newline).replace("\r\n", newline).encode()
    raw += draw(st.sampled_from([b"", b"body\r\n", b"Content-Disposition: attachment\r\n"]))
    kw = draw(
        st.fixed_dictionaries(
            {
                "size": st.none() | st.integers(0, 10**6),
                "has_attachments": st.none() | st.booleans(),
            }
        )
    )
    return raw, kw


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_header_blocks())
def test_plain_header_shortcut_agrees_with_the_general_path(case: tuple[bytes, dict]) -> None:
    raw, kw = case
    block = split_header_block(raw)
    general = _parse_general(
        raw, block, _plain_fields(block), REF, is_read=False, keywords=(), tracked_marker=None, **kw
    )
    assert parse_headers(raw, REF, **kw) == general


@settings(max_examples=500, deadline=None)
@given(_dates)
def test_date_shortcut_agrees_with_email_utils(value: str) -> None:
    from datetime import UTC
    from email.utils import parsedate_to_datetime

    try:
        want = parsedate_to_datetime(value.strip()) if value.strip() else None
    except (TypeError, ValueError, IndexError):
        want = None
    if want is not None and want.tzinfo is None:
        want = want.replace(tzinfo=UTC)
    got = _parse_date(value, errors := [])
    assert got == want and (got is None or got.utcoffset() == want.utcoffset())
    assert bool(errors) == (want is None and bool(value.strip()))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40).map(lambda b: bytes(b"a\r\n:"[x % 4] for x in b)))
def test_header_block_end_is_the_first_blank_line(raw: bytes) -> None:
    import re

    m = re.search(rb"\r?\n\r?\n", raw)
    assert split_header_block(raw) == (raw[: m.end()] if m else raw)


def test_a_huge_subject_is_cut_and_says_so() -> None:
    from core.mail.headers import MAX_SUBJECT

    raw = b"Subject: " + b"S" * 1_000_000 + b"\r\nMessage-ID: <huge@x.example>\r\n\r\nbody\r\n"
    h = parse_headers(raw, REF)
    assert len(h.subject) == MAX_SUBJECT and h.subject.endswith("…")
    assert "subject: cut at 2,000 of 1,000,000 characters" in h.parse_errors
    assert h.message_id == "<huge@x.example>"
