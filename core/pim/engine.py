"""One two-way synchronisation pass between a CRM side and a mailbox side, for any kind
(contacts, appointments, tasks) — issue 20. The shape follows vdirsyncer's ``sync``: pull
what changed on both sides since their tokens, pair, compare each field with the last synced
value (three-way), write, and keep the status in a SQLite file (``core.pim.state``).

Pairing, in order: the stored pair; a new mailbox item carrying the CRM id in its own data
(``CRM_ID_FIELDS``: vCard/iCalendar ``X-TRACKBOX-CRMID``); for contacts, the same primary
e-mail address (``emailaddress1``), so that a contact deleted and recreated on either side
pairs again instead of duplicating. A mailbox item that is neither paired nor marked
``TRACK_FIELD`` ("Track in CRM") is personal and never leaves the mailbox.

Merge, per mapped field (``core.pim.fields``): a side's value counts as changed when it
differs from the stored base. Two-way: the changed side's value goes to the other. **Conflict
rule: when both sides changed a two-way field to different values, the CRM's value wins**
(the CRM is the shared record others see) and the mailbox's value is stored as a
:class:`~core.pim.state.Conflict` the user sees and may re-apply (:meth:`PimEngine.reapply`):
never silently lost. CRM → mailbox fields: a CRM change overwrites the mailbox value; a
mailbox edit stays in the mailbox until the CRM changes it. Mailbox → CRM: the mirror image.
Not synchronised: untouched.

Deletions propagate only for items the engine itself created on the other side (``created``
in the pair): the CRM record deleted (or out of the user's filter) deletes the mailbox item
the engine made for it; otherwise the item stays as a personal one and loses its CRM id. A
mailbox item deleted deletes the CRM record only if the engine created that record from it;
otherwise the pair is *detached* (the CRM record stays and is not pushed back; a new item with
the same e-mail or CRM id re-attaches it).

Exactly once: a create is journaled first — the new item's key is chosen
(:class:`~core.pim.sides.KeyedCreate`) and written as a ``pending`` pair — and created at that
key (an upsert), then the pair is marked synced. A crash between the two writes leaves the
pending pair: the next pass completes it at the same key. Tokens are saved only at the end of
a pass, so an interrupted pass is replayed; the three-way merge makes a replayed update a
no-op. A :class:`~core.pim.sides.VersionConflict` on a write re-reads that item and merges
again (``retries`` times).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.pim.fields import FieldMap
from core.pim.merge import Merged, merge, norm
from core.pim.sides import (
    CRM_ID_FIELDS,
    TRACK_FIELD,
    FindsByEmail,
    KeyedCreate,
    PimKind,
    PimRecord,
    PimSide,
    SideChange,
    SideError,
    VersionConflict,
)
from core.pim.state import Pair, PimState

log = logging.getLogger("trackbox.pim")

CRM, MAILBOX = "crm", "mailbox"
#: The column pairing contacts by e-mail address.
PRIMARY_EMAIL = "emailaddress1"
#: Creates journaled per transaction (the pending pairs, then their "synced" marks).
CREATE_CHUNK = 200


@dataclass(slots=True)
class PassResult:
    """What one pass did (counts) and the items that failed (key, error) without stopping it."""

    kind: PimKind
    to_mailbox: int = 0
    to_crm: int = 0
    created_in_mailbox: int = 0
    created_in_crm: int = 0
    deleted_in_mailbox: int = 0
    deleted_in_crm: int = 0
    conflicts: int = 0
    crm_changes: int = 0
    mailbox_changes: int = 0
    crm_full: bool = False
    mailbox_full: bool = False
    errors: list[tuple[str, SideError]] = field(default_factory=list)


class _Stale(VersionConflict):
    """A write refused for a stale version, naming the side to read again."""

    def __init__(self, side: str, cause: VersionConflict) -> None:
        super().__init__(f"{side}: {cause}", retryable=cause.retryable)
        self.side = side


class PimEngine:
    """Two sides of one kind, their field map and the pairing state. ``crm`` is the CRM side,
    ``mailbox`` the mailbox side (both :class:`~core.pim.sides.PimSide`). One engine per
    thread (the state's connection is per thread)."""

    def __init__(
        self,
        kind: PimKind,
        crm: PimSide,
        mailbox: PimSide,
        fields: FieldMap,
        state: PimState,
        *,
        retries: int = 3,
        crash_hook: Callable[[str], None] | None = None,
    ) -> None:
        if crm.kind is not kind or mailbox.kind is not kind or fields.kind is not kind:
            raise ValueError(f"sides and field map must all be of kind {kind}")
        self.kind = kind
        self.crm = crm
        self.mailbox = mailbox
        self.fields = fields
        self.state = state
        self.retries = retries
        self.id_field = CRM_ID_FIELDS[kind]
        #: Called with a step name between writes (tests simulate a crash there).
        self._hook = crash_hook or (lambda step: None)

    # -- the pass ----------------------------------------------------------------------------

    def run(self) -> PassResult:
        """One incremental pass (a full one when a side has no valid token). Raises what a
        side raises for the whole side (network, auth); an item a side refuses is recorded
        in ``errors`` and the pass goes on."""
        result = PassResult(self.kind)
        self._recover(result)
        crm_page = self.crm.changes(self.state.token(self.kind, CRM))
        mailbox_page = self.mailbox.changes(self.state.token(self.kind, MAILBOX))
        result.crm_changes, result.crm_full = len(crm_page.changes), crm_page.full
        result.mailbox_changes, result.mailbox_full = len(mailbox_page.changes), mailbox_page.full
        mailbox_changes = {c.key: c for c in mailbox_page.changes}
        # Paired before this pass: a full listing that misses one of these means it is gone
        # (items this pass creates are not in the listings it started from).
        crm_before = self.state.keys(self.kind, CRM) if crm_page.full else set()
        mailbox_before = self.state.keys(self.kind, MAILBOX) if mailbox_page.full else set()
        self._remember_seen(mailbox_page.changes, full=mailbox_page.full)
        handled: set[str] = set()
        creates: list[SideChange] = []
        for change in crm_page.changes:
            self._guard(
                result,
                change.key,
                self._crm_change,
                change,
                mailbox_changes,
                handled,
                creates,
                result,
            )
        if crm_page.full:
            listed = {c.key for c in crm_page.changes}
            for key in crm_before - listed:
                self._guard(
                    result,
                    key,
                    self._crm_change,
                    SideChange(key, None),
                    {},
                    handled,
                    creates,
                    result,
                )
        self._create_in_mailbox(creates, result)
        for change in mailbox_page.changes:
            if change.key not in handled:
                self._guard(result, change.key, self._mailbox_change, change, result)
        if mailbox_page.full:
            listed = set(mailbox_changes)
            for key in mailbox_before - listed:
                self._guard(result, key, self._mailbox_change, SideChange(key, None), result)
        with self.state.batch():
            self.state.save_token(self.kind, CRM, crm_page.token)
            self.state.save_token(self.kind, MAILBOX, mailbox_page.token)
        return result

    def _guard(self, result: PassResult, key: str, step: Callable[..., None], *args: Any) -> None:
        """One item's step; a refusal of this item is recorded and the pass goes on."""
        try:
            step(*args)
        except SideError as exc:
            # Still stale after the retries, or refused for good: this item waits; the rest
            # goes on. A side that is away (retryable) stops the pass.
            if exc.retryable and not isinstance(exc, VersionConflict):
                raise
            log.warning("%s %s refused: %s", self.kind, key, exc)
            result.errors.append((key, exc))

    def _remember_seen(self, changes: Sequence[SideChange], *, full: bool) -> None:
        with self.state.batch():
            if full:
                self.state.forget_seen(self.kind)
            self.state.see(
                self.kind,
                [
                    (c.key, self._email(c.record.fields), _text(c.record.fields.get(self.id_field)))
                    for c in changes
                    if c.record is not None
                ],
            )
            self.state.unsee(self.kind, [c.key for c in changes if c.record is None])

    def _email(self, fields: Mapping[str, Any]) -> str | None:
        if self.kind is not PimKind.CONTACT:
            return None
        return _text(fields.get(PRIMARY_EMAIL))

    # -- CRM changes -------------------------------------------------------------------------

    def _crm_change(
        self,
        change: SideChange,
        mailbox_changes: Mapping[str, SideChange],
        handled: set[str],
        creates: list[SideChange],
        result: PassResult,
    ) -> None:
        pair = self.state.pair_by_crm(self.kind, change.key)
        if change.record is None:
            if pair is not None:
                if pair.mailbox_key is not None:
                    handled.add(pair.mailbox_key)  # its listed state predates what we do here
                self._crm_gone(pair, result)
            return
        if pair is None:
            partner = self._mailbox_partner(change, mailbox_changes)
            if partner is None:
                creates.append(change)
                return
            handled.add(partner.key)
            pair = Pair(self.kind, change.key, partner.key, change.version, partner.version)
            self._merge(pair, change, partner, result)
            return
        if pair.status == "detached":
            return  # the user deleted its mailbox item: not pushed back
        if pair.status == "pending":
            return  # completed by _recover at the start of the pass
        mine = mailbox_changes.get(pair.mailbox_key or "")
        if mine is not None:
            handled.add(mine.key)
            if mine.record is None:
                self._mailbox_gone(pair, result)
                return
        self._merge(pair, change, mine, result)

    def _mailbox_partner(
        self, change: SideChange, mailbox_changes: Mapping[str, SideChange]
    ) -> SideChange | None:
        """An unpaired mailbox item for a new CRM record: one carrying its id, else (contacts)
        one with the same primary e-mail address."""
        candidates = self.state.seen_with(self.kind, crm_id=change.key)
        email = self._email(change.record.fields) if change.record else None
        if email:
            candidates += self.state.seen_with(self.kind, email=email)
        for key in candidates:
            if self.state.pair_by_mailbox(self.kind, key) is not None:
                continue
            found = mailbox_changes.get(key) or self.mailbox.get(key)
            if found is not None and found.record is not None:
                return found
        return None

    def _crm_gone(self, pair: Pair, result: PassResult) -> None:
        """The CRM record was deleted or left the filter."""
        if pair.mailbox_key is not None and pair.status != "detached":
            if pair.created == MAILBOX:
                try:
                    self.mailbox.delete(pair.mailbox_key, pair.mailbox_version or None)
                    result.deleted_in_mailbox += 1
                except VersionConflict:
                    self._untrack(pair)  # edited in the mailbox meanwhile: keep the edit
            else:
                self._untrack(pair)
        self.state.drop_pair(self.kind, pair.crm_key)

    def _untrack(self, pair: Pair) -> None:
        """The mailbox item stays, as a personal one: it no longer carries the CRM id."""
        assert pair.mailbox_key is not None
        current = self.mailbox.get(pair.mailbox_key)
        if current is None or current.record is None:
            return
        fields = {self.id_field: None, TRACK_FIELD: False}
        self.mailbox.put(pair.mailbox_key, PimRecord(self.kind, fields), current.version)

    # -- mailbox changes ---------------------------------------------------------------------

    def _mailbox_change(self, change: SideChange, result: PassResult) -> None:
        pair = self.state.pair_by_mailbox(self.kind, change.key)
        if change.record is None:
            if pair is not None:
                self._mailbox_gone(pair, result)
            return
        if pair is not None:
            if pair.status == "synced":
                self._merge(pair, None, change, result)
            return
        fields = change.record.fields
        carried = _text(fields.get(self.id_field))
        if carried:
            known = self.state.pair_by_crm(self.kind, carried)
            if known is None or known.status == "detached":
                crm_now = self.crm.get(carried)
                if crm_now is not None and crm_now.record is not None:
                    base = known.base if known is not None else {}
                    pair = Pair(
                        self.kind, carried, change.key, crm_now.version, change.version, base
                    )
                    self._merge(pair, crm_now, change, result)
                    return
                if known is None:
                    # Its CRM record was deleted: the item stays personal, not re-created.
                    self._untrack(Pair(self.kind, carried, change.key))
                    return
            elif known.mailbox_key != change.key:
                return  # a copy of an item that is paired already: left alone
        if not fields.get(TRACK_FIELD):
            return  # personal: never leaves the mailbox
        self._track(change, result)

    def _track(self, change: SideChange, result: PassResult) -> None:
        """A mailbox item marked Track in CRM: pair it with the CRM record with its e-mail
        address if there is one, else create that record."""
        assert change.record is not None
        email = self._email(change.record.fields)
        if email and isinstance(self.crm, FindsByEmail):
            found = self.crm.find_by_email(email)
            if found is not None and found.record is not None:
                known = self.state.pair_by_crm(self.kind, found.key)
                if known is None or known.status == "detached":
                    base = known.base if known is not None else {}
                    pair = Pair(
                        self.kind, found.key, change.key, found.version, change.version, base
                    )
                    self._merge(pair, found, change, result)
                    return
        self._create_in_crm(change, result)

    def _mailbox_gone(self, pair: Pair, result: PassResult) -> None:
        if pair.created == CRM:
            try:
                self.crm.delete(pair.crm_key, pair.crm_version or None)
            except VersionConflict:
                pass  # changed in the CRM meanwhile: keep it, unpaired
            else:
                result.deleted_in_crm += 1
            self.state.drop_pair(self.kind, pair.crm_key)
            return
        pair.mailbox_key, pair.mailbox_version, pair.status = None, "", "detached"
        self.state.save_pair(pair)

    # -- merging and writing -----------------------------------------------------------------

    def _merge(
        self,
        pair: Pair,
        crm: SideChange | None,
        mailbox: SideChange | None,
        result: PassResult,
    ) -> None:
        """Merge one pair and write both sides; on a stale version re-read that side and
        merge again."""
        for attempt in range(self.retries + 1):
            try:
                self._merge_once(pair, crm, mailbox, result)
                return
            except _Stale as exc:
                if attempt == self.retries:
                    raise
                crm, mailbox = self._reread(pair, crm, mailbox, exc.side == CRM)

    def _reread(
        self, pair: Pair, crm: SideChange | None, mailbox: SideChange | None, crm_side: bool
    ) -> tuple[SideChange | None, SideChange | None]:
        if crm_side:
            crm = self.crm.get(pair.crm_key)
            if crm is not None:
                pair.crm_version = crm.version
        else:
            assert pair.mailbox_key is not None
            mailbox = self.mailbox.get(pair.mailbox_key)
            if mailbox is not None:
                pair.mailbox_version = mailbox.version
        return crm, mailbox

    def _merge_once(
        self,
        pair: Pair,
        crm: SideChange | None,
        mailbox: SideChange | None,
        result: PassResult,
    ) -> None:
        if crm is not None:
            pair.crm_version = crm.version or pair.crm_version
        if mailbox is not None:
            pair.mailbox_version = mailbox.version or pair.mailbox_version
        crm_fields = crm.record.fields if crm is not None and crm.record is not None else None
        mb_fields = (
            mailbox.record.fields if mailbox is not None and mailbox.record is not None else None
        )
        merged = merge(self.fields, pair.base, crm_fields, mb_fields)
        if merged.crm:
            try:
                _, pair.crm_version = self.crm.put(
                    pair.crm_key, PimRecord(self.kind, merged.crm), pair.crm_version or None
                )
            except VersionConflict as exc:
                raise _Stale(CRM, exc) from exc
            result.to_crm += 1
            self._hook("between-writes")
        assert pair.mailbox_key is not None
        to_mailbox = dict(merged.mailbox)
        if mb_fields is not None and _text(mb_fields.get(self.id_field)) != pair.crm_key:
            to_mailbox[self.id_field] = pair.crm_key  # the item carries its CRM id
        if to_mailbox:
            try:
                _, pair.mailbox_version = self.mailbox.put(
                    pair.mailbox_key, PimRecord(self.kind, to_mailbox), pair.mailbox_version or None
                )
            except VersionConflict as exc:
                raise _Stale(MAILBOX, exc) from exc
            if merged.mailbox:
                result.to_mailbox += 1
        with self.state.batch():
            for name, kept, lost, base in merged.conflicts:
                self.state.add_conflict(pair, name, kept=kept, lost=lost, base=base, winner=CRM)
            result.conflicts += len(merged.conflicts)
            pair.base = merged.base
            pair.status = "synced"
            self.state.save_pair(pair)

    # -- creates (journaled) -----------------------------------------------------------------

    def _create_in_mailbox(self, changes: Sequence[SideChange], result: PassResult) -> None:
        """New CRM records in the filter: journal the mailbox keys, create, mark synced."""
        for start in range(0, len(changes), CREATE_CHUNK):
            chunk = [c for c in changes[start : start + CREATE_CHUNK] if c.record is not None]
            pairs = []
            with self.state.batch():
                for change in chunk:
                    pair = Pair(
                        self.kind,
                        change.key,
                        self._new_key(self.mailbox),
                        change.version,
                        created=MAILBOX,
                        status="pending",
                    )
                    self.state.save_pair(pair)
                    pairs.append(pair)
            done = []
            for pair, change in zip(pairs, chunk, strict=True):
                assert change.record is not None
                try:
                    self._finish_mailbox_create(pair, change.record.fields)
                except SideError as exc:
                    if exc.retryable:
                        raise
                    result.errors.append((change.key, exc))
                    continue
                done.append(pair)
                self._hook("between-writes")
            with self.state.batch():
                for pair in done:
                    self.state.save_pair(pair)
            result.created_in_mailbox += len(done)

    def _finish_mailbox_create(self, pair: Pair, crm_fields: Mapping[str, Any]) -> None:
        """Create (or complete) the mailbox item of a pending pair; the pair is updated, not
        saved."""
        merged = merge(self.fields, {}, crm_fields, None)
        record = {**merged.mailbox, self.id_field: pair.crm_key}
        pair.mailbox_key, pair.mailbox_version = self._create(
            self.mailbox, pair.mailbox_key, record
        )
        pair.base, pair.status = merged.base, "synced"

    def _create_in_crm(self, change: SideChange, result: PassResult) -> None:
        """A tracked mailbox item without a CRM record: journal the CRM id, create, then
        write the id into the mailbox item."""
        assert change.record is not None
        pair = Pair(
            self.kind,
            self._new_key(self.crm) or f"pending:{change.key}",
            change.key,
            mailbox_version=change.version,
            created=CRM,
            status="pending",
        )
        self.state.save_pair(pair)
        self._finish_crm_create(pair, change.record.fields)
        self.state.save_pair(pair)
        result.created_in_crm += 1

    def _finish_crm_create(self, pair: Pair, mailbox_fields: Mapping[str, Any]) -> None:
        merged = merge(self.fields, {}, None, mailbox_fields)
        if pair.crm_key.startswith("pending:"):  # the CRM side chooses its ids
            self.state.drop_pair(self.kind, pair.crm_key)
            pair.crm_key, pair.crm_version = self._create(self.crm, None, merged.crm)
            self.state.save_pair(pair)
        else:
            pair.crm_key, pair.crm_version = self._create(self.crm, pair.crm_key, merged.crm)
        self._hook("between-writes")
        assert pair.mailbox_key is not None
        pair.mailbox_version = self.mailbox.put(
            pair.mailbox_key,
            PimRecord(self.kind, {self.id_field: pair.crm_key, TRACK_FIELD: True}),
            None,
        )[1]
        pair.base, pair.status = merged.base, "synced"

    def _new_key(self, side: PimSide) -> str | None:
        """The key a create will use, or None when the side chooses it (no
        :class:`KeyedCreate`: a crash between its create and the pair's save is then healed
        by the CRM id the mailbox item carries, see ``_mailbox_partner``)."""
        return side.new_key() if isinstance(side, KeyedCreate) else None

    def _create(self, side: PimSide, key: str | None, fields: Mapping[str, Any]) -> tuple[str, str]:
        record = PimRecord(self.kind, dict(fields))
        if key is not None and isinstance(side, KeyedCreate):
            return key, side.create_at(key, record)
        return side.put(None, record, None)

    def _recover(self, result: PassResult) -> None:
        """Complete the creates a crash interrupted (pending pairs), at their chosen keys."""
        for pair in self.state.pairs(self.kind, "pending"):
            try:
                if pair.mailbox_key is None or pair.crm_key.startswith("pending:"):
                    # Created at a key the side chose: the item carries its partner's id
                    # and pairs again from the listing.
                    self.state.drop_pair(self.kind, pair.crm_key)
                    continue
                if pair.created == MAILBOX:
                    crm = self.crm.get(pair.crm_key)
                    if crm is None or crm.record is None:
                        self._abandon(pair, self.mailbox, pair.mailbox_key)
                        continue
                    self._finish_mailbox_create(pair, crm.record.fields)
                    result.created_in_mailbox += 1
                else:
                    assert pair.mailbox_key is not None
                    mb = self.mailbox.get(pair.mailbox_key)
                    if mb is None or mb.record is None:
                        self._abandon(pair, self.crm, pair.crm_key)
                        continue
                    self._finish_crm_create(pair, mb.record.fields)
                    result.created_in_crm += 1
                self.state.save_pair(pair)
            except SideError as exc:
                if exc.retryable:
                    raise
                result.errors.append((pair.crm_key, exc))

    def _abandon(self, pair: Pair, side: PimSide, key: str | None) -> None:
        """The source of a pending create is gone: remove what the create may have made."""
        if key is not None and side.get(key) is not None:
            side.delete(key, None)
        self.state.drop_pair(self.kind, pair.crm_key)

    # -- conflicts -----------------------------------------------------------------------------

    def reapply(self, conflict_id: int) -> None:
        """The user chose the value that lost: it goes to the CRM now and to the mailbox on
        the next pass (as a CRM change)."""
        conflict = self.state.conflict(conflict_id)
        if conflict is None or conflict.kind != self.kind:
            raise KeyError(conflict_id)
        current = self.crm.get(conflict.crm_key)
        version = current.version if current is not None else None
        self.crm.put(
            conflict.crm_key, PimRecord(self.kind, {conflict.field: conflict.lost}), version
        )
        self.state.set_conflict_status(conflict_id, "reapplied")

    def dismiss(self, conflict_id: int) -> None:
        self.state.set_conflict_status(conflict_id, "dismissed")


def _text(value: Any) -> str | None:
    value = norm(value)
    return str(value) if value is not None else None


__all__ = ["CRM", "MAILBOX", "Merged", "PassResult", "PimEngine", "merge", "norm"]
