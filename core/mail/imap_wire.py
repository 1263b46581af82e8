"""IMAP wire helpers on top of imapclient: a connection under command deadlines, range
FETCH, flag and error decoding."""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

from imapclient import IMAPClient
from imapclient import exceptions as imap_exc
from imapclient.response_parser import parse_fetch_response

from core.mail.deadline_socket import CommandClock, DeadlineSocket, DeadlineTlsContext, connect


class _DeadlineIMAP4(imaplib.IMAP4):
    """imaplib's connection over a :class:`DeadlineSocket` (TLS from the first byte when
    ``tls`` is given), so the greeting is read under the deadline as well."""

    def __init__(
        self,
        host: str,
        port: int,
        clock: CommandClock,
        tls: DeadlineTlsContext | None,
        timeout: float | None,
    ) -> None:
        self._clock, self._tls = clock, tls
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> Any:
        sock: DeadlineSocket = connect(self.host, self.port, timeout, self._clock)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        return sock


class DeadlineIMAPClient(IMAPClient):  # type: ignore[misc]  # imapclient is untyped
    """IMAPClient whose connection ends every command by ``clock``'s deadline. imapclient
    has no public hook for its socket: ``_create_IMAP4`` is the one it calls (4.x);
    ``tests/mail/test_mail_deadline.py`` fails if it stops doing so."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        clock: CommandClock,
        ssl_context: ssl.SSLContext,
        tls: bool,
        timeout: float,
    ) -> None:
        self.deadline_clock = clock
        self.deadline_tls = DeadlineTlsContext(ssl_context, clock)
        self._use_tls = tls
        super().__init__(host, port, ssl=tls, ssl_context=ssl_context, timeout=timeout)

    def _create_IMAP4(self) -> imaplib.IMAP4:
        return _DeadlineIMAP4(
            self.host,
            self.port,
            self.deadline_clock,
            self.deadline_tls if self._use_tls else None,
            self._timeout.connect,
        )

    def starttls_bounded(self) -> Any:
        """STARTTLS with the handshake under the deadline and the TLS socket wrapped."""
        return self.starttls(self.deadline_tls)


def create(c: IMAPClient, name: str) -> Any:
    return c.create_folder(name)


def flags_of(c: IMAPClient, uids: list[int]) -> dict[int, Any]:
    return dict(c.fetch(uids, ["FLAGS"]))


def fetch_range(
    c: IMAPClient, seqset: str, data: list[str | bytes], modifiers: list[str]
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


class FetchedHeader(NamedTuple):
    """One message of a header FETCH: what the message list needs from the server."""

    uid: int
    flags: tuple[bytes, ...]
    size: int
    block: bytes


_LITERAL_END_RE = re.compile(rb"\{(\d+)\}\r\n\Z")
_FETCH_RE = re.compile(rb"\* (\d+) FETCH (.*)", re.S)
_UID_RE = re.compile(rb"\bUID (\d+)")
_FLAGS_RE = re.compile(rb"\bFLAGS \(([^()]*)\)")
_SIZE_RE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_BODY_RE = re.compile(rb"\bBODY\[HEADER\.FIELDS \([^()]*\)\] \{\d+\}\Z")


def header_fetch(c: IMAPClient, seqset: str, items: bytes) -> Iterator[FetchedHeader]:
    """``UID FETCH seqset (FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (…)])``, read straight
    off the connection, each message handed over as soon as it is read: the caller parses
    it while the server is still sending the next ones.

    imaplib's general reader (a regular expression per line, every line logged and kept in
    a list) and imapclient's lexer together cost more than parsing the headers: a third of
    a 10,000-message first sync. Here each reply is one line, its literal and a ``)``, read
    with four regular expressions; a reply of another shape (items in another order, a
    quoted header block, several literals) goes through imapclient's parser, and untagged
    replies that are not FETCH (``EXISTS``, ``EXPUNGE``) are of no use here and skipped.
    Leaving the loop early closes the connection: the rest of the reply would be in the way.
    """
    return _streamed_fetch(c, seqset, items, _one_reply)


def body_fetch(c: IMAPClient, seqset: str) -> Iterator[tuple[int, bytes]]:
    """``UID FETCH seqset (BODY.PEEK[])`` read as :func:`header_fetch` reads headers:
    ``(uid, raw message)`` for each message as soon as it is read."""
    return _streamed_fetch(c, seqset, b"BODY.PEEK[]", _one_body)


R = TypeVar("R")


def _streamed_fetch(
    c: IMAPClient,
    seqset: str,
    items: bytes,
    one: Callable[[IMAPClient, list[tuple[bytes, bytes]], bytes], R | None],
) -> Iterator[R]:
    """A UID FETCH whose untagged replies ``one`` turns into results (None: not ours)."""
    imap = c._imap
    tag = imap._new_tag()
    done = False
    try:
        imap.send(b"%s UID FETCH %s (%s)\r\n" % (tag, seqset.encode("ascii"), items))
        while True:
            line = _line(imap)
            if line.startswith(b"* "):
                parts: list[tuple[bytes, bytes]] = []
                while (m := _LITERAL_END_RE.search(line)) is not None:
                    parts.append((line[:-2], imap.read(int(m.group(1)))))
                    line = _line(imap)
                got = one(c, parts, line.rstrip(b"\r\n"))
                if got is not None:
                    yield got
            elif line.startswith(tag + b" "):
                done = True
                status, _, text = line[len(tag) + 1 :].rstrip(b"\r\n").partition(b" ")
                if status != b"OK":
                    raise imap_exc.IMAPClientError(
                        f"fetch failed: {text.decode('utf-8', 'replace')}"
                    )
                return
            else:
                raise imap_exc.IMAPClientAbortError(f"unexpected reply to FETCH: {line[:80]!r}")
    finally:
        imap.tagged_commands.pop(tag, None)
        if not done:
            imap.shutdown()  # out of step with the server: the next call reconnects


def _line(imap: Any) -> bytes:
    line: bytes = imap.readline()
    if not line.endswith(b"\n"):
        raise imap_exc.IMAPClientAbortError("connection closed during FETCH")
    return line


def _one_reply(
    c: IMAPClient, parts: list[tuple[bytes, bytes]], tail: bytes
) -> FetchedHeader | None:
    """One untagged reply (its literals in ``parts``, the rest of the line in ``tail``) as a
    header, or None if it is not a header FETCH."""
    first = parts[0][0] if parts else tail
    if first.startswith(b"* BYE"):
        raise imap_exc.IMAPClientAbortError(first.decode("utf-8", "replace"))
    if len(parts) == 1 and tail == b")":
        head, literal = parts[0]
        uid, flags = _UID_RE.search(head), _FLAGS_RE.search(head)
        size, body = _SIZE_RE.search(head), _BODY_RE.search(head)
        if uid and flags and size and body and head.startswith(b"* "):
            return FetchedHeader(
                int(uid.group(1)), tuple(flags.group(1).split()), int(size.group(1)), literal
            )
    m = _FETCH_RE.match(first)
    if m is None:
        return None  # EXISTS, EXPUNGE, OK [...]: nothing for the message list
    # imaplib's shape for imapclient's parser: "<seq> (<items>" and literals as tuples.
    lead = b"%s %s" % (m.group(1), m.group(2))
    resp: list[Any] = [(lead, parts[0][1]), *parts[1:], tail] if parts else [lead]
    for uid, data in parse_fetch_response(resp, c.normalise_times, True).items():
        block = next(
            (v for k, v in data.items() if isinstance(k, bytes) and k.startswith(b"BODY[HEADER")),
            None,
        )
        if block is None or b"RFC822.SIZE" not in data:
            return None  # an unsolicited FETCH (flags changed meanwhile)
        return FetchedHeader(
            int(uid), tuple(data.get(b"FLAGS", ())), int(data[b"RFC822.SIZE"]), bytes(block)
        )
    return None


_WHOLE_BODY_RE = re.compile(rb"\bBODY\[\] \{\d+\}\Z")


def _one_body(
    c: IMAPClient, parts: list[tuple[bytes, bytes]], tail: bytes
) -> tuple[int, bytes] | None:
    """One untagged reply as ``(uid, raw message)``, or None if it carries no body."""
    first = parts[0][0] if parts else tail
    if first.startswith(b"* BYE"):
        raise imap_exc.IMAPClientAbortError(first.decode("utf-8", "replace"))
    if len(parts) == 1 and tail == b")":
        head, literal = parts[0]
        uid = _UID_RE.search(head)
        if uid and _WHOLE_BODY_RE.search(head) and head.startswith(b"* "):
            return int(uid.group(1)), literal
    m = _FETCH_RE.match(first)
    if m is None:
        return None
    lead = b"%s %s" % (m.group(1), m.group(2))
    resp: list[Any] = [(lead, parts[0][1]), *parts[1:], tail] if parts else [lead]
    for uid, data in parse_fetch_response(resp, c.normalise_times, True).items():
        raw = data.get(b"BODY[]")
        return None if raw is None else (int(uid), bytes(raw))  # None: flags changed meanwhile
    return None


def error_text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def is_read(data: dict[bytes, Any]) -> bool:
    return b"\\Seen" in data.get(b"FLAGS", ())


def keywords(flags: Sequence[bytes]) -> tuple[str, ...]:
    return tuple(f.decode("utf-8", "replace") for f in flags if not f.startswith(b"\\"))


def chunks(items: Sequence[int], n: int) -> Iterator[list[int]]:
    for i in range(0, len(items), n):
        yield list(items[i : i + n])
