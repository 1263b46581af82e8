"""Ask the CRM what the local index cannot answer (issue 13): the CRM, not the local copy,
is the truth for correlation.

For new mail whose tracking token, In-Reply-To/References Message-IDs or conversation index
the local index does not know, the CRM is asked once per cycle, in batches (``trackingtoken
eq``, ``messageid eq``, ``startswith(conversationindex, …)``), and what it has is added to the
local index, so the decision then reads it like any other tracked e-mail. A mail whose
decision needs such an answer while the CRM cannot be reached waits, *undecided*, for the
next cycle that reaches it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from core.crm import CrmClient
from core.crm.wire import odata_string
from core.domain.conversation_index import message_id_key, message_id_keys, parse_thread_index
from core.domain.correlation import Correlator, TrackedEmail
from core.domain.crm_settings import IncomingFilter, UserOptions
from core.domain.model import MessageHeader
from core.domain.tracking import Direction, direction_of
from core.sync.tracked_state import EMAIL_COLUMNS, email_entries

#: Keys per request: a ``$filter`` of this many ``or`` terms stays well inside URL limits.
BATCH = 25
#: Base64 characters of a conversation index that encode whole bytes of its 22-byte header
#: block (21 bytes): the CRM is asked for these, the rest of the root is compared here.
ROOT_PREFIX_CHARS = 28


@dataclass
class Questions:
    """Correlation keys that only the CRM can answer."""

    message_ids: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    roots: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.message_ids or self.tokens or self.roots)

    def add(self, other: Questions) -> None:
        self.message_ids |= other.message_ids
        self.tokens |= other.tokens
        self.roots |= other.roots


def decision_may_correlate(
    header: MessageHeader, options: UserOptions, correlator: Correlator
) -> bool:
    """Whether a correlation could change the automatic decision on ``header`` (else the
    CRM need not be asked: automatic tracking off, or incoming mail with the filter "none")."""
    if not options.automatic_tracking_enabled or not correlator.settings.correlation_enabled:
        return False
    outgoing = direction_of(header, options) is Direction.OUTGOING
    return outgoing or options.incoming_filter is not IncomingFilter.NONE


def unanswered(header: MessageHeader, correlator: Correlator) -> Questions:
    """The keys of ``header`` that the enabled correlation steps would look up and that the
    local index does not know."""
    org, index = correlator.settings, correlator.index
    asked = Questions()
    if not org.correlation_enabled:
        return asked
    own = message_id_key(header.message_id)
    if own and index.by_message_id(own) is not None:
        return asked  # already tracked: nothing to ask
    if org.token_only or org.correlate_tracking_token:
        token = correlator.find_token(header)
        if token and index.by_token(token) is None:
            asked.tokens.add(token)
    if org.token_only:
        return asked
    if org.correlate_in_reply_to:
        refs = [
            *message_id_keys(header.in_reply_to),
            *(k for r in header.references if (k := message_id_key(r))),
        ]
        asked.message_ids |= {k for k in refs if index.by_message_id(k) is None}
    if org.correlate_conversation_index and header.thread_index:
        parsed = parse_thread_index(header.thread_index)
        if parsed is not None and parsed.depth > 0 and not index.by_conversation_root(parsed.root):
            asked.roots.add(parsed.root)
    return asked


def ask_crm(crm: CrmClient, correlator: Correlator, questions: Questions) -> list[TrackedEmail]:
    """The CRM's e-mails that answer ``questions``, added to the local index. Raises
    CrmUnavailable / CrmAuthError as the client does (the caller leaves the mail undecided)."""
    found: dict[str, TrackedEmail] = {}

    def run(terms: Sequence[str]) -> None:
        for start in range(0, len(terms), BATCH):
            rows = crm.query(
                "emails",
                select=EMAIL_COLUMNS,
                filter=" or ".join(terms[start : start + BATCH]),
                annotations=True,
            )
            for email in email_entries(correlator, rows):
                found[email.activity_id] = email

    run([term for mid in sorted(questions.message_ids) for term in _message_id_terms(mid)])
    run([f"trackingtoken eq {odata_string(t)}" for t in sorted(questions.tokens)])
    prefixes = sorted({r[:ROOT_PREFIX_CHARS] for r in questions.roots})
    run([f"startswith(conversationindex,{odata_string(p)})" for p in prefixes])
    emails = [e for e in found.values() if _answers(e, questions)]
    for email in emails:
        correlator.index.add(email)
    return emails


def _message_id_terms(key: str) -> Iterable[str]:
    """A Message-ID as stored with or without its angle brackets (both are seen)."""
    yield f"messageid eq {odata_string(key)}"
    bare = key.strip("<>")
    if bare != key:
        yield f"messageid eq {odata_string(bare)}"


def _answers(email: TrackedEmail, questions: Questions) -> bool:
    """Whether an e-mail the CRM returned really answers a question (the conversation
    prefix is wider than a root; the CRM compares strings without case)."""
    if email.message_id in questions.message_ids:
        return True
    if email.token and any(email.token.casefold() == t.casefold() for t in questions.tokens):
        return True
    return email.conversation_root in questions.roots


__all__ = ["Questions", "ask_crm", "decision_may_correlate", "unanswered"]
