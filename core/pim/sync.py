"""Runs the PIM passes of one profile: contacts, appointments, tasks (issue 20).

The sides come from the profile's mail backend: for IMAP profiles a CardDAV address book and
CalDAV calendar/task list (their URLs: ``PimSettings``, to become profile settings), for the
Maildir demo the local side kept in the profile's PIM file (``core.pim.local_side``).
Exchange and Microsoft 365 sides are not written yet: those kinds are skipped with a reason.

Appointments and tasks plug in through :func:`register_sides`: a factory per (kind, backend)
that builds the pair of sides (the activity sides live in ``core.pim.crm_activities`` and
``core.pim.caldav_side``). Contacts are registered here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.crm import CrmClient
from core.pim.carddav_side import CardDavSide
from core.pim.crm_contacts import CrmContactsSide
from core.pim.engine import PassResult, PimEngine
from core.pim.fields import Direction, FieldMap, effective_map
from core.pim.filters import PimFilter, default_filter
from core.pim.local_side import LocalSide
from core.pim.sides import PimKind, PimSide
from core.pim.state import FILE_NAME, PimState

log = logging.getLogger("trackbox.pim")

#: Mail backends (``core.config`` profile kinds) and where their PIM items live.
DAV_BACKENDS = frozenset({"imap"})
LOCAL_BACKENDS = frozenset({"maildir", "demo"})


@dataclass(frozen=True, slots=True)
class PimSettings:
    """What a profile says about PIM sync. ``carddav_url``: the address book collection;
    ``caldav_url``/``tasks_url``: the calendar and task collections; ``dav_auth``: (user,
    password) for them (from the keyring, never a file); ``filters``/``directions``: the
    user's choices per kind (defaults when absent); ``kinds``: which kinds run."""

    carddav_url: str | None = None
    caldav_url: str | None = None
    tasks_url: str | None = None
    dav_auth: tuple[str, str] | None = None
    dav_verify: bool | str = True
    filters: Mapping[PimKind, PimFilter] = field(default_factory=dict)
    directions: Mapping[PimKind, Mapping[str, Direction | str]] = field(default_factory=dict)
    admin_directions: Mapping[PimKind, Mapping[str, Direction | str]] = field(default_factory=dict)
    locked: Mapping[PimKind, Iterable[str]] = field(default_factory=dict)
    kinds: tuple[PimKind, ...] = (PimKind.CONTACT, PimKind.APPOINTMENT, PimKind.TASK)

    def field_map(self, kind: PimKind) -> FieldMap:
        return effective_map(
            kind,
            admin=self.admin_directions.get(kind),
            locked=self.locked.get(kind, ()),
            user=self.directions.get(kind),
        )

    def filter(self, kind: PimKind) -> PimFilter:
        return self.filters.get(kind) or default_filter(kind)


@dataclass(frozen=True, slots=True)
class SideContext:
    """What a side factory gets: the CRM client, the profile's PIM folder (for the local
    side), its settings, the field map and filter of the kind."""

    crm: CrmClient
    profile_dir: Path
    settings: PimSettings
    fields: FieldMap
    filter: PimFilter
    user_id: str | None = None


#: Builds (CRM side, mailbox side) for one kind and backend; raises ``SidesUnavailable``.
SideFactory = Callable[[SideContext], tuple[PimSide, PimSide]]


class SidesUnavailable(Exception):
    """This kind cannot sync for this profile (no server URL set, backend not supported)."""


_FACTORIES: dict[tuple[PimKind, str], SideFactory] = {}


def register_sides(kind: PimKind, backend: str, factory: SideFactory) -> None:
    """Make ``kind`` syncable for profiles of ``backend`` (``imap``, ``maildir``…)."""
    _FACTORIES[(kind, backend)] = factory


def _contacts_dav(ctx: SideContext) -> tuple[PimSide, PimSide]:
    if not ctx.settings.carddav_url:
        raise SidesUnavailable("no CardDAV address book is set for this profile")
    crm = CrmContactsSide(ctx.crm, ctx.fields.synced(), filter=ctx.filter, user_id=ctx.user_id)
    book = CardDavSide(
        ctx.settings.carddav_url, ctx.settings.dav_auth, verify=ctx.settings.dav_verify
    )
    return crm, book


def _contacts_local(ctx: SideContext) -> tuple[PimSide, PimSide]:
    crm = CrmContactsSide(ctx.crm, ctx.fields.synced(), filter=ctx.filter, user_id=ctx.user_id)
    return crm, LocalSide(ctx.profile_dir / FILE_NAME, PimKind.CONTACT)


register_sides(PimKind.CONTACT, "imap", _contacts_dav)
for _backend in LOCAL_BACKENDS:
    register_sides(PimKind.CONTACT, _backend, _contacts_local)


@dataclass(frozen=True, slots=True)
class KindOutcome:
    """One kind's pass: its result, or why it did not run (``skipped``) or failed."""

    kind: PimKind
    result: PassResult | None = None
    skipped: str | None = None
    error: Exception | None = None


def sync_profile(
    crm: CrmClient,
    profile_dir: Path | str,
    backend: str,
    settings: PimSettings,
    *,
    user_id: str | None = None,
) -> list[KindOutcome]:
    """One pass of every configured kind. A kind whose sides are unavailable is skipped; a
    kind that fails (a server away) does not stop the others."""
    folder = Path(profile_dir)
    state = PimState.in_profile(folder)
    outcomes = []
    try:
        for kind in settings.kinds:
            outcomes.append(_run_kind(crm, folder, backend, settings, state, kind, user_id))
    finally:
        state.close()
    return outcomes


def _run_kind(
    crm: CrmClient,
    folder: Path,
    backend: str,
    settings: PimSettings,
    state: PimState,
    kind: PimKind,
    user_id: str | None,
) -> KindOutcome:
    factory = _FACTORIES.get((kind, backend))
    if factory is None:
        return KindOutcome(kind, skipped=f"{kind} sync is not available for {backend} profiles")
    fields = settings.field_map(kind)
    ctx = SideContext(crm, folder, settings, fields, settings.filter(kind), user_id)
    try:
        crm_side, mailbox_side = factory(ctx)
    except SidesUnavailable as exc:
        return KindOutcome(kind, skipped=str(exc))
    try:
        return KindOutcome(kind, PimEngine(kind, crm_side, mailbox_side, fields, state).run())
    except Exception as exc:  # one kind failing leaves the others running; the caller shows it
        log.warning("%s sync failed: %s", kind, exc)
        return KindOutcome(kind, error=exc)
    finally:
        for side in (crm_side, mailbox_side):
            _close(side)


def _close(side: Any) -> None:
    close = getattr(side, "close", None)
    if callable(close) and not isinstance(side, CrmContactsSide):
        close()  # the CRM client belongs to the caller


__all__ = [
    "KindOutcome",
    "PimSettings",
    "SideContext",
    "SideFactory",
    "SidesUnavailable",
    "register_sides",
    "sync_profile",
]
