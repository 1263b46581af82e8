"""Bounded display preparation (issue 18 item 12): one e-mail must not freeze the window.

``core.mail.display`` turns a parsed body into what the reading pane shows: long runs broken,
long bodies cut (more after "Show all", up to a larger bound), HTML cut before it is
sanitised. ``parse_message(max_parts=...)`` reads at most that many parts. Each preparation
runs under a generous hang-guard (it took a minute and more before the fix) and its output is
bounded in size.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.html_sanitize import count_blocked_resources, sanitize_html
from core.mail.display import (
    HTML_ALL,
    HTML_SHOWN,
    RUN,
    TEXT_ALL,
    TEXT_SHOWN,
    break_html_runs,
    break_text_runs,
    prepare_body,
)
from core.mail.parse import DISPLAY_PARTS, html_to_text, parse_message

T = TypeVar("T")
HANG_GUARD = 20.0  # seconds; the real cost is well under one
MB = 1 << 20
_BREAKS = re.compile(r"[ \t\n\u200b]")


def guarded(work: Callable[[], T]) -> T:
    """``work()``, failing when it takes longer than the hang-guard."""
    start = time.monotonic()
    result = work()
    took = time.monotonic() - start
    assert took < HANG_GUARD, f"took {took:.1f} s"
    return result


def longest_run(text: str) -> int:
    """The longest stretch without a space, tab, line end or zero-width space."""
    return max((len(s) for s in _BREAKS.split(text)), default=0)


def test_one_megabyte_line_is_cut_and_wrapped() -> None:
    line = "x" * MB
    body = guarded(lambda: prepare_body(line, None))
    assert body.html is None and body.truncated and body.more
    assert (body.shown, body.total) == (TEXT_SHOWN, MB)
    assert longest_run(body.text) == RUN
    assert len(body.text) <= TEXT_SHOWN + TEXT_SHOWN // RUN
    assert body.text.replace("\n", "") == line[:TEXT_SHOWN]
    assert f"{TEXT_SHOWN:,} of {MB:,}" in body.note()


def test_two_megabyte_line_shows_all_wrapped_after_show_all() -> None:
    line = "y" * (2 * MB)
    first = guarded(lambda: prepare_body(line, None))
    assert first.more and len(first.text) <= TEXT_SHOWN + TEXT_SHOWN // RUN
    whole = guarded(lambda: prepare_body(line, None, full=True))
    assert not whole.truncated and not whole.more and whole.note() == ""
    assert longest_run(whole.text) == RUN
    assert whole.text.replace("\n", "") == line


def test_show_all_is_bounded_too() -> None:
    text = "z" * (TEXT_ALL + 1000)
    whole = guarded(lambda: prepare_body(text, None, full=True))
    assert whole.truncated and not whole.more
    assert (whole.shown, whole.total) == (TEXT_ALL, len(text))
    assert len(whole.text) <= TEXT_ALL + TEXT_ALL // RUN
    assert "The rest is too long to show here." in whole.note()


def test_cr_only_line_ends_become_lines() -> None:
    text = "first line\rsecond\r\nthird\r" + "w" * MB + "\rlast"
    body = guarded(lambda: prepare_body(text, None, full=True))
    assert "\r" not in body.text
    lines = body.text.split("\n")
    assert lines[:3] == ["first line", "second", "third"] and lines[-1] == "last"
    assert longest_run(body.text) == RUN


def test_short_text_is_untouched() -> None:
    text = "Hello,\n\nsee you at 10.\n-- \nJane"
    body = prepare_body(text, None)
    assert body.text == text and not body.truncated and body.note() == ""


def _many_parts(count: int, kind: str) -> bytes:
    if kind == "text":
        part = b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n"
    else:
        part = (
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b'Content-Disposition: attachment; filename="f%d.bin"\r\n\r\nAAAA\r\n'
        )
    head = (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: many\r\n"
        b"Message-ID: <many@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    )
    return head + b"".join(part % i for i in range(count)) + b"--b--\r\n"


def test_a_hundred_thousand_attachments_parse_for_display() -> None:
    raw = _many_parts(100_000, "attachment")
    parsed = guarded(lambda: parse_message(raw, max_parts=DISPLAY_PARTS))
    assert len(parsed.attachments) == DISPLAY_PARTS
    assert parsed.attachments[-1].filename == f"f{DISPLAY_PARTS - 1}.bin"
    assert parsed.parts_not_shown == 100_000 - DISPLAY_PARTS
    assert parsed.parse_errors == ()  # the cut message is closed cleanly


def test_a_hundred_thousand_text_parts_parse_for_display() -> None:
    raw = _many_parts(100_000, "text")
    parsed = guarded(lambda: parse_message(raw, max_parts=DISPLAY_PARTS))
    lines = parsed.text.split("\n")
    assert len(lines) == DISPLAY_PARTS and lines[-1] == f"part {DISPLAY_PARTS - 1}"
    assert parsed.parts_not_shown == 100_000 - DISPLAY_PARTS


def test_without_a_bound_every_part_is_read() -> None:
    """The CRM gets the whole message: no ``max_parts``, no cut."""
    raw = _many_parts(DISPLAY_PARTS + 200, "attachment")
    parsed = parse_message(raw)
    assert len(parsed.attachments) == DISPLAY_PARTS + 200 and parsed.parts_not_shown == 0
    bounded = parse_message(raw, max_parts=DISPLAY_PARTS)
    assert len(bounded.attachments) == DISPLAY_PARTS and bounded.parts_not_shown == 200


def test_deeply_nested_multiparts_parse_for_display() -> None:
    depth = 5_000
    lines = [
        b"From: a@example.com\r\nSubject: deep\r\nMessage-ID: <deep@example.com>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n'
    ]
    for i in range(1, depth):
        lines.append(b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i - 1, i))
    lines.append(b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n--b%d--\r\n" % (depth, depth))
    parsed = guarded(lambda: parse_message(b"".join(lines), max_parts=DISPLAY_PARTS))
    assert parsed.parts_not_shown > 0
    assert not any("recursion" in e for e in parsed.parse_errors)


def test_five_megabyte_html_is_cut_sanitised_and_wrapped() -> None:
    html = (
        "<html><body><script>alert(1)</script><p>"
        + "<b>bold</b> " * 10
        + "h" * (5 * MB)
        + "</p></body></html>"
    )
    body = guarded(lambda: prepare_body("text", html))
    assert body.html is not None and body.text == ""
    assert body.truncated and body.more and body.total == len(html)
    assert body.shown <= HTML_SHOWN and len(body.html) <= HTML_SHOWN + HTML_SHOWN // RUN + 100
    assert "<script" not in body.html and "<b>bold</b>" in body.html
    assert longest_run(re.sub(r"<[^>]*>", " ", body.html)) <= RUN
    whole = guarded(lambda: prepare_body("text", html, full=True))
    assert whole.html is not None and whole.truncated and not whole.more
    assert HTML_SHOWN < whole.shown <= HTML_ALL
    assert len(whole.html) <= HTML_ALL + HTML_ALL // RUN + 100


def test_html_runs_break_between_references_and_never_in_tags() -> None:
    href = "https://example.com/" + "q" * 3000
    html = f'<p><a href="{href}">{"&amp;" * 2500}</a>{"k" * 2500}</p>'
    out = break_html_runs(sanitize_html(html))
    assert f'href="{href}"' in out  # attributes untouched
    shown = re.sub(r"<[^>]*>", "", out).replace("&amp;", "&")  # what Qt lays out
    assert longest_run(shown) <= RUN  # also across </a>: "&&&kkk" is one run
    assert "&amp;&amp;" in out and "&am\u200b" not in out


def test_html_runs_go_on_across_tags() -> None:
    html = "<p>" + "<span>x</span>" * 100_000 + "</p>"
    out = guarded(lambda: break_html_runs(sanitize_html(html)))
    assert longest_run(re.sub(r"<[^>]*>", "", out)) == RUN


def test_html_to_text_is_linear_and_still_drops_scripts() -> None:
    text = html_to_text("<p>a</p><script>x</script><STYLE>y</style>b <i>c</i> d&amp;e")
    assert text == "a b c d&e"
    assert html_to_text("<p>seen</p><script>never closed <p>hidden") == "seen"
    guarded(lambda: html_to_text("<script>" * 100_000))
    guarded(lambda: html_to_text("<" * 1_000_000))


def test_blocked_resources_count_as_the_sanitiser_counts_in_linear_time() -> None:
    samples = [
        '<img src="http://a.example/b">',
        "<img alt=x src=//a.example>",
        '<td background="https://a.example">',
        '<div style="background:url(http://a.example)">',
        "<img src=cid:x>",
        "<IMG\nSRC = 'http://a.example'>",
    ]
    assert [count_blocked_resources(s) for s in samples] == [1, 1, 1, 1, 0, 1]
    assert guarded(lambda: count_blocked_resources("<img " * 1_000_000)) == 0


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab \t\r\n\u00e9", max_size=3 * RUN))
def test_breaking_runs_only_adds_line_ends(text: str) -> None:
    out = break_text_runs(text)
    normal = text.replace("\r\n", "\n").replace("\r", "\n")
    assert "\r" not in out and out.replace("\n", "") == normal.replace("\n", "")
    assert longest_run(out) <= RUN


def test_breaking_runs_of_long_lines_with_spaces_changes_nothing() -> None:
    line = "word " * (MB // 5)
    assert guarded(lambda: break_text_runs(line)) == line
    runs = ("y" * (RUN - 1) + " ") * 5_000  # many runs just under the limit: linear scan
    assert guarded(lambda: break_text_runs(runs)) == runs
