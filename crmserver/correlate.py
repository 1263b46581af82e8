"""E-mail correlation in the emulator, through ``core.domain.correlation`` so that the server and
the client agree on tokens, threads and smart matching (DESIGN: "crmserver reuses
core/domain/correlation.py").

The database is the correlation index: look-ups read the indexed e-mail columns
(``messageid``, ``trackingtoken``, ``baseconversationindexhash`` and the Trackbox column
``tbx_smartkey``, the subject key smart matching compares). :func:`derived_columns` keeps
those columns current whenever an e-mail is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.domain.conversation_index import parse_thread_index
from core.domain.correlation import (
    Correlation,
    CorrelationMethod,
    Correlator,
    TrackedEmail,
    message_id_keys,
    smart_match_key,
)
from core.domain.crm_settings import OrgSettings, SettingsError
from core.domain.model import Address, MailRef, MessageHeader, RecordRef
from core.domain.subjects import find_token as _find_token
from core.domain.subjects import format_token

from .entities import ENTITIES
from .errors import bad_request
from .storage import Row, Storage


def org_settings(org: Row) -> OrgSettings:
    """The ``organizations`` row (as stored) → core's OrgSettings; 400 if it is invalid."""
    ent = ENTITIES["organization"]
    api_row = {
        k: (
            bool(v)
            if k in ent.attributes and ent.attributes[k].type == "bool" and v is not None
            else v
        )
        for k, v in org.items()
    }
    try:
        return OrgSettings.from_crm(api_row)
    except SettingsError as exc:
        raise bad_request(
            f"Organisation setting '{exc.key}' has value {exc.value!r}. {exc.expected}"
        ) from exc


def find_token(subject: str | None, org: Row) -> str | None:
    """The tracking token in a subject in canonical form (any prefix of the history)."""
    return _find_token(subject or "", org_settings(org).tokens)


def make_token(org: Row, user_number: int, counter: int) -> str:
    """``<prefix>0<user number><counter>`` e.g. ``CRM:0001001``."""
    return format_token(org_settings(org).tokens, user_number, counter)


def derived_columns(org: Row, row: Row) -> Row:
    """Correlation keys stored with an e-mail: token (from the subject when it has none),
    conversation hash and the smart-matching subject key."""
    settings = org_settings(org)
    out: Row = {}
    subject = row.get("subject") or ""
    out["tbx_smartkey"] = (
        smart_match_key(
            subject,
            filter_keywords=settings.hash_filter_keywords,
            tokens=settings.tokens,
            max_words=settings.hash_max_count,
        )[:800]
        or None
    )
    if not row.get("trackingtoken"):
        out["trackingtoken"] = _find_token(subject, settings.tokens)
    index = parse_thread_index(row.get("conversationindex"))
    out["baseconversationindexhash"] = index.root_hash if index is not None else None
    return out


class SqlCorrelationIndex:
    """``core.domain.correlation.CorrelationIndex`` over the ``email`` table."""

    def __init__(
        self, storage: Storage, exclude: str | None = None, max_candidates: int = 200
    ) -> None:
        self.storage = storage
        self.exclude = exclude
        self.max_candidates = max_candidates

    def _emails(
        self, where: str, params: Sequence[Any], limit: int, order: str = "createdon, versionnumber"
    ) -> list[TrackedEmail]:
        rows = self.storage.query(
            f"SELECT activityid, regardingobjectid, regardingobjectid__type, messageid, "
            f"trackingtoken, conversationindex, tbx_smartkey, subject, senton, actualend, "
            f"createdon FROM email WHERE {where} AND activityid IS NOT ? ORDER BY {order} "
            f"LIMIT ?",
            [*params, self.exclude, limit],
        )
        addresses = self._addresses([r["activityid"] for r in rows])
        return [_tracked(r, addresses.get(r["activityid"], frozenset())) for r in rows]

    def _addresses(self, ids: list[str]) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for r in self.storage.query(
                f"SELECT activityid, addressused FROM activityparty WHERE activityid IN "
                f"({','.join('?' * len(chunk))}) AND addressused IS NOT NULL",
                chunk,
            ):
                out.setdefault(r["activityid"], set()).add(r["addressused"].strip().lower())
        return {k: frozenset(v) for k, v in out.items()}

    def by_message_id(self, message_id: str) -> TrackedEmail | None:
        bare = message_id.strip("<>")
        found = self._emails("messageid IN (?, ?)", [message_id, bare], 1)
        return found[0] if found else None

    def by_token(self, token: str) -> TrackedEmail | None:
        found = self._emails("trackingtoken = ? COLLATE NOCASE", [token], 1)
        return found[0] if found else None

    def by_conversation_root(self, root: str) -> Sequence[TrackedEmail]:
        index = parse_thread_index(root)
        if index is None:
            return []
        same_hash = self._emails(
            "baseconversationindexhash = ?",
            [index.root_hash],
            self.max_candidates,
            "createdon DESC",
        )
        return [e for e in same_hash if e.conversation_root == index.root]

    def by_smart_key(self, key: str) -> Sequence[TrackedEmail]:
        return self._emails("tbx_smartkey = ?", [key], self.max_candidates, "createdon DESC")

    def add(self, email: TrackedEmail) -> None:
        """Nothing to do: the e-mail row itself is the index entry."""

    def remove(self, activity_id: str) -> None:
        """Nothing to do: deleting the e-mail row removes it."""


def _tracked(row: Row, addresses: frozenset[str]) -> TrackedEmail:
    regarding = None
    if row.get("regardingobjectid"):
        regarding = RecordRef(row.get("regardingobjectid__type") or "", row["regardingobjectid"])
    index = parse_thread_index(row.get("conversationindex"))
    when = row.get("senton") or row.get("actualend") or row.get("createdon")
    sent_on = None
    if when:
        try:
            sent_on = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
        except ValueError:
            sent_on = None
    return TrackedEmail(
        activity_id=row["activityid"],
        regarding=regarding,
        message_id=next(iter(message_id_keys(row.get("messageid"))), None),
        token=row.get("trackingtoken"),
        conversation_index=row.get("conversationindex"),
        conversation_root=index.root if index is not None else None,
        smart_key=row.get("tbx_smartkey") or "",
        addresses=addresses,
        subject=row.get("subject") or "",
        sent_on=sent_on,
    )


@dataclass(frozen=True)
class Match:
    """A correlation result in the CRM's terms: the stored e-mail row and core's result."""

    email: Row
    correlation: Correlation

    @property
    def method(self) -> int:
        """The CRM's ``correlationmethod`` value."""
        return self.correlation.method.crm_value

    @property
    def sets_parent(self) -> bool:
        return self.correlation.sets_parent


def _addresses(values: Iterable[tuple[str, str]]) -> tuple[Address, ...]:
    return tuple(Address(addr, name) for name, addr in values)


def correlate(
    storage: Storage,
    org: Row,
    *,
    subject: str | None,
    in_reply_to: str | None,
    conversation_index: str | None,
    message_id: str | None = None,
    sender: tuple[str, str] | None = None,
    to: Iterable[tuple[str, str]] = (),
    cc: Iterable[tuple[str, str]] = (),
    references: Sequence[str] = (),
    exclude: str | None = None,
) -> Match | None:
    """The stored e-mail this message continues, by the organisation's rules."""
    header = MessageHeader(
        ref=MailRef("crm", message_id or ""),
        message_id=message_id or "",
        subject=subject or "",
        sender=Address(sender[1], sender[0]) if sender else None,
        to=_addresses(to),
        cc=_addresses(cc),
        thread_index=conversation_index,
        in_reply_to=in_reply_to,
        references=tuple(references),
    )
    found = Correlator(org_settings(org), SqlCorrelationIndex(storage, exclude)).correlate(header)
    if found is None:
        return None
    rows = storage.query("SELECT * FROM email WHERE activityid = ?", (found.activity.activity_id,))
    if not rows:
        return None
    return Match(rows[0], found)


__all__ = [
    "CorrelationMethod",
    "Match",
    "SqlCorrelationIndex",
    "correlate",
    "derived_columns",
    "find_token",
    "make_token",
    "org_settings",
]
