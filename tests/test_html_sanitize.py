"""HTML mail is sanitised: no scripts, no handlers, nothing remote; text and layout stay."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.html_sanitize import count_blocked_resources, sanitize_html

HOSTILE = """
<html><head><script>alert('x')</script><style>body{background:url(http://t.example/bg.png)}</style>
<link rel="stylesheet" href="http://t.example/s.css"></head>
<body onload="steal()" background="http://t.example/b.png">
<p style="color:red" onclick="evil()">Dear Alex,</p>
<img src="http://tracker.example/pixel.gif?u=alex" width="1" height="1">
<img src="cid:logo@fabrikam.example" alt="logo">
<img srcset="http://t.example/a.png 2x">
<a href="javascript:alert(1)">click</a> <a href="https://fabrikam.example/quote">Quote</a>
<iframe src="http://t.example/frame"></iframe><object data="http://t.example/o"></object>
<form action="http://t.example/post"><input name="p"></form>
<table><tr><td>Qty</td><td>12</td></tr></table>
</body></html>
"""


def test_scripts_handlers_and_remote_resources_are_removed() -> None:
    out = sanitize_html(HOSTILE).lower()
    for bad in (
        "<script",
        "alert(",
        "onload",
        "onclick",
        "javascript:",
        "tracker.example",
        "t.example",
        "<iframe",
        "<object",
        "<form",
        "<link",
        "<style",
    ):
        assert bad not in out, bad


def test_text_links_inline_images_and_tables_survive() -> None:
    out = sanitize_html(HOSTILE)
    assert "Dear Alex," in out
    assert 'href="https://fabrikam.example/quote"' in out
    assert 'src="cid:logo@fabrikam.example"' in out
    assert "<td>Qty</td>" in out


def test_blocked_remote_resources_are_counted_for_the_notice() -> None:
    # the tracking pixel, the body background and the CSS background image
    assert count_blocked_resources(HOSTILE) == 3
    assert count_blocked_resources("<p>plain</p>") == 0


@settings(max_examples=150)
@given(st.text())
def test_any_input_gives_a_string_without_script(text: str) -> None:
    out = sanitize_html(text + "<script>x</script>")
    assert "<script" not in out.lower()
