"""What the reading pane shows of a body, prepared on a worker with bounded cost.

One sender's e-mail must not freeze the window. Qt lays out a run of characters with no break
opportunity (1 MB of ``x``, of ``&amp;``, of one base letter with combining marks) in time that
grows with the square of the run's length, and builds a document in time that grows with its
size. So the pane gets:

- plain text with CR and CR LF line ends made LF, every run of more than :data:`RUN` characters
  without a space or tab broken by a line end, and at most :data:`TEXT_SHOWN` characters of the
  body (:data:`TEXT_ALL` after "Show all");
- sanitised HTML cut (before sanitising, at a tag) to :data:`HTML_SHOWN` characters of the
  sender's HTML (:data:`HTML_ALL` after "Show all"), with a zero-width space, a break
  opportunity, after every :data:`RUN` characters of text without one.

Everything here is linear in the input and free of Qt, so it runs on a worker and is tested
without a window.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from core.domain.html_sanitize import sanitize_html

__all__ = [
    "HTML_ALL",
    "HTML_SHOWN",
    "RUN",
    "TEXT_ALL",
    "TEXT_SHOWN",
    "DisplayBody",
    "break_html_runs",
    "break_text_runs",
    "cut_html",
    "prepare_body",
    "prepare_html",
    "prepare_text",
]

RUN = 1_000  # the longest run of characters without a break opportunity the pane gets
TEXT_SHOWN = 200_000  # characters of a plain-text body shown at first
TEXT_ALL = 5_000_000  # ... and after "Show all"
HTML_SHOWN = 300_000  # characters of the sender's HTML shown at first
HTML_ALL = 1_000_000  # ... and after "Show all" (Qt parses HTML on the GUI thread: ~1 s)

_ZWSP = "\u200b"
# A run longer than RUN of characters that give Qt no break opportunity, matched only from its
# start (the look-behind fails at once inside a run, so the scan stays linear); in HTML, the
# characters that break a run.
_TEXT_LONG = re.compile(rf"(?<![^ \t\n])[^ \t\n]{{{RUN + 1},}}")
_HTML_BREAKS = re.compile(rf"([ \t\n\r\f{_ZWSP}]+)")
# Sanitised HTML: tags (attribute values double-quoted, as the sanitiser writes them) and the
# text between them. In text, a character reference is one character on screen.
_HTML_TOKEN = re.compile(r'<(?:[^>"]|"[^"]*")*>|[^<]+|<')
_UNIT = re.compile(r"&[#A-Za-z0-9]{1,32};|[^&]+|&")


@dataclass(frozen=True, slots=True)
class DisplayBody:
    """A body ready for the pane: ``html`` (sanitised) when the message has HTML, else
    ``text``. ``shown`` of ``total`` characters of the source are shown; ``more`` says that
    "Show all" would show more than now."""

    text: str
    html: str | None
    shown: int
    total: int
    more: bool = False

    @property
    def truncated(self) -> bool:
        return self.shown < self.total

    def note(self) -> str:
        """One sentence for the pane when not all of the body is shown ("" when it is)."""
        if not self.truncated:
            return ""
        said = (
            f"This message is long: the first {self.shown:,} of {self.total:,} characters "
            "are shown."
        )
        if self.more:
            return said
        return said + " The rest is too long to show here."


def break_text_runs(text: str) -> str:
    """``text`` with LF line ends only and a line end after every :data:`RUN` characters
    without a space or tab (Qt's layout of a longer run is quadratic)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _TEXT_LONG.sub(lambda m: _chop(m.group(), "\n"), text)


def break_html_runs(html: str) -> str:
    """Sanitised ``html`` with a zero-width space (a break opportunity that shows nothing) after
    every :data:`RUN` characters of text without a space; tags and attributes are untouched.
    A run goes on across tags (``<b>x</b><b>x</b>`` is one line to Qt)."""
    out: list[str] = []
    count = 0  # characters shown since the last break opportunity
    for token in _HTML_TOKEN.findall(html):
        if token.startswith("<") and len(token) > 1:
            out.append(token)
            continue
        for i, piece in enumerate(_HTML_BREAKS.split(token)):
            if i % 2:  # break characters
                out.append(piece)
                count = 0
            elif piece:
                count = _chop_html(piece, count, out)
    return "".join(out)


def _chop(run: str, sep: str) -> str:
    return sep.join(run[i : i + RUN] for i in range(0, len(run), RUN))


def _chop_html(piece: str, count: int, out: list[str]) -> int:
    """Append ``piece`` (text without a break) to ``out`` with a zero-width space wherever the
    run reaches RUN characters shown (``&amp;`` is one), never inside a reference; the run's
    length after it."""
    if "&" not in piece and count + len(piece) <= RUN:
        out.append(piece)
        return count + len(piece)
    for unit in _UNIT.findall(piece):
        if unit.startswith("&") and len(unit) > 1:
            if count >= RUN:
                out.append(_ZWSP)
                count = 0
            out.append(unit)
            count += 1
            continue
        while count + len(unit) > RUN:  # plain characters: cut where the run reaches RUN
            take = RUN - count
            out.extend((unit[:take], _ZWSP))
            unit, count = unit[take:], 0
        out.append(unit)
        count += len(unit)
    return count


def cut_html(html: str, limit: int) -> str:
    """The first ``limit`` characters of ``html``, ending before a tag when one starts in the
    last half (the sanitiser closes what is left open)."""
    if len(html) <= limit:
        return html
    cut = html.rfind("<", limit // 2, limit)
    return html[: cut if cut > 0 else limit]


def prepare_text(text: str, *, limit: int = TEXT_SHOWN, more: bool = True) -> DisplayBody:
    """At most ``limit`` characters of a plain-text body, runs broken. ``more``: a larger
    limit exists ("Show all")."""
    total = len(text)
    shown = min(total, limit)
    return DisplayBody(break_text_runs(text[:shown]), None, shown, total, more and shown < total)


def prepare_html(
    html: str,
    *,
    limit: int = HTML_SHOWN,
    more: bool = True,
    sanitize: Callable[[str], str] = sanitize_html,
) -> DisplayBody:
    """At most ``limit`` characters of the sender's ``html``, sanitised, runs broken."""
    total = len(html)
    part = cut_html(html, limit)
    safe = break_html_runs(sanitize(part))
    return DisplayBody("", safe, len(part), total, more and len(part) < total)


def prepare_body(text: str, html: str | None, *, full: bool = False) -> DisplayBody:
    """The pane's body for a parsed message: its HTML when it has some, else its text; the
    first part of a long one, or (``full``, after "Show all") as much as the pane can take."""
    if html:
        return prepare_html(html, limit=HTML_ALL if full else HTML_SHOWN, more=not full)
    return prepare_text(text, limit=TEXT_ALL if full else TEXT_SHOWN, more=not full)
