"""Automatic tracking policy: user options × organisation settings × message → Decision.

The order of the checks is the CRM's (reference sections 7 and 8): what the user asked for
(manual tracking, mail created in the CRM) wins; then the user's own exclusions (issue 17: a
party on the never-track list, a conversation the user stopped — they turn down every automatic
rule, never a manual Track); then server-side synchronisation (issue 19: when the
organisation's router processes the user's mailbox, it decides, not the desktop); then the
administrator's switch; then the filter (``incomingemailfilteringmethod``,
``ignoreinternalemail``, token-only mode); then
correlation decides the regarding record; last the size limit. Every decision carries a
:class:`~core.domain.model.Reason` a person can read and the CRM ``ReasonCode`` that
``CheckPromoteEmail`` returns. The table a user reads is ``docs/tracking-rules.md``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.domain.correlation import Correlation, Correlator, message_id_key
from core.domain.crm_settings import (
    AutoCreate,
    IncomingFilter,
    OrgSettings,
    ResolutionPolicy,
    UserOptions,
)
from core.domain.mailbox_delivery import INCOMING_BY_SERVER_TEXT
from core.domain.model import Address, Decision, MessageHeader, Reason, RecordRef
from core.domain.never_track import NeverTrack, StoppedConversations
from core.domain.resolution import (
    CUSTOMER_ENTITIES,
    Resolution,
    Resolver,
    describe_sender,
    display_name,
    resolve,
)

__all__ = [
    "AutoCreate",
    "CrmReasonCode",
    "Direction",
    "IncomingFilter",
    "NeverTrack",
    "OrgSettings",
    "ResolutionPolicy",
    "SERVER_SIDE_TEXT",
    "STOPPED_TEXT",
    "StoppedConversations",
    "TrackContext",
    "TrackReason",
    "UserOptions",
    "decide",
    "direction_of",
    "promote_response",
]


class Direction(enum.StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"

    @classmethod
    def from_crm(cls, code: int | bool | None) -> Direction | None:
        """``DirectionCode`` of CheckPromoteEmail (0 in, 1 out) or ``directioncode`` (bool)."""
        if code is None:
            return None
        return cls.OUTGOING if int(code) == 1 else cls.INCOMING


class CrmReasonCode(enum.IntEnum):
    """``ReasonCode`` of CheckIncomingEmail / CheckPromoteEmail (reference section 5)."""

    UNKNOWN = -1
    DUPLICATE = 0
    NO_CORRELATION_MATCH = 1
    CORRELATION_MATCH = 2
    NO_RECIPIENT_MATCH = 3
    INTERNAL_EMAIL_REJECT = 4
    SENDER_MATCH = 5
    ACCEPT_ALL = 6
    INVALID_SENDER = 7


class TrackReason(enum.StrEnum):
    """Stable machine codes of :attr:`Decision.reason` (the GUI and the audit log key on
    them; the text may be reworded)."""

    MANUAL = "manual"
    CREATED_IN_CRM = "created_in_crm"
    CORRELATED = "correlated"
    SENDER_RECORD = "sender_record"
    ALL_EMAIL = "all_email"
    REPLY_TO_TRACKED = "reply_to_tracked"
    ALREADY_TRACKED = "already_tracked"
    AUTOMATIC_OFF = "automatic_off"
    FILTER_NONE = "filter_none"
    INTERNAL_IGNORED = "internal_ignored"
    TOKEN_ONLY_NO_TOKEN = "token_only_no_token"
    TOKEN_UNKNOWN = "token_unknown"
    NOT_A_RESPONSE = "not_a_response"
    SENDER_NOT_CUSTOMER = "sender_not_customer"
    SENDER_NOT_IN_CRM = "sender_not_in_crm"
    OUTGOING_NOT_MARKED = "outgoing_not_marked"
    REPLY_OPTION_OFF = "reply_option_off"
    TOO_LARGE = "too_large"
    NEVER_TRACK = "never_track"
    CONVERSATION_STOPPED = "conversation_stopped"
    SERVER_SIDE_SYNC = "server_side_sync"


#: The reason of mail in a conversation the user stopped tracking.
STOPPED_TEXT = "Not tracked: you stopped tracking this conversation"


@dataclass(frozen=True, slots=True)
class TrackContext:
    """What the rules cannot see in the headers.

    ``manual``: the user pressed Track / Set Regarding, or marked the mail when sending.
    ``created_in_crm``: the e-mail activity already exists (sent from the CRM, Pending Send).
    ``direction``: ``None`` derives it (from one of the mailbox's own addresses = outgoing).
    ``attachment_bytes``: total size of the attachments, when the backend knows it.
    ``never_track`` / ``stopped``: the user's exclusions (``core.domain.never_track``).
    ``tracked_by_server``: the user's mailbox is processed by the organisation's server-side
    synchronisation (``core.domain.mailbox_delivery``), which makes the automatic decisions:
    the desktop makes none (manual Track still works).
    """

    manual: bool = False
    regarding: RecordRef | None = None
    created_in_crm: bool = False
    direction: Direction | None = None
    attachment_bytes: int | None = None
    bcc: tuple[Address, ...] = ()
    never_track: NeverTrack = NeverTrack()
    stopped: StoppedConversations = StoppedConversations()
    tracked_by_server: bool = False


#: The reason of mail the desktop leaves to server-side synchronisation (issue 19).
SERVER_SIDE_TEXT = f"{INCOMING_BY_SERVER_TEXT} (you can still track it yourself)"


@dataclass(frozen=True, slots=True)
class _Verdict:
    track: bool
    code: TrackReason
    text: str
    crm: CrmReasonCode
    regarding: RecordRef | None = None


def decide(
    message: MessageHeader,
    user_options: UserOptions,
    org_settings: OrgSettings,
    resolver: Resolver,
    correlator: Correlator,
    context: TrackContext | None = None,
) -> Decision:
    """Whether ``message`` is tracked, why, regarding what, and with which parties.

    Pure: reads the correlator's index and the resolver, changes nothing. Manual tracking and
    mail created in the CRM ignore the filters; the size limit applies to everything.
    ``correlator`` must have been built with the same ``org_settings``. A mail already in the
    index (same Message-ID) is a duplicate: not tracked again (ReasonCode 0).
    """
    ctx = context or TrackContext()
    direction = ctx.direction or direction_of(message, user_options)
    correlation = correlator.correlate(message)
    token = correlator.find_token(message)
    resolution = resolve(
        message,
        resolver,
        user_options.resolution_policy,
        user_options.mailbox_owner,
        bcc=ctx.bcc,
        unresolve_multiple=org_settings.unresolve_if_multiple_match,
    )
    verdict = _verdict(
        message,
        direction,
        ctx,
        user_options,
        org_settings,
        correlator,
        correlation,
        token,
        resolution,
    )
    dropped = False
    if verdict.track:
        verdict, dropped = _apply_size_limit(verdict, message, org_settings, ctx)
    return Decision(
        track=verdict.track,
        reason=Reason(verdict.code.value, verdict.text),
        regarding=verdict.regarding if verdict.track else None,
        parties=resolution.parties,
        needs_review=verdict.track and resolution.needs_review,
        attachments_dropped=dropped,
        queue_rules_eligible=correlation is None,
        crm_reason_code=int(verdict.crm),
        correlated_activity=correlation.activity.activity_id if correlation else None,
        correlation_method=correlation.method.value if correlation else None,
        unresolved=resolution.unresolved,
    )


def promote_response(decision: Decision) -> dict[str, object]:
    """The body of a ``CheckPromoteEmail`` / ``CheckIncomingEmail`` response."""
    return {
        "ShouldPromote": decision.track,
        "ShouldDeliver": decision.track,
        "ReasonCode": decision.crm_reason_code,
    }


def direction_of(message: MessageHeader, options: UserOptions) -> Direction:
    """Outgoing when the sender is one of the mailbox's own addresses, else incoming."""
    sender = message.sender
    if sender is not None and options.is_own_address(sender.key):
        return Direction.OUTGOING
    return Direction.INCOMING


def _verdict(
    message: MessageHeader,
    direction: Direction,
    ctx: TrackContext,
    options: UserOptions,
    org: OrgSettings,
    correlator: Correlator,
    correlation: Correlation | None,
    token: str | None,
    resolution: Resolution,
) -> _Verdict:
    inherited = correlation.regarding if correlation else None
    chosen = ctx.regarding or inherited
    if ctx.created_in_crm:
        return _Verdict(
            True, TrackReason.CREATED_IN_CRM, "Sent from the CRM", CrmReasonCode.ACCEPT_ALL, chosen
        )
    if ctx.manual:
        text = (
            "Tracked because you marked it when sending"
            if direction is Direction.OUTGOING
            else "Tracked by you"
        )
        if chosen is not None and chosen.name:
            text += f", regarding {chosen.name}"
        return _Verdict(True, TrackReason.MANUAL, text, CrmReasonCode.ACCEPT_ALL, chosen)
    existing = correlator.index.by_message_id(message_id_key(message.message_id) or "")
    if existing is not None:
        return _Verdict(
            False,
            TrackReason.ALREADY_TRACKED,
            "Already tracked in the CRM",
            CrmReasonCode.DUPLICATE,
        )
    excluded = _excluded(message, ctx, options, correlation)
    if excluded is not None:
        return excluded
    if ctx.tracked_by_server:
        return _Verdict(
            False, TrackReason.SERVER_SIDE_SYNC, SERVER_SIDE_TEXT, CrmReasonCode.UNKNOWN
        )
    if not options.automatic_tracking_enabled:
        return _Verdict(
            False,
            TrackReason.AUTOMATIC_OFF,
            "Not tracked: your administrator turned automatic tracking off "
            "for you (you can still track it yourself)",
            CrmReasonCode.UNKNOWN,
        )
    if org.token_only and token is None:
        return _Verdict(
            False,
            TrackReason.TOKEN_ONLY_NO_TOKEN,
            "Not tracked: token-only mode and no token",
            CrmReasonCode.UNKNOWN,
        )
    if direction is Direction.OUTGOING:
        return _outgoing(options, org, correlation, token)
    return _incoming(message, options, org, correlation, token, resolution)


def _excluded(
    message: MessageHeader,
    ctx: TrackContext,
    options: UserOptions,
    correlation: Correlation | None,
) -> _Verdict | None:
    """The user's own exclusions, which turn down every automatic rule."""
    found = ctx.never_track.match(message, options.mailbox_addresses, ctx.bcc)
    if found is not None:
        return _Verdict(False, TrackReason.NEVER_TRACK, found.reason_text(), CrmReasonCode.UNKNOWN)
    if ctx.stopped.contains(message, correlation):
        return _Verdict(
            False, TrackReason.CONVERSATION_STOPPED, STOPPED_TEXT, CrmReasonCode.UNKNOWN
        )
    return None


def _outgoing(
    options: UserOptions, org: OrgSettings, correlation: Correlation | None, token: str | None
) -> _Verdict:
    if correlation is not None and options.track_replies_to_tracked:
        return _Verdict(
            True,
            TrackReason.REPLY_TO_TRACKED,
            correlation.describe(),
            CrmReasonCode.CORRELATION_MATCH,
            correlation.regarding,
        )
    if correlation is not None:
        return _Verdict(
            False,
            TrackReason.REPLY_OPTION_OFF,
            "Not tracked: reply to a tracked e-mail, but your option to track replies is off",
            CrmReasonCode.UNKNOWN,
        )
    if token is not None and org.correlation_enabled:
        return _unknown_token(token)
    return _Verdict(
        False,
        TrackReason.OUTGOING_NOT_MARKED,
        "Not tracked: sent from the mail client and not marked for tracking",
        CrmReasonCode.UNKNOWN,
    )


def _incoming(
    message: MessageHeader,
    options: UserOptions,
    org: OrgSettings,
    correlation: Correlation | None,
    token: str | None,
    resolution: Resolution,
) -> _Verdict:
    method = options.incoming_filter
    if method is IncomingFilter.NONE:
        return _Verdict(
            False,
            TrackReason.FILTER_NONE,
            "Not tracked: your options track no incoming e-mail automatically",
            CrmReasonCode.UNKNOWN,
        )
    if org.ignore_internal_email and resolution.sender_internal:
        return _Verdict(
            False,
            TrackReason.INTERNAL_IGNORED,
            "Not tracked: internal mail is ignored",
            CrmReasonCode.INTERNAL_EMAIL_REJECT,
        )
    if org.token_only and correlation is None:
        assert token is not None  # _verdict has turned down token-only mail without a token
        return _unknown_token(token)
    if method is IncomingFilter.ALL:
        return _all_incoming(correlation)
    if method is IncomingFilter.RESPONSES_TO_CRM:
        return _responses_only(org, correlation, token)
    return _by_sender(message, method, correlation, resolution)


def _correlated(correlation: Correlation) -> _Verdict:
    """Tracked because it belongs to a tracked e-mail's conversation."""
    return _Verdict(
        True,
        TrackReason.CORRELATED,
        correlation.describe(),
        CrmReasonCode.CORRELATION_MATCH,
        correlation.regarding,
    )


def _all_incoming(correlation: Correlation | None) -> _Verdict:
    """The filter "all incoming e-mail": tracked, regarding what a correlation gives."""
    if correlation is not None:
        return _correlated(correlation)
    return _Verdict(
        True,
        TrackReason.ALL_EMAIL,
        "Tracked: your options track all incoming e-mail",
        CrmReasonCode.ACCEPT_ALL,
    )


def _responses_only(
    org: OrgSettings, correlation: Correlation | None, token: str | None
) -> _Verdict:
    """The filter "responses to CRM e-mail": tracked only when it correlates."""
    if correlation is not None:
        return _correlated(correlation)
    if token is not None and org.correlation_enabled:
        return _unknown_token(token)
    return _Verdict(
        False,
        TrackReason.NOT_A_RESPONSE,
        "Not tracked: not a reply to a tracked e-mail",
        CrmReasonCode.UNKNOWN,
    )


def _by_sender(
    message: MessageHeader,
    method: IncomingFilter,
    correlation: Correlation | None,
    resolution: Resolution,
) -> _Verdict:
    """Sender-based options track by who sent the mail, not by thread (the CRM's wording:
    "only if they originate from someone with a lead, contact or account record")."""
    allowed = CUSTOMER_ENTITIES if method is IncomingFilter.FROM_LEADS_CONTACTS_ACCOUNTS else None
    matches = [r for r in resolution.sender_matches if allowed is None or r.entity in allowed]
    regarding = correlation.regarding if correlation else None
    if matches:
        text = describe_sender(message.sender, matches)
        if correlation is not None:
            said = correlation.describe()
            text += f"; {said[0].lower()}{said[1:]}"
        return _Verdict(
            True, TrackReason.SENDER_RECORD, text, CrmReasonCode.SENDER_MATCH, regarding
        )
    who = display_name(message.sender)
    if allowed is not None:
        return _Verdict(
            False,
            TrackReason.SENDER_NOT_CUSTOMER,
            f"Not tracked: sender {who} is not a CRM lead, contact or account",
            CrmReasonCode.INVALID_SENDER,
        )
    return _Verdict(
        False,
        TrackReason.SENDER_NOT_IN_CRM,
        f"Not tracked: sender {who} is not a CRM record",
        CrmReasonCode.INVALID_SENDER,
    )


def _unknown_token(token: str) -> _Verdict:
    return _Verdict(
        False,
        TrackReason.TOKEN_UNKNOWN,
        f"Not tracked: tracking token {token} matches no tracked e-mail",
        CrmReasonCode.NO_CORRELATION_MATCH,
    )


def _apply_size_limit(
    verdict: _Verdict, message: MessageHeader, org: OrgSettings, ctx: TrackContext
) -> tuple[_Verdict, bool]:
    limit = org.max_upload_bytes
    if limit <= 0 or message.size <= limit:
        return verdict, False
    # Attachment sizes unknown: assume the attachments are what makes the mail big.
    rest = message.size - ctx.attachment_bytes if ctx.attachment_bytes is not None else 0
    if message.has_attachments and rest <= limit:
        text = (
            f"{verdict.text}; attachments left out: the e-mail ({_mb(message.size)}) is "
            f"over the organisation's limit of {_mb(limit)}"
        )
        return _Verdict(True, verdict.code, text, verdict.crm, verdict.regarding), True
    return _Verdict(
        False,
        TrackReason.TOO_LARGE,
        f"Not tracked: the e-mail ({_mb(message.size)}) is over the "
        f"organisation's limit of {_mb(limit)}",
        CrmReasonCode.UNKNOWN,
    ), False


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
