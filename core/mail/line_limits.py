"""RFC 5321's line limit for what Trackbox sends: at most 998 octets a line before CRLF.

Servers answer a longer line with "500 Line too long" (aiosmtpd), reject the message, or break
the line wherever it falls (Postfix, Exchange), so no line may leave longer. ``build_mime``
(``core.mail.drafts``) writes text with ``email``'s policy, which chooses quoted-printable or
base64 for long lines by itself; what it copies unchanged is a forwarded message
(``message/rfc822`` must stay 7bit/8bit, RFC 2046 5.2.1), so :func:`shorten_lines` re-encodes
the parts of such a message that carry long lines as base64 — the same bytes once decoded, so
the message reads the same when opened. :func:`check_lines` is the last guard before a send.
"""

from __future__ import annotations

import base64
import re
from email.message import Message

#: The longest line RFC 5321 4.5.3.1.6 allows, without its CRLF.
MAX_LINE = 998
_LINE = re.compile(rb"[^\r\n]*")


class LineTooLong(ValueError):
    """A message about to be sent has a line over :data:`MAX_LINE` octets (a bug in what
    built it: sending would fail or the server would break the line)."""


def longest_line(raw: bytes) -> int:
    """The length in octets of ``raw``'s longest line (CR and LF not counted)."""
    return max((len(m) for m in _LINE.findall(raw)), default=0)


def check_lines(raw: bytes) -> None:
    """Raise :class:`LineTooLong` when a line of ``raw`` is longer than SMTP allows."""
    longest = longest_line(raw)
    if longest > MAX_LINE:
        raise LineTooLong(f"the message has a line of {longest} octets; SMTP allows {MAX_LINE}")


def shorten_lines(msg: Message) -> None:
    """Re-encode, in place, every leaf part of ``msg`` whose encoded body has a line over
    :data:`MAX_LINE` octets as base64 (its decoded bytes unchanged); nested messages too."""
    if msg.is_multipart():
        for part in msg.get_payload():
            if isinstance(part, Message):
                shorten_lines(part)
        return
    payload = msg.get_payload()
    if isinstance(payload, list):  # message/rfc822: one message inside
        for inner in payload:
            if isinstance(inner, Message):
                shorten_lines(inner)
        return
    if not isinstance(payload, str):
        return
    if longest_line(payload.encode("utf-8", "surrogateescape")) <= MAX_LINE:
        return
    data = msg.get_payload(decode=True)
    decoded = data if isinstance(data, bytes) else b""
    del msg["Content-Transfer-Encoding"]
    msg["Content-Transfer-Encoding"] = "base64"
    msg.set_payload(base64.encodebytes(decoded).decode("ascii"))


__all__ = ["MAX_LINE", "LineTooLong", "check_lines", "longest_line", "shorten_lines"]
