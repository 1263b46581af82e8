"""The forward mailbox: users' rules forward their mail to it as attachments
(``message/rfc822``). Each attached message is the original mail: it is decided with the
forwarding user's options (the user is found by the wrapper's From address) and promoted,
owned by that user. The wrapper itself is never tracked.

Crash safety as for ``router.incoming``: a wrapper stays *undecided* until its originals are
decided and queued; an original already decided or queued is skipped on the next pass.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Sequence
from datetime import datetime

from core.crm import CrmClient
from core.crm.wire import odata_string
from core.domain.crm_settings import OrgSettings
from core.domain.model import MailRef, MessageHeader, Reason, TrackState
from core.domain.resolution import Resolver
from core.mail import parse_headers, parse_message
from core.outbox.operations import MailSession
from core.outbox.queue import Outbox
from core.store import Store
from core.sync.decisions import OPEN_STATES, DecisionPlan, Promotion, select_candidates
from router import incoming
from router.context import RouterContext

WRAPPER = Reason("forward-wrapper", "Not tracked: a forwarded wrapper (its attachment is)")
NOT_A_USER = Reason("forward-unknown", "Not tracked: not forwarded by a CRM user")


_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")


def originals(raw: bytes) -> list[bytes]:
    """The attached messages of a forwarded wrapper."""
    parsed = parse_message(raw)
    found = [a.payload() for a in parsed.attachments if a.content_type == "message/rfc822"]
    return [m for m in map(_message_bytes, found) if m is not None]


def _message_bytes(payload: bytes) -> bytes | None:
    """An attached message as bytes; some mailers send it base64-encoded (RFC 2046 says
    they must not), which the parser hands over still encoded."""
    text = payload.lstrip()
    if _HEADER_LINE.match(text):
        return text
    try:
        decoded = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return None
    return decoded if _HEADER_LINE.match(decoded) else None


def forwarding_user(crm: CrmClient, address: str) -> str | None:
    """The enabled user whose primary address is ``address``."""
    rows = crm.query(
        "systemusers",
        select=["systemuserid"],
        filter=f"internalemailaddress eq {odata_string(address)} and isdisabled eq false",
        top=1,
    )
    row = next(iter(rows), None)
    return str(row["systemuserid"]).lower() if row else None


def process(
    ctx: RouterContext, store: Store, session: MailSession, resume_after: datetime | None = None
) -> None:
    """Sync the forward mailbox and track what its new wrappers carry (``resume_after``: as
    :func:`router.incoming.sync_inbox`)."""
    incoming.sync_inbox(store, session.backend(), resume_after=resume_after)
    wrappers = incoming.undecided(store)
    if not wrappers:
        return
    org = incoming.org_settings(ctx.crm)
    with Store.open(ctx.address_book_path) as shared:
        book = incoming.address_book(ctx.crm, shared)
        for wrapper in wrappers:
            reason = _unwrap(ctx.crm, store, session, wrapper, book, org)
            store.tracking.set_state(wrapper.message_id, TrackState.NOT_TRACKED, reason=reason)


def _unwrap(
    crm: CrmClient,
    store: Store,
    session: MailSession,
    wrapper: MessageHeader,
    book: Resolver,
    org: OrgSettings,
) -> Reason:
    """Decide and queue the wrapper's originals for its user; the wrapper's own reason."""
    user = forwarding_user(crm, wrapper.sender.email) if wrapper.sender else None
    if user is None:
        return NOT_A_USER
    attached = originals(session.fetch(wrapper.ref))
    headers = [
        parse_headers(raw, MailRef(wrapper.ref.folder, f"{wrapper.ref.uid}#{n}"))
        for n, raw in enumerate(attached)
    ]
    mime = {h.message_id: raw for h, raw in zip(headers, attached, strict=True)}
    fresh = _not_decided(store, headers)
    if fresh:
        rules = incoming.decision_rules(store, incoming.user_options(crm, user), org, book)
        plan = _with_mime(incoming.decide(store, crm, fresh, rules), mime)
        incoming.apply_plan(store, plan, owner_id=user)
    return WRAPPER


def _not_decided(store: Store, headers: Sequence[MessageHeader]) -> list[MessageHeader]:
    outbox = Outbox(store)
    states = {h.message_id: store.tracking.state_of(h.message_id) for h in headers}
    queued = {mid for mid, s in states.items() if s in OPEN_STATES and outbox.pending_for(mid)}
    return select_candidates([], headers, states, queued)


def _with_mime(plan: DecisionPlan, mime: dict[str, bytes]) -> DecisionPlan:
    """Promotions carry the original's bytes (it is not a message of the mailbox)."""

    def attach(action: object) -> object:
        if isinstance(action, Promotion):
            promote = dataclasses.replace(action.promote, mime=mime[action.message_id])
            return dataclasses.replace(action, promote=promote)
        return action

    return DecisionPlan(tuple(attach(a) for a in plan.actions))  # type: ignore[misc]


__all__ = ["forwarding_user", "originals", "process"]
