"""IMAP wire helpers on top of imapclient: range FETCH, flag and error decoding."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.response_parser import parse_fetch_response


def create(c: IMAPClient, name: str) -> Any:
    return c.create_folder(name)


def flags_of(c: IMAPClient, uids: list[int]) -> dict[int, Any]:
    return dict(c.fetch(uids, ["FLAGS"]))


def fetch_range(c: IMAPClient, seqset: str, data: list[str | bytes], modifiers: list[str]
                 ) -> dict[int, Any]:
    """UID FETCH over a sequence-set string (``1:5000``). imapclient's ``fetch`` only takes
    lists of single UIDs, which makes a 10,000-UID command line; this sends the range."""
    items = " ".join(d.decode() if isinstance(d, bytes) else d for d in data)
    args = ["UID", "FETCH", seqset, f"({items})"]
    if modifiers:
        args.append("(" + " ".join(modifiers) + ")")
    tag = c._imap._command(*args)
    typ, resp = c._imap._command_complete("FETCH", tag)
    c._checkok("fetch", typ, resp)
    typ, resp = c._imap._untagged_response(typ, resp, "FETCH")
    fast = _header_fetch(resp)
    if fast is not None:
        return fast
    return dict(parse_fetch_response(resp, c.normalise_times, True))


_UID_RE = re.compile(rb"\bUID (\d+)")
_FLAGS_RE = re.compile(rb"\bFLAGS \(([^()]*)\)")
_SIZE_RE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_LITERAL_RE = re.compile(rb"(BODY\[HEADER\.FIELDS \([^()]*\)\]) \{\d+\}$")


def _header_fetch(resp: list[Any]) -> dict[int, Any] | None:
    """The replies to our header FETCH (``UID FLAGS RFC822.SIZE BODY[HEADER.FIELDS …]``),
    read with four regular expressions instead of imapclient's general lexer, which cost a
    third of a first sync. Anything else in the reply (an unsolicited FETCH, a quoted instead
    of a literal header block) returns None: the caller uses the general parser."""
    out: dict[int, Any] = {}
    i, n = 0, len(resp)
    while i < n:
        item = resp[i]
        if not (isinstance(item, tuple) and len(item) == 2 and i + 1 < n
                and resp[i + 1] == b")"):
            return None
        head, literal = item
        uid, flags, size = _UID_RE.search(head), _FLAGS_RE.search(head), _SIZE_RE.search(head)
        body = _LITERAL_RE.search(head)
        if not (uid and flags and size and body):
            return None
        out[int(uid.group(1))] = {b"FLAGS": tuple(flags.group(1).split()),
                                  b"RFC822.SIZE": int(size.group(1)), body.group(1): literal}
        i += 2
    return out


def error_text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def is_read(data: dict[bytes, Any]) -> bool:
    return b"\\Seen" in data.get(b"FLAGS", ())


def keywords(flags: Sequence[bytes]) -> tuple[str, ...]:
    return tuple(f.decode("utf-8", "replace") for f in flags if not f.startswith(b"\\"))


def chunks(items: Sequence[int], n: int) -> Iterator[list[int]]:
    for i in range(0, len(items), n):
        yield list(items[i:i + n])
