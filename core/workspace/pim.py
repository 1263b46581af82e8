"""Contacts, appointments and tasks as the desktop's views need them (issue 20).

The views list, create, edit and delete items in the profile's *mailbox side* (the Maildir
demo: the local side kept in the profile's PIM file; an IMAP profile: its CalDAV calendar and
task list and CardDAV address book, written on the caller's worker), mark an item "Track in CRM"
(``sides.TRACK_FIELD``) or untrack it, and set what an appointment or task is regarding; a
PIM pass (:meth:`PimService.sync`) carries that to the CRM through ``core.pim.sync``. The
wording of the tracking banner and of task states lives here too, so ``desktop`` only shows
it.

Untrack keeps both copies, as the CRM for Outlook did: the mailbox item becomes personal (no
CRM id, no Track mark) and its pair is *detached* so the CRM record is not pushed back into
it. Set Regarding is stored on the item (``regardingobjectid`` as ``entity:id`` and its
display name); the engine carries it to the CRM record (a mailbox → CRM field of
``core.pim.fields``).

Every method blocks on disk or network: the desktop runs them on workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from dateutil.rrule import rrulestr  # type: ignore[import-untyped,unused-ignore]  # (icalendar)

from core.config.credentials import CredentialsError
from core.config.profile_config import Profile
from core.crm import CrmClient
from core.domain.changes import Changes
from core.domain.model import RecordRef
from core.pim.local_side import LocalSide
from core.pim.sides import (
    CRM_ID_FIELDS,
    TRACK_FIELD,
    PimKind,
    PimRecord,
    SideChange,
    SideError,
    VersionConflict,
)
from core.pim.state import FILE_NAME, PimState
from core.pim.sync import (
    DAV_BACKENDS,
    LOCAL_BACKENDS,
    KindOutcome,
    PimSettings,
    SideContext,
    SidesUnavailable,
    close_side,
    crm_activities,
    dav_side,
    register_sides,
    settings_for,
    sync_profile,
)

log = logging.getLogger("trackbox.pim")

#: Local fields (never mapped, never sent by the engine) this module keeps on an item.
REGARDING_FIELD = "regardingobjectid"
REGARDING_NAME = "regardingname"
#: Task states (``statecode``): 0 open, 1 completed, 2 cancelled.
TASK_OPEN, TASK_DONE, TASK_CANCELLED = 0, 1, 2
PRIORITIES = {0: "Low", 1: "Normal", 2: "High"}


class PimUnavailable(Exception):
    """This profile's mailbox keeps no contacts, calendar or tasks the client can show yet
    (the message says why)."""


class PimItemGone(Exception):
    """The item was deleted meanwhile (by a sync pass or another window)."""


@dataclass(frozen=True, slots=True)
class PimItem:
    """One contact, appointment or task of the mailbox side."""

    kind: PimKind
    key: str
    version: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def crm_id(self) -> str | None:
        value = self.fields.get(CRM_ID_FIELDS[self.kind])
        return str(value) if value else None

    @property
    def track_marked(self) -> bool:
        return bool(self.fields.get(TRACK_FIELD))

    @property
    def tracked(self) -> bool:
        """Tracked, or marked to be: what the tracked-icon column shows."""
        return self.track_marked or self.crm_id is not None

    @property
    def title(self) -> str:
        f = self.fields
        if self.kind is PimKind.CONTACT:
            name = " ".join(str(f[n]) for n in ("firstname", "lastname") if f.get(n))
            return name or str(f.get("emailaddress1") or "(no name)")
        return str(f.get("subject") or "(no subject)")

    @property
    def regarding(self) -> RecordRef | None:
        value = self.fields.get(REGARDING_FIELD)
        if not value or ":" not in str(value):
            return None
        logical, _, record_id = str(value).partition(":")
        return RecordRef(logical, record_id, str(self.fields.get(REGARDING_NAME) or ""))


# -- wording -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Banner:
    """What the banner over an item says: ``state`` is ``tracked``, ``pending`` or
    ``not_tracked`` (the desktop picks colours and icon by it)."""

    state: str
    text: str
    reason: str


_NOUN = {PimKind.CONTACT: "contact", PimKind.APPOINTMENT: "appointment", PimKind.TASK: "task"}


def banner(item: PimItem) -> Banner:
    """The tracking banner: "Tracked in CRM (regarding X)" / "Not tracked", and why."""
    noun = _NOUN[item.kind]
    ref = item.regarding
    about = f" (regarding {ref.name or ref.entity})" if ref is not None else ""
    if item.crm_id is not None:
        reason = (
            "Synchronised with its CRM contact: changes on either side reach the other."
            if item.kind is PimKind.CONTACT
            else f"Synchronised with its CRM {noun}: changes on either side reach the other."
        )
        return Banner("tracked", f"Tracked in CRM{about}", reason)
    if item.track_marked:
        return Banner(
            "pending",
            f"Track in CRM{about} — waiting for the next synchronisation",
            f"You marked this {noun} Track in CRM; the next synchronisation creates it there.",
        )
    return Banner(
        "not_tracked",
        "Not tracked",
        f"A personal {noun}: it stays in your mailbox until you mark it Track in CRM.",
    )


def task_status(item: PimItem) -> str:
    state = item.fields.get("statecode")
    if state == TASK_DONE:
        return "Completed"
    if state == TASK_CANCELLED:
        return "Cancelled"
    percent = item.fields.get("percentcomplete") or 0
    return f"In progress ({percent}%)" if percent else "Not started"


def priority_label(item: PimItem) -> str:
    code = item.fields.get("prioritycode")
    return PRIORITIES.get(int(code), "Normal") if code is not None else "Normal"


def task_done(item: PimItem) -> bool:
    return item.fields.get("statecode") == TASK_DONE


def parse_time(value: Any) -> datetime | date | None:
    """A vocabulary time: ISO UTC date-time (aware) or an all-day ``YYYY-MM-DD`` date."""
    if not value:
        return None
    text = str(value)
    if len(text) == 10:
        return date.fromisoformat(text)
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def due_of(item: PimItem) -> datetime | date | None:
    return parse_time(item.fields.get("scheduledend"))


def is_overdue(item: PimItem, now: datetime) -> bool:
    """An open task whose due time (or due day) has passed."""
    due = due_of(item)
    if due is None or item.fields.get("statecode") in (TASK_DONE, TASK_CANCELLED):
        return False
    if isinstance(due, datetime):
        return due < now
    return due < now.date()


# -- calendar occurrences ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One appointment shown on a day: the series' item for a recurring one. All-day
    occurrences carry dates (end exclusive); the others local date-times in ``tz``."""

    item: PimItem
    start: datetime | date
    end: datetime | date
    all_day: bool
    recurring: bool


def occurrences(items: Iterable[PimItem], first: date, last: date, tz: tzinfo) -> list[Occurrence]:
    """The appointments (and the instances of recurring ones, exceptions removed) that fall
    on days ``first``..``last`` (inclusive) in zone ``tz``, by start."""
    out: list[Occurrence] = []
    for item in items:
        start, end = parse_time(item.fields.get("scheduledstart")), None
        if start is None:
            continue
        end = parse_time(item.fields.get("scheduledend")) or start
        for s, e in _instances(item, start, end, first, last, tz):
            out.append(Occurrence(item, s, e, not isinstance(s, datetime), _rule(item) is not None))
    return sorted(out, key=lambda o: (_day(o.start), not o.all_day, str(o.start)))


def _rule(item: PimItem) -> str | None:
    value = item.fields.get("recurrence")
    return str(value) if value else None


def _day(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _instances(
    item: PimItem,
    start: datetime | date,
    end: datetime | date,
    first: date,
    last: date,
    tz: tzinfo,
) -> list[tuple[datetime | date, datetime | date]]:
    allday = not isinstance(start, datetime)
    local_start: datetime | date = start.astimezone(tz) if isinstance(start, datetime) else start
    local_end: datetime | date = end.astimezone(tz) if isinstance(end, datetime) else end
    length = _length(local_start, local_end)
    rule = _rule(item)
    starts: list[datetime | date]
    if rule is None:
        starts = [local_start]
    else:
        if isinstance(local_start, datetime):
            anchor = local_start.replace(tzinfo=None)
        else:
            anchor = datetime.combine(local_start, datetime.min.time())
        series = rrulestr(rule, dtstart=anchor)
        window_end = datetime.combine(last, datetime.max.time())
        window_start = datetime.combine(first, datetime.min.time()) - length
        skipped = {str(x)[:16] for x in item.fields.get("exdates") or []}
        starts = []
        for naive in series.between(window_start, window_end, inc=True):
            when = naive.date() if allday else naive.replace(tzinfo=tz)
            if _exdate_key(when) not in skipped:
                starts.append(when)
    found: list[tuple[datetime | date, datetime | date]] = []
    for s in starts:
        e = s + length
        if _day(s) <= last and (_day(e) >= first if not allday else e > first):
            found.append((s, e))
    return found


def _exdate_key(when: datetime | date) -> str:
    if isinstance(when, datetime):
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    return when.isoformat()


def _length(start: datetime | date, end: datetime | date) -> timedelta:
    try:
        length = end - start  # type: ignore[operator]
    except TypeError:
        return timedelta(hours=1)
    if not isinstance(length, timedelta) or length <= timedelta(0):
        return timedelta(days=1) if not isinstance(start, datetime) else timedelta(minutes=30)
    return length


# -- the service -------------------------------------------------------------------------------


def _activity_sides(kind: PimKind) -> Callable[[SideContext], tuple[Any, Any]]:
    """The local backends' appointments or tasks: CRM activities and the local side."""

    def build(ctx: SideContext) -> tuple[Any, Any]:
        return crm_activities(ctx, kind), LocalSide(ctx.profile_dir / FILE_NAME, kind)

    return build


for _backend in LOCAL_BACKENDS:
    for _kind in (PimKind.APPOINTMENT, PimKind.TASK):
        register_sides(_kind, _backend, _activity_sides(_kind))


class _DavItems:
    """A CalDAV/CardDAV side as the views use a local side: an update carries only the
    fields that changed, so the item is read first and written back whole with its ETag
    (a change made meanwhile on the server is a VersionConflict, not lost)."""

    def __init__(self, side: Any, kind: PimKind) -> None:
        self.side = side
        self.kind = kind

    def items(self) -> list[SideChange]:
        return [c for c in self.side.changes(None).changes if c.record is not None]

    def get(self, key: str) -> SideChange | None:
        found: SideChange | None = self.side.get(key)
        return found

    def put(self, key: str | None, record: PimRecord, version: str | None) -> tuple[str, str]:
        if key is None:
            created: tuple[str, str] = self.side.put(None, record, None)
            return created
        current = self.side.get(key)
        if current is None or current.record is None:
            raise PimItemGone(f"the {_NOUN[self.kind]} was deleted meanwhile")
        fields = {**current.record.fields, **record.fields}
        written: tuple[str, str] = self.side.put(
            key, PimRecord(self.kind, fields), current.version or None
        )
        return written

    def delete(self, key: str, version: str | None) -> None:
        self.side.delete(key, version)

    def close(self) -> None:
        close_side(self.side)


@contextmanager
def _dav_errors(kind: PimKind) -> Iterator[None]:
    """A DAV server that is away or refuses: say so. The change is not kept for later (the
    engine replays only what a side holds, and the server holds the items): the user tries
    again when online."""
    try:
        yield
    except VersionConflict:
        raise PimUnavailable(
            f"The {_NOUN[kind]} was changed on the server meanwhile: your change was not "
            "saved. Synchronise and try again."
        ) from None
    except SideError as exc:
        raise PimUnavailable(
            f"The CalDAV/CardDAV server cannot take the change now ({exc}): your "
            f"{_NOUN[kind]} was not saved. Try again when you are online."
        ) from None


class PimService:
    """One profile's contacts, appointments and tasks. ``backend``: the mail backend kind
    (``demo``, ``maildir``, ``imap``…); ``crm``: the CRM client (for a pass); ``user_id``:
    the CRM user's id (from the workspace's WhoAmI snapshot); ``settings``: the profile's
    PIM settings (:func:`core.pim.sync.settings_for`: its CalDAV/CardDAV collections and
    password; read when needed, since it may ask the keyring)."""

    def __init__(
        self,
        profile_dir: Path | str,
        backend: str,
        crm: Callable[[], CrmClient],
        user_id: Callable[[], str | None],
        settings: Callable[[], PimSettings] | None = None,
        *,
        dav_configured: bool | None = None,
    ) -> None:
        self.profile_dir = Path(profile_dir)
        self.backend = backend
        self._crm = crm
        self._user_id = user_id
        self._settings = settings
        self._dav_configured = settings is not None if dav_configured is None else dav_configured

    @classmethod
    def for_profile(
        cls,
        profile: Profile,
        profile_dir: Path | str,
        crm: Callable[[], CrmClient],
        user_id: Callable[[], str | None],
    ) -> PimService:
        """The service of a saved profile: its backend and, for IMAP, its DAV collections."""
        config = profile.config
        return cls(
            profile_dir,
            backend_of(config.mail_url),
            crm,
            user_id,
            lambda: settings_for(profile.name, config),
            dav_configured=config.has_dav,
        )

    def settings(self) -> PimSettings:
        """The profile's PIM settings (PimUnavailable when the keyring has no DAV password)."""
        if self._settings is None:
            return PimSettings()
        try:
            return self._settings()
        except CredentialsError as exc:
            raise PimUnavailable(str(exc)) from None

    def _side(self, kind: PimKind) -> Any:
        if self.backend in LOCAL_BACKENDS:
            return LocalSide(self.profile_dir / FILE_NAME, kind)
        if self.backend not in DAV_BACKENDS:
            raise PimUnavailable(
                f"{_NOUN[kind].capitalize()}s of {self.backend} profiles are not synchronised "
                "yet: the client shows the last synchronised copy"
            )
        try:
            return _DavItems(dav_side(self.settings(), kind), kind)
        except SidesUnavailable as exc:
            raise PimUnavailable(
                f"{_NOUN[kind].capitalize()}s cannot be edited: {exc} (set it in "
                "Options › Accounts, or with trackbox account add --carddav-url/--caldav-url)"
            ) from None

    @property
    def editable(self) -> bool:
        """Whether items can be edited here: the local side, or an IMAP profile with its
        CalDAV/CardDAV collections set (edits go to the server); others show the last
        synced snapshot read-only."""
        if self.backend in LOCAL_BACKENDS:
            return True
        return self.backend in DAV_BACKENDS and self._dav_configured

    def items(self, kind: PimKind) -> list[PimItem]:
        """The kind's items: the local side's or the DAV server's; when the server cannot be
        reached (or no collection is set), the last synced snapshot kept in the pairing
        state, so the views work offline (items never paired with the CRM are not in it)."""
        if not self.editable:
            return self._snapshot(kind)
        try:
            side = self._side(kind)
        except PimUnavailable:
            return self._snapshot(kind)
        try:
            return [_item(c) for c in side.items()]
        except SideError as exc:
            log.info("%s server unreachable, showing the snapshot: %s", kind, exc)
            return self._snapshot(kind)
        finally:
            side.close()

    def _snapshot(self, kind: PimKind) -> list[PimItem]:
        state = PimState.in_profile(self.profile_dir)
        try:
            pairs = state.pairs(kind.value, "synced")
        finally:
            state.close()
        return [
            PimItem(
                kind,
                p.mailbox_key,
                p.mailbox_version,
                {**p.base, CRM_ID_FIELDS[kind]: p.crm_key, TRACK_FIELD: True},
            )
            for p in pairs
            if p.mailbox_key is not None
        ]

    def get(self, kind: PimKind, key: str) -> PimItem:
        side = self._side(kind)
        try:
            with _dav_errors(kind):
                found = side.get(key)
        finally:
            side.close()
        if found is None or found.record is None:
            raise PimItemGone(f"the {_NOUN[kind]} was deleted meanwhile")
        return _item(found)

    def save(self, kind: PimKind, key: str | None, fields: Mapping[str, Any]) -> Changes:
        """Create (``key`` None) or update the given fields of an item. Saving a tracked
        item with the Track mark cleared untracks it (:meth:`untrack`)."""
        side = self._side(kind)
        try:
            with _dav_errors(kind):
                side.put(key, PimRecord(kind, dict(fields)), None)
                current = side.get(key) if key is not None else None
        finally:
            side.close()
        record = current.record if current is not None else None
        if fields.get(TRACK_FIELD) is False and record and record.fields.get(CRM_ID_FIELDS[kind]):
            assert current is not None
            return self.untrack(kind, current.key)
        return Changes()

    def delete(self, kind: PimKind, key: str) -> Changes:
        side = self._side(kind)
        try:
            with _dav_errors(kind):
                side.delete(key, None)
        finally:
            side.close()
        return Changes()

    def track(self, kind: PimKind, key: str) -> Changes:
        """Mark Track in CRM: the next pass creates (or pairs) the CRM record."""
        self.get(kind, key)
        return self.save(kind, key, {TRACK_FIELD: True})

    def untrack(self, kind: PimKind, key: str) -> Changes:
        """Stop tracking: the item stays as a personal one, the CRM record stays in the CRM
        and is no longer synchronised with it."""
        item = self.get(kind, key)
        state = PimState.in_profile(self.profile_dir)
        try:
            pair = state.pair_by_mailbox(kind.value, key)
            if pair is not None:
                pair.mailbox_key, pair.mailbox_version, pair.status = None, "", "detached"
                state.save_pair(pair)
        finally:
            state.close()
        return self.save(kind, item.key, {TRACK_FIELD: False, CRM_ID_FIELDS[kind]: None})

    def set_regarding(self, kind: PimKind, key: str, ref: RecordRef) -> Changes:
        """Set what an appointment or task is regarding (and mark it Track in CRM, as Set
        Regarding on a mail does); the next pass sends it (``regardingobjectid`` is a
        mailbox → CRM field of ``core.pim.fields``)."""
        if kind is PimKind.CONTACT:
            raise ValueError("a contact has no Regarding")
        self.get(kind, key)
        fields = {
            REGARDING_FIELD: f"{ref.entity}:{ref.id}",
            REGARDING_NAME: ref.name,
            TRACK_FIELD: True,
        }
        return self.save(kind, key, fields)

    def set_done(self, key: str, done: bool) -> Changes:
        """Complete a task (or open it again)."""
        fields: dict[str, Any] = {"statecode": TASK_DONE if done else TASK_OPEN}
        if done:
            fields["percentcomplete"] = 100
        return self.save(PimKind.TASK, key, fields)

    def sync(self, settings: PimSettings | None = None) -> list[KindOutcome]:
        """One PIM pass of every kind (Regarding travels with the activities' fields)."""
        crm = self._crm()
        user_id = self._user_id() or crm.who_am_i().user_id
        chosen = settings if settings is not None else self.settings()
        return sync_profile(crm, self.profile_dir, self.backend, chosen, user_id=user_id)


def _item(change: SideChange) -> PimItem:
    assert change.record is not None
    return PimItem(change.record.kind, change.key, change.version, dict(change.record.fields))


def backend_of(mail_url: str | None) -> str:
    """The PIM backend of a profile's mail URL (``None``: the embedded demo)."""
    if not mail_url:
        return "demo"
    scheme = mail_url.split(":", 1)[0].lower()
    return "imap" if scheme in ("imap", "imaps", "imap+insecure") else scheme


# -- the demo's items --------------------------------------------------------------------------


def demo_items(anchor: datetime) -> dict[PimKind, list[dict[str, Any]]]:
    """Contacts (some tracked), this week's appointments (one weekly, one all-day) and tasks
    (one overdue, one done) for the Maildir demo, dated around its ``anchor``."""
    monday = (anchor - timedelta(days=anchor.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC
    )

    def at(days: int, hour: int, minute: int = 0) -> str:
        return (monday + timedelta(days=days, hours=hour, minutes=minute)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )

    def day(days: int) -> str:
        return (monday + timedelta(days=days)).date().isoformat()

    contacts = [
        _contact("Nadia", "Rahman", "nadia.rahman@fabrikam.example", "Buyer", track=True),
        _contact("Jane", "Doe", "jane.doe@fabrikam.example", "Purchasing Manager", track=True),
        _contact("Peter", "Lindqvist", "peter.lindqvist@personal.example", "", track=False),
        _contact("Aiko", "Tanaka", "aiko.tanaka@personal.example", "Neighbour", track=False),
    ]
    appointments = [
        _appointment("Product demo for Northwind", at(1, 14), at(1, 15), "London", True),
        _appointment("Lunch with Olivia Brooks", at(2, 12), at(2, 13), "Café Nero", False),
        {
            **_appointment("Team stand-up", at(0, 9), at(0, 9, 15), "Teams", False),
            "recurrence": "FREQ=WEEKLY;BYDAY=MO",
        },
        {
            **_appointment("Trade fair in Lyon", day(3), day(4), "Lyon", False),
            "isalldayevent": True,
        },
    ]
    tasks = [
        _task("Send the Fabrikam proposal", at(-1, 17), 2, TASK_OPEN, track=True),
        _task("Book the venue for the partner day", at(0, 12), 1, TASK_DONE, track=False),
        _task("Prepare the Northwind quote", at(4, 17), 1, TASK_OPEN, track=False),
    ]
    return {PimKind.CONTACT: contacts, PimKind.APPOINTMENT: appointments, PimKind.TASK: tasks}


def _contact(first: str, last: str, email: str, title: str, *, track: bool) -> dict[str, Any]:
    return {
        "firstname": first,
        "lastname": last,
        "emailaddress1": email,
        "jobtitle": title or None,
        TRACK_FIELD: track,
    }


def _appointment(subject: str, start: str, end: str, location: str, track: bool) -> dict[str, Any]:
    return {
        "subject": subject,
        "scheduledstart": start,
        "scheduledend": end,
        "location": location,
        "isalldayevent": False,
        TRACK_FIELD: track,
    }


def _task(subject: str, due: str, priority: int, state: int, *, track: bool) -> dict[str, Any]:
    return {
        "subject": subject,
        "scheduledend": due,
        "prioritycode": priority,
        "statecode": state,
        "percentcomplete": 100 if state == TASK_DONE else 0,
        "activitytypecode": "task",
        TRACK_FIELD: track,
    }


def seed_demo(profile_dir: Path | str, anchor: datetime) -> None:
    """Write :func:`demo_items` to the demo's local side (once: the caller keeps a marker)."""
    for kind, rows in demo_items(anchor).items():
        side = LocalSide(Path(profile_dir) / FILE_NAME, kind)
        try:
            for fields in rows:
                side.put(None, PimRecord(kind, fields), None)
        finally:
            side.close()


__all__ = [
    "Banner",
    "Occurrence",
    "PimItem",
    "PimItemGone",
    "PimService",
    "PimUnavailable",
    "backend_of",
    "banner",
    "demo_items",
    "is_overdue",
    "occurrences",
    "priority_label",
    "seed_demo",
    "task_done",
    "task_status",
]
