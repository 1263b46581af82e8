"""IMAP wire helpers on top of imapclient: range FETCH, flag and error decoding."""

from __future__ import annotations

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
    return dict(parse_fetch_response(resp, c.normalise_times, True))


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
