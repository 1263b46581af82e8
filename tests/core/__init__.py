"""Shared builders for the core tests: the demo organisation as a resolver, a mailbox owner X,
and messages, so that each test reads as a mail scenario."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.domain import demo_data as demo
from core.domain.conversation_index import ConversationIndex
from core.domain.correlation import Correlator, InMemoryCorrelationIndex
from core.domain.crm_settings import OrgSettings, UserOptions
from core.domain.model import Address, Decision, MailRef, MessageHeader, RecordRef
from core.domain.resolution import InMemoryResolver, demo_record
from core.domain.tracking import TrackContext, decide

X = Address(demo.ME.email, demo.ME.full_name)
JANE = Address("jane.doe@fabrikam.example", "Jane Doe")  # CRM contact
KENJI = Address("kenji.watanabe@proseware.example", "Kenji Watanabe")  # CRM lead
PRIYA = Address("priya.shah@contoso.example", "Priya Shah")  # CRM user
INTERN = Address("sam.intern@contoso.example", "Sam Intern")  # own domain, no CRM record
STRANGER = Address("chris.parker@gmail.example", "Chris Parker")  # unknown
RUTH = Address("ruth.alvarez@adventure-works.example", "Ruth Alvarez")  # contact and lead

X_RECORD = demo_record("systemuser", X.email, demo.ME.full_name)
OPPORTUNITY = RecordRef("opportunity", "00000000-0000-0000-0000-0000000000a1", "200 licences")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

_ids = itertools.count(1)


def message(
    subject: str,
    *,
    sender: Address,
    to: tuple[Address, ...] = (X,),
    cc: tuple[Address, ...] = (),
    in_reply_to: str | None = None,
    thread_index: str | None = None,
    size: int = 20_000,
    has_attachments: bool = False,
    message_id: str | None = None,
) -> MessageHeader:
    n = next(_ids)
    mid = message_id or f"<m{n}@{sender.email.split('@')[1]}>"
    return MessageHeader(
        ref=MailRef("Inbox", str(n)),
        message_id=mid,
        subject=subject,
        sender=sender,
        to=to,
        cc=cc,
        date=T0 + timedelta(minutes=n),
        size=size,
        has_attachments=has_attachments,
        in_reply_to=in_reply_to,
        thread_index=thread_index,
    )


@dataclass
class World:
    """X's mailbox against the demo CRM: settings, address books and the tracked mail."""

    org: OrgSettings = field(default_factory=OrgSettings)
    options: UserOptions = field(default_factory=UserOptions)
    resolver: InMemoryResolver = field(default_factory=InMemoryResolver.from_demo)
    index: InMemoryCorrelationIndex = field(default_factory=InMemoryCorrelationIndex)
    tokens: itertools.count = field(default_factory=lambda: itertools.count(23))

    def __post_init__(self) -> None:
        self.options = _with_owner(self.options)

    @property
    def correlator(self) -> Correlator:
        return Correlator(self.org, self.index)

    def decide(self, msg: MessageHeader, **context: object) -> Decision:
        return decide(
            msg, self.options, self.org, self.resolver, self.correlator, TrackContext(**context)
        )  # type: ignore[arg-type]

    def track(self, msg: MessageHeader, regarding: RecordRef | None = None) -> None:
        """Record ``msg`` as tracked (what the outbox does once the CRM has it)."""
        self.correlator.track(msg, f"activity-{msg.message_id}", regarding)

    def send_from_crm(
        self, subject: str, to: Address, regarding: RecordRef | None = OPPORTUNITY
    ) -> MessageHeader:
        """X sends from the CRM: the CRM adds the token; the mail is tracked."""
        token = f"CRM:0001{next(self.tokens):03d}"
        msg = message(
            f"{subject} {token}", sender=X, to=(to,), thread_index=ConversationIndex.new(T0).header
        )
        self.track(msg, regarding)
        return msg


def reply(
    to_msg: MessageHeader,
    sender: Address,
    *,
    keep_token: bool = True,
    threaded: bool = True,
    recipients: tuple[Address, ...] = (X,),
) -> MessageHeader:
    """A reply to ``to_msg``: "RE: subject", In-Reply-To and Thread-Index when threaded."""
    subject = f"RE: {to_msg.subject}"
    if not keep_token:
        subject = " ".join(w for w in subject.split() if not w.upper().startswith("CRM:"))
    index = None
    if threaded and to_msg.thread_index:
        index = ConversationIndex(to_msg.thread_index).child(T0 + timedelta(hours=1)).header
    return message(
        subject,
        sender=sender,
        to=recipients,
        in_reply_to=to_msg.message_id if threaded else None,
        thread_index=index,
    )


def _with_owner(options: UserOptions) -> UserOptions:
    from dataclasses import replace

    return replace(
        options,
        mailbox_owner=options.mailbox_owner or X_RECORD,
        mailbox_addresses=options.mailbox_addresses or (X.email,),
    )
