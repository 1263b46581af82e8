"""A malformed-MIME corpus of the project's own making (issue 18, "the suite that keeps it so"),
built in code at test time: no big files in the repository.

Each case is a function returning the bytes of one message. Every case has its own Date and
Subject prefix, so two cases never have the same content: a message without a usable
Message-ID gets an identity derived from its content, and two cases must not share one.
The 50 MB attachment is written to a file on demand (:func:`write_big_attachment`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

CRLF = b"\r\n"
SENDER = b"Hostile Sender <hostile.sender@fabrikam.example>"
RECIPIENT = b"Trackbox User <me@contoso.example>"


def _head(case: int, name: str, *, message_id: bytes | None = None, tag: str = "") -> list[bytes]:
    """The ordinary header lines of case number ``case``: its own minute, its own subject."""
    lines = [
        b"From: " + SENDER,
        b"To: " + RECIPIENT,
        b"Date: Mon, 02 Mar 2026 %02d:%02d:00 +0000" % (8 + case // 60, case % 60),
        f"Subject: [corpus {name}{tag}]".encode("ascii"),
        b"MIME-Version: 1.0",
    ]
    if message_id is not None:
        lines.insert(0, b"Message-ID: " + message_id)
    return lines


def _message(head: list[bytes], body: bytes, *, content_type: bytes = b"") -> bytes:
    ct = [b"Content-Type: " + content_type] if content_type else [b"Content-Type: text/plain"]
    return CRLF.join([*head, *ct]) + CRLF + CRLF + body


def no_message_id(tag: str = "") -> bytes:
    return _message(_head(1, "no Message-ID", tag=tag), b"There is no Message-ID field.\r\n")


def empty_message_id(tag: str = "") -> bytes:
    return _message(_head(2, "empty", message_id=b"", tag=tag), b"An empty Message-ID.\r\n")


def message_id_with_spaces(tag: str = "") -> bytes:
    mid = b"<broken id with spaces@fabrikam.example>"
    return _message(_head(3, "spaces", message_id=mid, tag=tag), b"Spaces in the id.\r\n")


def message_id_with_control_characters(tag: str = "") -> bytes:
    mid = b"<ctl\x01\x07\x7fid@fabrikam.example>"
    return _message(_head(4, "controls", message_id=mid, tag=tag), b"Controls in the id.\r\n")


def message_id_without_at(tag: str = "") -> bytes:
    mid = b"<no-at-sign.fabrikam.example>"
    return _message(_head(5, "no at", message_id=mid, tag=tag), b"No @ in the id.\r\n")


def message_id_2000_characters(tag: str = "") -> bytes:
    mid = b"<" + b"l" * 2000 + b"@fabrikam.example>"
    return _message(_head(6, "long id", message_id=mid, tag=tag), b"A 2,000 character id.\r\n")


def duplicate_message_ids(tag: str = "") -> bytes:
    """Two Message-ID fields: the first counts (as for every other duplicated field)."""
    first = f"<dup-first{tag}@fabrikam.example>".encode("ascii")
    head = _head(7, "duplicate ids", message_id=first, tag=tag)
    head.insert(1, f"Message-ID: <dup-second{tag}@fabrikam.example>".encode("ascii"))
    return _message(head, b"Two Message-ID fields.\r\n")


def huge_subject(tag: str = "") -> bytes:
    """A 1 MB Subject on one line, after the other fields."""
    head = _head(8, "huge subject", tag=tag)
    head[3] += b" " + b"S" * (1024 * 1024)
    return _message(head, b"The subject is 1 MB.\r\n")


def many_header_lines(tag: str = "") -> bytes:
    """5,000 header lines after the usual ones."""
    head = _head(9, "5000 header lines", tag=tag)
    head += [b"X-Filler-%d: value number %d" % (n, n) for n in range(5000)]
    return _message(head, b"5,000 header lines.\r\n")


def ten_thousand_recipients(tag: str = "") -> bytes:
    """10,000 addresses in To, folded one to a line."""
    head = _head(10, "10000 recipients", tag=tag)
    rcpts = b",\r\n ".join(b"Recipient %d <r%d@rcpt.example>" % (n, n) for n in range(10_000))
    head[1] = b"To: " + RECIPIENT + b",\r\n " + rcpts
    return _message(head, b"10,000 recipients.\r\n")


def nul_bytes(tag: str = "") -> bytes:
    """NUL bytes in header values and in the body."""
    head = _head(11, "nul\x00bytes", tag=tag)
    head.append(b"X-Nul: before\x00after")
    return _message(head, b"Body with \x00 NUL \x00\x00 bytes.\r\n\x00\r\n")


def bad_charsets(tag: str = "") -> bytes:
    """Unknown charsets in an encoded word, a display name and the body; raw Latin-1 bytes."""
    head = _head(12, "bad charsets", tag=tag)
    head[0] = b"From: =?x-no-such-charset?Q?N=E4me?= <hostile.sender@fabrikam.example>"
    head[3] += b" =?x-unknown?B?SGVsbG8=?= caf\xe9"
    boundary = b"cs-boundary"
    body = CRLF.join(
        [
            b"--" + boundary,
            b"Content-Type: text/plain; charset=x-no-such-charset",
            b"",
            b"caf\xe9 \xff\xfe",
            b"--" + boundary,
            b'Content-Type: text/html; charset="utf-7-bogus"',
            b"Content-Transfer-Encoding: quoted-printable",
            b"",
            b"<p>=E9=FF=ZZ broken qp</p>",
            b"--" + boundary + b"--",
            b"",
        ]
    )
    return _message(head, body, content_type=b'multipart/alternative; boundary="cs-boundary"')


def deep_nesting(tag: str = "", depth: int = 200) -> bytes:
    """``depth`` levels of multipart/mixed, one inside the other."""
    inner = b"Content-Type: text/plain\r\n\r\nThe innermost part.\r\n"
    for level in range(depth - 1, 0, -1):
        b = b"deep-%d" % level
        inner = (
            b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n'
            b"--" + b + CRLF + inner + b"--" + b + b"--\r\n"
        )
    head = _head(13, f"{depth} levels deep", tag=tag)
    outer = b"deep-0"
    body = b"--" + outer + CRLF + inner + b"--" + outer + b"--\r\n"
    return _message(head, body, content_type=b'multipart/mixed; boundary="deep-0"')


def many_parts(tag: str = "", parts: int = 10_000) -> bytes:
    """``parts`` small parts in one multipart/mixed."""
    one = b"--many\r\nContent-Type: text/plain\r\n\r\npart %d\r\n"
    body = b"".join(one % n for n in range(parts)) + b"--many--\r\n"
    head = _head(14, f"{parts} parts", tag=tag)
    return _message(head, body, content_type=b'multipart/mixed; boundary="many"')


def cr_only_line_ends(tag: str = "") -> bytes:
    """Every line ends in a bare CR (old Macintosh mail)."""
    message = _message(_head(15, "CR only", tag=tag), b"Line one.\r\nLine two.\r\n")
    return message.replace(CRLF, b"\r")


def two_megabyte_line(tag: str = "") -> bytes:
    """A body of one 2 MB line."""
    return _message(_head(16, "2 MB line", tag=tag), b"word " * (2 * 1024 * 1024 // 5) + CRLF)


def usable_message_id(tag: str = "") -> bytes:
    """A control: a well-formed message keeps its own id."""
    mid = f"<well-formed{tag}@fabrikam.example>".encode("ascii")
    return _message(_head(17, "well-formed", message_id=mid, tag=tag), b"All is well.\r\n")


#: The corpus: name -> builder (``tag`` makes the Subject and real ids unique to a run).
CASES: dict[str, Callable[[str], bytes]] = {
    "no_message_id": no_message_id,
    "empty_message_id": empty_message_id,
    "message_id_with_spaces": message_id_with_spaces,
    "message_id_with_control_characters": message_id_with_control_characters,
    "message_id_without_at": message_id_without_at,
    "message_id_2000_characters": message_id_2000_characters,
    "duplicate_message_ids": duplicate_message_ids,
    "huge_subject": huge_subject,
    "many_header_lines": many_header_lines,
    "ten_thousand_recipients": ten_thousand_recipients,
    "nul_bytes": nul_bytes,
    "bad_charsets": bad_charsets,
    "deep_nesting": deep_nesting,
    "many_parts": many_parts,
    "cr_only_line_ends": cr_only_line_ends,
    "two_megabyte_line": two_megabyte_line,
    "usable_message_id": usable_message_id,
}

#: The cases whose Message-ID field holds no usable id.
WITHOUT_USABLE_ID = frozenset(CASES) - {"duplicate_message_ids", "usable_message_id"}


def corpus(tag: str = "") -> dict[str, bytes]:
    """Every case but the 50 MB one, built now."""
    return {name: build(tag) for name, build in CASES.items()}


def write_big_attachment(path: Path, tag: str = "", megabytes: int = 50) -> Path:
    """A message with a ``megabytes`` MB attachment, written to ``path`` a chunk at a time
    (never the whole message in memory) and without a Message-ID."""
    head = _head(18, f"{megabytes} MB attachment", tag=tag)
    start = CRLF.join(
        [
            *head,
            b'Content-Type: multipart/mixed; boundary="big"',
            b"",
            b"--big",
            b"Content-Type: text/plain",
            b"",
            b"See the attachment.",
            b"--big",
            b"Content-Type: application/octet-stream",
            b'Content-Disposition: attachment; filename="big.bin"',
            b"Content-Transfer-Encoding: base64",
            b"",
            b"",
        ]
    )
    # 57 bytes of data make one 76-character base64 line; a block of them repeats.
    line = base64.b64encode(bytes(range(57))) + CRLF
    block = line * 1000
    data_per_block = 57 * 1000
    with open(path, "wb") as fh:
        fh.write(start)
        for _ in range(megabytes * 1024 * 1024 // data_per_block):
            fh.write(block)
        fh.write(b"--big--" + CRLF)
    return path
