"""``WWW-Authenticate`` headers read as RFC 7235 challenges, strictly enough to refuse a
hostile header and leniently enough for what servers really send.

A header holds one or more challenges separated by commas, each a scheme followed by a token68
(``Negotiate YIIG…``) or by ``name=value`` parameters whose values are tokens or quoted strings.
Dataverse writes URLs unquoted (``Bearer authorization_uri=https://login…/authorize,
resource_id=https://org…/``) although ``:`` and ``/`` are not token characters: an unquoted
value here runs to the next comma or blank. Anything else that does not parse (an unterminated
quote, a parameter before any scheme, control characters, a value repeated, an absurd size)
raises :class:`ChallengeSyntaxError` saying what and where; nothing is guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Longer headers are refused unread (IIS caps a whole request head at 16 KiB).
MAX_HEADER = 8192
#: More challenges or parameters than this is not a real server.
MAX_ITEMS = 64

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BLANK = " \t"


class ChallengeSyntaxError(ValueError):
    """A ``WWW-Authenticate`` value that is not a list of challenges: ``reason`` says what is
    wrong, ``position`` where (a character offset, -1 for the whole header)."""

    def __init__(self, reason: str, position: int = -1) -> None:
        where = f" at character {position}" if position >= 0 else ""
        super().__init__(f"{reason}{where}")
        self.reason = reason
        self.position = position


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge: ``scheme`` as sent, ``params`` by lower-case name, or ``token68``."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None

    def is_scheme(self, name: str) -> bool:
        return self.scheme.lower() == name.lower()


def parse_challenges(*headers: str) -> list[Challenge]:
    """The challenges of one or more ``WWW-Authenticate`` values, in order."""
    found: list[Challenge] = []
    for header in headers:
        found.extend(_Parser(header).parse())
    if len(found) > MAX_ITEMS:
        raise ChallengeSyntaxError(f"more than {MAX_ITEMS} challenges")
    return found


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_HEADER:
            raise ChallengeSyntaxError(f"header longer than {MAX_HEADER} characters")
        bad = _CONTROL.search(text)
        if bad:
            raise ChallengeSyntaxError("control character in header", bad.start())
        self.text = text
        self.i = 0

    def parse(self) -> list[Challenge]:
        challenges: list[Challenge] = []
        current: Challenge | None = None
        items = 0
        while True:
            self._skip(_BLANK + ",")
            if self.i >= len(self.text):
                return challenges
            items += 1
            if items > MAX_ITEMS:
                raise ChallengeSyntaxError(f"more than {MAX_ITEMS} items")
            start = self.i
            name = self._token()
            self._skip(_BLANK)
            if self._peek() == "=" and current is not None and current.token68 is None:
                self.i += 1
                self._skip(_BLANK)
                key = name.lower()
                if key in current.params:
                    raise ChallengeSyntaxError(f"parameter {name!r} given twice", start)
                current.params[key] = self._value()
                self._end_of_item()
                continue
            if self._peek() == "=":
                raise ChallengeSyntaxError(f"parameter {name!r} outside a challenge", start)
            current = Challenge(name, {})
            token68 = _TOKEN68.match(self.text, self.i)
            if token68 and self._ends_item(token68.end()) and self.i > start + len(name):
                current = Challenge(name, {}, token68.group())
                self.i = token68.end()
                self._end_of_item()
            challenges.append(current)

    def _peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def _skip(self, chars: str) -> None:
        while self.i < len(self.text) and self.text[self.i] in chars:
            self.i += 1

    def _token(self) -> str:
        match = _TOKEN.match(self.text, self.i)
        if not match:
            raise ChallengeSyntaxError(f"unexpected {self.text[self.i]!r}", self.i)
        self.i = match.end()
        return match.group()

    def _ends_item(self, at: int) -> bool:
        rest = self.text[at:].lstrip(_BLANK)
        return rest == "" or rest.startswith(",")

    def _end_of_item(self) -> None:
        self._skip(_BLANK)
        if self.i < len(self.text) and self.text[self.i] != ",":
            raise ChallengeSyntaxError(f"expected ',' but found {self.text[self.i]!r}", self.i)

    def _value(self) -> str:
        if self._peek() == '"':
            return self._quoted()
        start = self.i
        while self.i < len(self.text) and self.text[self.i] not in ", \t":
            if self.text[self.i] in '"\\':
                raise ChallengeSyntaxError(f"{self.text[self.i]!r} in an unquoted value", self.i)
            self.i += 1
        return self.text[start : self.i]

    def _quoted(self) -> str:
        start = self.i
        self.i += 1
        out: list[str] = []
        while self.i < len(self.text):
            char = self.text[self.i]
            if char == "\\":
                if self.i + 1 >= len(self.text):
                    break
                out.append(self.text[self.i + 1])
                self.i += 2
                continue
            if char == '"':
                self.i += 1
                return "".join(out)
            out.append(char)
            self.i += 1
        raise ChallengeSyntaxError("unterminated quoted string", start)


__all__ = ["MAX_HEADER", "Challenge", "ChallengeSyntaxError", "parse_challenges"]
