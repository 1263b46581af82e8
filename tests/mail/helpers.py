"""Small helpers shared by the mail tests: message builders and a sync replica."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from core.domain.model import MailRef, MessageHeader
from core.mail import MailBackend, SyncBatch


def make_message(
    n: int,
    *,
    sender: str = "jane.doe@fabrikam.example",
    to: str = "me@test.example",
    subject: str | None = None,
    extra: str = "",
    body: str = "Hello,\r\nthis is a test.\r\n",
) -> bytes:
    """A small, valid RFC 5322 message with CRLF line ends (what servers store)."""
    subject = subject if subject is not None else f"Test message {n}"
    head = (
        f"From: Jane Doe <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 02 Nov 2026 10:{n % 60:02d}:00 +0000\r\n"
        f"Message-ID: <msg-{n}@fabrikam.example>\r\nMIME-Version: 1.0\r\n{extra}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    return head.encode() + body.encode()


@dataclass
class Replica:
    """What a client's store would hold after applying sync batches, per the SyncBatch rules."""

    headers: dict[MailRef, MessageHeader] = field(default_factory=dict)
    state: str | None = None
    batches: list[SyncBatch] = field(default_factory=list)

    def apply(self, batch: SyncBatch) -> None:
        if batch.reset:
            self.headers.clear()
        for ref in batch.removed:
            self.headers.pop(ref, None)
        for ch in batch.changed:
            if ch.ref in self.headers:
                self.headers[ch.ref] = replace(
                    self.headers[ch.ref],
                    is_read=ch.is_read,
                    keywords=ch.keywords,
                    tracked_marker=ch.tracked_marker,
                )
        for h in batch.added:
            assert h.ref not in self.headers, f"duplicate {h.ref}"
            self.headers[h.ref] = h
        self.state = batch.state
        self.batches.append(batch)

    def sync(self, backend: MailBackend, folder: str, batch_size: int = 500) -> list[SyncBatch]:
        start = len(self.batches)
        for batch in backend.sync(folder, self.state, batch_size):
            self.apply(batch)
        return self.batches[start:]

    def by_msgid(self) -> dict[str, MessageHeader]:
        return {h.message_id: h for h in self.headers.values()}
