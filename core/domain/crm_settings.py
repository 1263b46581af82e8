"""Organisation and user settings that drive correlation and automatic tracking.

Defaults are the CRM's own (reference ``dataverse-web-api.md`` sections 6 and 7), so that a
Trackbox talking to an unconfigured organisation behaves like Dynamics would. ``from_crm`` reads
the Web API attribute names of ``organizations`` and ``usersettingscollection`` rows; unknown
attributes are ignored, wrong types raise :class:`SettingsError` naming the key and the value.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.domain.model import RecordRef

#: The CRM's default ``hashfilterkeywords``: strips leading ``RE:``, ``FW: RE:`` and the like.
DEFAULT_HASH_FILTER_KEYWORDS = r"^[\s]*([\w]+\s?:[\s]*)+"

#: ``maxuploadfilesize`` default: 5,120 KB (the UI default).
DEFAULT_MAX_UPLOAD_BYTES = 5_120 * 1024

# Values of ``maxuploadfilesize`` below this are read as kilobytes: the stored unit is not
# documented (bytes is likely), and no organisation limits uploads to less than 64 KiB.
_KB_THRESHOLD = 65_536


class SettingsError(ValueError):
    """A CRM setting has a value of the wrong type or outside its documented range."""

    def __init__(self, key: str, value: object, expected: str) -> None:
        super().__init__(f"Setting {key!r} has value {value!r}. {expected}")
        self.key = key
        self.value = value
        self.expected = expected


@dataclass(frozen=True, slots=True)
class TrackingTokenSettings:
    """How tracking tokens look: ``<prefix><0><user number><counter>``, e.g. ``CRM:0001001``.

    ``old_prefixes`` are earlier prefixes from the organisation's history list: tokens with them
    are still recognised in replies, new tokens use ``prefix``.
    """

    prefix: str = "CRM:"
    base: int = 0
    user_digits: int = 3
    counter_digits: int = 3
    old_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= len(self.prefix) <= 20:
            raise SettingsError("trackingprefix", self.prefix, "Expected 1 to 20 characters.")
        if not 0 <= self.base <= 2_147_483_647:
            raise SettingsError("trackingtokenidbase", self.base, "Expected 0 to 2147483647.")
        if not 1 <= self.user_digits <= 10:
            raise SettingsError("trackingtokeniddigits", self.user_digits, "Expected 1 to 10.")
        if not 1 <= self.counter_digits <= 10:
            raise SettingsError(
                "maximumtrackingnumber", self.counter_digits, "Expected 1 to 10 counter digits."
            )

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Current prefix first, then the older ones still recognised."""
        return (self.prefix, *(p for p in self.old_prefixes if p and p != self.prefix))


class IncomingFilter(enum.IntEnum):
    """``usersettings.incomingemailfilteringmethod``: which incoming mail is tracked."""

    ALL = 0
    RESPONSES_TO_CRM = 1
    FROM_LEADS_CONTACTS_ACCOUNTS = 2
    FROM_EMAIL_ENABLED_RECORDS = 3
    NONE = 4


class ResolutionPolicy(enum.StrEnum):
    """How an address that matches CRM records is linked.

    ``ALL_MATCHES`` is Dynamics: recipients link to every match, the sender to the first match in
    the CRM's entity order. ``UNIQUE_SENDER`` links a sender only when exactly one person record
    matches; otherwise the mailbox owner is used and the mail is flagged for review.
    """

    ALL_MATCHES = "all_matches"
    UNIQUE_SENDER = "unique_sender"


class AutoCreate(enum.StrEnum):
    """ "Automatically create records" for unknown senders of tracked mail."""

    NONE = "none"
    CONTACT = "contact"
    LEAD = "lead"


@dataclass(frozen=True, slots=True)
class OrgSettings:
    """The organisation's e-mail correlation settings (``organizations`` row).

    The four ``correlate_*`` switches each turn one correlation step on or off beneath the
    master switch ``correlation_enabled``; ``token_only`` (``tbx_tokenonlycorrelation``) is the
    privacy mode in which only a tracking token correlates.
    """

    correlation_enabled: bool = True
    correlate_in_reply_to: bool = True
    correlate_tracking_token: bool = True
    correlate_conversation_index: bool = True
    smart_matching: bool = False
    token_only: bool = False
    tokens: TrackingTokenSettings = field(default_factory=TrackingTokenSettings)
    hash_filter_keywords: str = DEFAULT_HASH_FILTER_KEYWORDS
    hash_max_count: int = 20
    hash_delta_subject_count: int = 0
    hash_min_address_count: int = 2
    ignore_internal_email: bool = False
    unresolve_if_multiple_match: bool = False
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: Problems met while reading the settings that were recovered from (shown to the admin).
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_crm(cls, row: Mapping[str, Any]) -> OrgSettings:
        """Read an ``organizations`` row as returned by the Web API.

        :raises SettingsError: a known attribute has the wrong type or range.
        """
        warnings: list[str] = []
        prefixes = _prefix_history(row.get("trackingprefix"))
        digits_max = row.get("maximumtrackingnumber")
        counter_digits = 3
        if digits_max is not None:
            counter_digits = len(str(_int(row, "maximumtrackingnumber", 999, minimum=1)))
        tokens = TrackingTokenSettings(
            prefix=prefixes[0] if prefixes else "CRM:",
            base=_int(row, "trackingtokenidbase", 0, minimum=0),
            user_digits=_int(row, "trackingtokeniddigits", 3, minimum=1),
            counter_digits=counter_digits,
            old_prefixes=tuple(prefixes[1:]),
        )
        keywords = row.get("hashfilterkeywords")
        if keywords is None or keywords == "":
            keywords = DEFAULT_HASH_FILTER_KEYWORDS
        elif not isinstance(keywords, str):
            raise SettingsError("hashfilterkeywords", keywords, "Expected a regular expression.")
        else:
            try:
                re.compile(keywords)
            except re.error as exc:
                warnings.append(
                    f"hashfilterkeywords {keywords!r} is not a valid regular "
                    f"expression here ({exc}); the CRM's default is used instead."
                )
                keywords = DEFAULT_HASH_FILTER_KEYWORDS
        upload = _int(row, "maxuploadfilesize", DEFAULT_MAX_UPLOAD_BYTES, minimum=0)
        if 0 < upload < _KB_THRESHOLD:
            upload *= 1024
        return cls(
            correlation_enabled=_bool(row, "emailcorrelationenabled", True),
            correlate_in_reply_to=_bool(row, "tbx_correlateinreplyto", True),
            correlate_tracking_token=_bool(row, "tbx_correlatetrackingtoken", True),
            correlate_conversation_index=_bool(row, "tbx_correlateconversationindex", True),
            smart_matching=_bool(row, "enablesmartmatching", False),
            token_only=_bool(row, "tbx_tokenonlycorrelation", False),
            tokens=tokens,
            hash_filter_keywords=keywords,
            hash_max_count=_int(row, "hashmaxcount", 20, minimum=1),
            hash_delta_subject_count=_int(row, "hashdeltasubjectcount", 0, minimum=0),
            hash_min_address_count=_int(row, "hashminaddresscount", 2, minimum=0),
            ignore_internal_email=_bool(row, "ignoreinternalemail", False),
            unresolve_if_multiple_match=_bool(row, "unresolveemailaddressifmultiplematch", False),
            max_upload_bytes=upload,
            warnings=tuple(warnings),
        )


@dataclass(frozen=True, slots=True)
class UserOptions:
    """One user's tracking options (``usersettings`` row plus Trackbox's own switches).

    ``automatic_tracking_enabled`` is the administrator's switch: off means only manual
    tracking works for this user. ``mailbox_addresses`` tell outgoing mail from incoming.
    """

    incoming_filter: IncomingFilter = IncomingFilter.RESPONSES_TO_CRM
    track_replies_to_tracked: bool = False
    auto_create: AutoCreate = AutoCreate.NONE
    automatic_tracking_enabled: bool = True
    resolution_policy: ResolutionPolicy = ResolutionPolicy.ALL_MATCHES
    mailbox_owner: RecordRef | None = None
    mailbox_addresses: tuple[str, ...] = ()

    def is_own_address(self, address_key: str) -> bool:
        """True when ``address_key`` (case-folded) is one of the mailbox's own addresses."""
        return any(address_key == a.strip().lower() for a in self.mailbox_addresses)

    @classmethod
    def from_crm(cls, row: Mapping[str, Any], **overrides: Any) -> UserOptions:
        """Read a ``usersettingscollection`` row; ``overrides`` set Trackbox-only options.

        ``autocreatecontactonpromote``: 0 none, 1 contacts, 2 leads (mapping inferred).
        Trackbox-specific attributes: ``tbx_trackreplies``, ``tbx_automatictracking``,
        ``tbx_resolutionpolicy``.

        :raises SettingsError: a known attribute has the wrong type or range.
        """
        method = _int(row, "incomingemailfilteringmethod", 1, minimum=0)
        if method > 4:
            raise SettingsError("incomingemailfilteringmethod", method, "Expected 0 to 4.")
        create = _int(row, "autocreatecontactonpromote", 0, minimum=0)
        auto = {0: AutoCreate.NONE, 1: AutoCreate.CONTACT, 2: AutoCreate.LEAD}.get(create)
        if auto is None:
            raise SettingsError("autocreatecontactonpromote", create, "Expected 0, 1 or 2.")
        policy_raw = row.get("tbx_resolutionpolicy", ResolutionPolicy.ALL_MATCHES.value)
        try:
            policy = ResolutionPolicy(policy_raw)
        except ValueError:
            raise SettingsError(
                "tbx_resolutionpolicy", policy_raw, "Expected 'all_matches' or 'unique_sender'."
            ) from None
        owner_id = row.get("systemuserid")
        values: dict[str, Any] = {
            "incoming_filter": IncomingFilter(method),
            "track_replies_to_tracked": _bool(row, "tbx_trackreplies", False),
            "auto_create": auto,
            "automatic_tracking_enabled": _bool(row, "tbx_automatictracking", True),
            "resolution_policy": policy,
            "mailbox_owner": RecordRef("systemuser", str(owner_id)) if owner_id else None,
        }
        values.update(overrides)
        return cls(**values)


def _prefix_history(value: object) -> list[str]:
    """``trackingprefix`` is a "history list" whose separator is undocumented: accept ``;``,
    ``,`` or a single prefix, current first."""
    if value is None or value == "":
        return ["CRM:"]
    if not isinstance(value, str):
        raise SettingsError("trackingprefix", value, "Expected text.")
    parts = [p.strip() for p in re.split(r"[;,]", value)]
    return [p for p in parts if p] or ["CRM:"]


def _bool(row: Mapping[str, Any], key: str, default: bool) -> bool:
    value = row.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise SettingsError(key, value, "Not a valid bool.")


def _int(row: Mapping[str, Any], key: str, default: int, *, minimum: int) -> int:
    value: object = row.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(key, value, "Not a valid integer.")
    if value < minimum:
        raise SettingsError(key, value, f"Expected at least {minimum}.")
    return value
