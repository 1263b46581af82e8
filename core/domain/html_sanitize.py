"""Make untrusted HTML mail safe to show: no scripts, no event handlers, nothing remote.

nh3 (Ammonia) removes scripts, handlers and dangerous URL schemes. On top of that, every
resource reference that would make the viewer fetch something (``img src``, ``background``,
``srcset``, CSS ``url()``) is dropped unless it points inside the message (``cid:``) or is
inline ``data:``. Links stay as links (a click opens them in the browser, never the viewer).
"""

from __future__ import annotations

import re

import nh3

_RESOURCE_ATTRS = {"src", "srcset", "background", "poster", "lowsrc", "dynsrc"}
_SAFE_RESOURCE_PREFIXES = ("cid:", "data:image/")

_TAGS = set(nh3.ALLOWED_TAGS) | {
    "font",
    "center",
    "span",
    "div",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "td",
    "th",
    "img",
    "hr",
    "br",
    "p",
    "u",
}
_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"align", "valign", "width", "height", "colspan", "rowspan", "title", "dir", "lang"},
    "a": {"href"},
    "img": {"src", "alt"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor"},
    "td": {"bgcolor"},
    "th": {"bgcolor"},
}


def _filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute in _RESOURCE_ATTRS:
        v = value.strip().lower()
        return value if v.startswith(_SAFE_RESOURCE_PREFIXES) else None
    return value


def sanitize_html(html: str) -> str:
    """Return HTML that renders the message's text and layout and can load nothing remote."""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=_filter,
        url_schemes={"http", "https", "mailto", "cid", "data"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


_REMOTE = re.compile(
    r"""(?:<img\b[^<>]*?\bsrc|\bbackground)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)


def count_blocked_resources(html: str) -> int:
    """How many remote images and backgrounds the original HTML asked for (the reading pane
    tells the user they were blocked). Linear: the scan for ``src`` stops at the next tag, so
    many ``<img`` without ``>`` cannot make it quadratic."""
    return len(_REMOTE.findall(html))
