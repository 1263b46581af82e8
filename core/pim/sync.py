"""Runs the PIM passes of one profile: contacts, appointments, tasks (issue 20).

The sides come from the profile's mail backend: for IMAP profiles a CardDAV address book and
CalDAV calendar/task list (the profile's ``carddav_url``/``caldav_url``/``caldav_tasks_url``,
read into ``PimSettings`` by :func:`settings_for` with the password from the keyring), for the
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

from core.config.profile_config import ProfileConfig
from core.crm import CrmClient
from core.domain.model import RecordRef
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


class _NoResolver:
    """Attendees stay unresolved parties when no address book was given."""

    def lookup(self, address_key: str) -> list[RecordRef]:
        return []

    def is_internal(self, address_key: str) -> bool:
        return False


NO_RESOLVER = _NoResolver()


def crm_activities(ctx: SideContext, kind: PimKind) -> PimSide:
    """The CRM side of appointments or tasks: the user's activities (default filter)."""
    from core.pim.crm_activities import CrmActivitiesSide
    from core.pim.crm_activities import default_filter as activity_filter

    if ctx.user_id is None:
        raise SidesUnavailable("the CRM user is not known yet (no sync has run)")

    return CrmActivitiesSide(ctx.crm, kind, NO_RESOLVER, filter=activity_filter(kind, ctx.user_id))


def dav_collection(settings: PimSettings, kind: PimKind) -> str:
    """The DAV collection URL of ``kind``; SidesUnavailable when the profile sets none."""
    url, what = {
        PimKind.CONTACT: (settings.carddav_url, "CardDAV address book"),
        PimKind.APPOINTMENT: (settings.caldav_url, "CalDAV calendar"),
        PimKind.TASK: (settings.tasks_url, "CalDAV task list"),
    }[kind]
    if not url:
        raise SidesUnavailable(f"no {what} is set for this profile")
    return url


def dav_side(settings: PimSettings, kind: PimKind) -> PimSide:
    """The mailbox side of an IMAP profile: its CardDAV book or CalDAV collection."""
    url = dav_collection(settings, kind)
    if kind is PimKind.CONTACT:
        return CardDavSide(url, settings.dav_auth, verify=settings.dav_verify)
    from core.pim.caldav_side import CalDavSide

    user, password = settings.dav_auth or (None, None)
    return CalDavSide.connect(
        url, kind, username=user, password=password, verify=settings.dav_verify
    )


def _activities_dav(kind: PimKind) -> SideFactory:
    def build(ctx: SideContext) -> tuple[PimSide, PimSide]:
        mailbox = dav_side(ctx.settings, kind)  # SidesUnavailable first: no URL, no CRM call
        try:
            return crm_activities(ctx, kind), mailbox
        except SidesUnavailable:
            close_side(mailbox)
            raise

    return build


for _kind in (PimKind.APPOINTMENT, PimKind.TASK):
    register_sides(_kind, "imap", _activities_dav(_kind))


def settings_for(profile: str, config: ProfileConfig, **choices: Any) -> PimSettings:
    """A profile's PIM settings: its CalDAV/CardDAV collections and, when it has any, the
    DAV password from the keyring (or ``TRACKBOX_DAV_PASSWORD``). ``choices``: the other
    :class:`PimSettings` fields (filters, directions…). Raises ``SecretMissing`` when a
    collection is set but no password is stored, ``CredentialsUnavailable`` without a
    keyring."""
    auth = None
    if config.has_dav:
        from core.config.credentials import SecretKind, SecretMissing, get_secret
        from core.config.profile_config import account_name

        user = account_name(config, "dav")
        password = get_secret(profile, SecretKind.DAV, user)
        if password is None:
            raise SecretMissing(profile, SecretKind.DAV.value, user)
        auth = (user, password)
    return PimSettings(
        carddav_url=config.carddav_url or None,
        caldav_url=config.caldav_url or None,
        tasks_url=config.caldav_tasks_url or None,
        dav_auth=auth,
        **choices,
    )


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
            close_side(side)


def close_side(side: Any) -> None:
    """Close what a side opened (its HTTP session), never the caller's CRM client."""
    close = getattr(side, "close", None)
    if callable(close) and not isinstance(side, CrmContactsSide):
        close()  # the CRM client belongs to the caller
    client = getattr(side, "client", None)  # a CalDAV side's own DAVClient (its session)
    if (
        client is not None
        and hasattr(side, "component")
        and callable(getattr(client, "close", None))
    ):
        client.close()


__all__ = [
    "NO_RESOLVER",
    "KindOutcome",
    "PimSettings",
    "SideContext",
    "SideFactory",
    "SidesUnavailable",
    "close_side",
    "crm_activities",
    "dav_collection",
    "dav_side",
    "register_sides",
    "settings_for",
    "sync_profile",
]
