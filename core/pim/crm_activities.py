"""The CRM side of appointments and tasks: Dataverse appointments, recurring appointment
masters, and tasks, faxes and letters, as a :class:`core.pim.sides.PimSide`.

Keys are ``<logical>:<activityid>`` (``appointment:…``, ``recurringappointmentmaster:…``,
``task:…``, ``fax:…``, ``letter:…``) so that a key names the table it lives in; versions
are the rows' ``@odata.etag``.

Incremental by delta link per table (``Prefer: odata.track-changes``, as
``core.sync.address_books``). Dataverse refuses ``$filter`` with change tracking, so the
delta only says *which* rows changed; those rows are then read through the user's filter
(an OData ``$filter`` string, e.g. :func:`default_filter`) with their parties expanded. A
changed row the filter no longer selects is reported as gone from this side (``record``
None): the engine decides what that means for the mailbox copy.

Parties: organiser (7), required (5) and optional (6) attendees are lists of e-mail
addresses in the vocabulary; written, each address is resolved to a CRM record through the
address books (``core.domain.resolution``: the first match in the CRM's sender order), and an
address nobody has stays an unresolved party (``addressused`` only), as the CRM for Outlook
did. Read, a party's ``addressused`` is taken, or else the primary e-mail of its record.

A recurrence the recurring appointment master cannot hold (``ical_map.crm_recurrence_problem``)
is refused with a non-retryable :class:`SideError` whose message says why: the item stays in
the mailbox only, and the engine shows the reason. Tasks carry no recurrence in the CRM: a
recurring task's current occurrence is the CRM task, its RRULE stays in the mailbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from typing import Any

from core.crm.client import CrmClient
from core.crm.errors import CrmAuthError, CrmError, CrmPermanentError, CrmUnavailable
from core.crm.throttle import CrmThrottled
from core.crm.wire import lookup_ref
from core.domain.entities import UnknownEntity, entity
from core.domain.resolution import Resolver, sender_order_key
from core.pim.ical_map import (
    PATTERN_FIELDS,
    crm_recurrence_problem,
    parse_when,
    pattern_to_rrule,
    rrule_to_pattern,
    utc_iso,
    zone,
)
from core.pim.sides import ChangePage, PimKind, PimRecord, SideChange, SideError, VersionConflict

ORGANIZER, REQUIRED, OPTIONAL = 7, 5, 6
PARTY_FIELDS = {
    ORGANIZER: "organizer",
    REQUIRED: "requiredattendees",
    OPTIONAL: "optionalattendees",
}
PARTY_COLUMNS = "addressused,participationtypemask,_partyid_value"
#: Ids per ``$filter`` when re-reading the rows a delta named.
ID_BATCH = 40
COMMON = ["activityid", "subject", "description", "statecode", "statuscode", "prioritycode"]
COLUMNS: Mapping[str, list[str]] = {
    "appointment": [
        *COMMON,
        "location",
        "scheduledstart",
        "scheduledend",
        "isalldayevent",
        "_regardingobjectid_value",
        "instancetypecode",
        "seriesid",
        "originalstartdate",
    ],
    "recurringappointmentmaster": [
        *COMMON,
        "location",
        "starttime",
        "endtime",
        "duration",
        "isalldayevent",
        "_regardingobjectid_value",
        "deletedexceptionslist",
        *PATTERN_FIELDS,
    ],
    "task": [
        *COMMON,
        "scheduledstart",
        "scheduledend",
        "actualend",
        "percentcomplete",
        "_regardingobjectid_value",
    ],
    "fax": [*COMMON, "scheduledstart", "scheduledend", "actualend", "_regardingobjectid_value"],
    "letter": [*COMMON, "scheduledstart", "scheduledend", "actualend", "_regardingobjectid_value"],
}
TABLES = {
    PimKind.APPOINTMENT: ("appointment", "recurringappointmentmaster"),
    PimKind.TASK: ("task", "fax", "letter"),
}
#: The columns of an instance an override may change (``ical_map.OVERRIDE_FIELDS``).
OVERRIDE_COLUMNS = ("subject", "location", "description", "scheduledstart", "scheduledend")
#: Instance type codes of appointments that belong to a series (read through the master).
SERIES_INSTANCES = (2, 3, 4)


def default_filter(kind: PimKind, user_id: str) -> str:
    """The CRM's defaults: appointments where I am organiser or a required/optional
    attendee; tasks, faxes and letters I own (the ``$filter`` for each table of ``kind``)."""
    if kind is PimKind.APPOINTMENT:
        masks = " or ".join(
            f"p/participationtypemask eq {m}" for m in (ORGANIZER, REQUIRED, OPTIONAL)
        )
        return f"{{parties}}/any(p: p/_partyid_value eq {user_id} and ({masks}))"
    return f"_ownerid_value eq {user_id}"


@dataclass(frozen=True, slots=True)
class _Table:
    logical: str
    entity_set: str
    parties: str  # the collection navigation of its activity parties

    def key(self, activity_id: str) -> str:
        return f"{self.logical}:{activity_id.lower()}"


def _table(logical: str) -> _Table:
    try:
        entity_set = entity(logical).entity_set
    except UnknownEntity:
        entity_set = {"fax": "faxes", "letter": "letters"}.get(logical, f"{logical}s")
    return _Table(logical, entity_set, f"{logical}_activity_parties")


class CrmActivitiesSide:
    """Appointments (with recurring masters) or tasks/faxes/letters of one CRM user.

    ``filter`` is the user's OData ``$filter`` (``{parties}`` in it stands for each table's
    party navigation, as in :func:`default_filter`); ``user_tz`` the zone the CRM user's
    calendar is in, which all-day dates and recurrence patterns are read in."""

    def __init__(
        self,
        crm: CrmClient,
        kind: PimKind,
        resolver: Resolver,
        *,
        filter: str | None = None,
        user_tz: tzinfo = UTC,
        tables: Sequence[str] | None = None,
        page_size: int = 2000,
    ) -> None:
        if kind not in TABLES:
            raise ValueError(f"CRM activities are appointments or tasks, not {kind}")
        self.crm = crm
        self.kind = kind
        self.resolver = resolver
        self.filter = filter
        self.user_tz = user_tz
        self.tables = [_table(t) for t in (tables or TABLES[kind])]
        self.page_size = page_size
        self._emails: dict[str, str] = {}

    # -- reading ---------------------------------------------------------------------------

    def changes(self, token: str | None) -> ChangePage:
        links = _links(token)
        full = not links or any(t.logical not in links for t in self.tables)
        found: list[SideChange] = []
        new_links: dict[str, str] = {}
        for table in self.tables:
            link = None if full else links[table.logical]
            try:
                rows, deleted, new_links[table.logical] = self._delta(table, link)
            except CrmPermanentError as exc:
                if link is None:
                    raise _side_error(exc) from None
                return self.changes(None)  # expired delta token: read everything again
            found.extend(self._changed(table, rows, deleted, full))
        return ChangePage(found, json.dumps(new_links, sort_keys=True), full=full)

    def _delta(self, table: _Table, link: str | None) -> tuple[list[str], list[str], str]:
        try:
            result = self.crm.track_changes(
                table.entity_set, ["activityid"], link, page_size=self.page_size
            )
        except CrmPermanentError:
            raise  # the caller tells an expired token from a refusal
        except CrmError as exc:
            raise _side_error(exc) from None
        ids = [str(r["activityid"]).lower() for r in result.rows if r.get("activityid")]
        return ids, result.deleted, result.delta_link

    def _changed(
        self, table: _Table, ids: list[str], deleted: list[str], full: bool
    ) -> Iterator[SideChange]:
        rows = dict(self._read(table, ids, full))
        series: set[str] = set()
        for row in rows.values():
            if table.logical == "appointment" and row.get("instancetypecode") in SERIES_INSTANCES:
                if row.get("seriesid"):  # an instance changed: its series is read again
                    series.add(str(row["seriesid"]).lower())
                continue
            change = self._change(table, row)
            if change is not None:
                yield change
        if full:
            return
        for master_id in sorted(series):
            change = self.get(f"recurringappointmentmaster:{master_id}")
            if change is not None:
                yield change
        for activity_id in ids:
            if activity_id not in rows:
                yield SideChange(table.key(activity_id), None)  # left the filter
        for activity_id in deleted:
            yield SideChange(table.key(activity_id), None)

    def _read(
        self, table: _Table, ids: list[str], full: bool
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """The rows (all the filter selects when ``full``, else those among ``ids``)."""
        if full:
            yield from self._query(table, None)
            return
        for start in range(0, len(ids), ID_BATCH):
            chunk = ids[start : start + ID_BATCH]
            yield from self._query(table, " or ".join(f"activityid eq {i}" for i in chunk))

    def _query(
        self, table: _Table, ids_filter: str | None
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        terms = [f"({t})" for t in (self._user_filter(table), ids_filter) if t]
        try:
            rows = list(
                self.crm.query(
                    table.entity_set,
                    select=COLUMNS[table.logical],
                    filter=" and ".join(terms) or None,
                    expand=self._expand(table),
                    annotations=True,
                    page_size=self.page_size,
                )
            )
        except CrmError as exc:
            raise _side_error(exc) from None
        for row in rows:
            yield str(row["activityid"]).lower(), row

    def _user_filter(self, table: _Table) -> str | None:
        """The filter for one table: ``{parties}``, or the appointment's party navigation
        a filter was written with (``core.pim.filters``), becomes the table's own."""
        if not self.filter:
            return None
        found = self.filter.replace("{parties}", table.parties)
        return found.replace("appointment_activity_parties/", f"{table.parties}/")

    def _expand(self, table: _Table) -> str | None:
        if table.logical in ("appointment", "recurringappointmentmaster"):
            return f"{table.parties}($select={PARTY_COLUMNS})"
        return None

    def get(self, key: str) -> SideChange | None:
        table, activity_id = self._split(key)
        try:
            row = self.crm.get(
                table.entity_set,
                activity_id,
                select=COLUMNS[table.logical],
                expand=self._expand(table),
                annotations=True,
            )
        except CrmPermanentError as exc:
            if exc.not_found:
                return None
            raise _side_error(exc) from None
        except CrmError as exc:
            raise _side_error(exc) from None
        return self._change(table, row)

    def _change(self, table: _Table, row: Mapping[str, Any]) -> SideChange | None:
        """A row as a change; None for an instance of a series (read with its master)."""
        if table.logical == "appointment" and row.get("instancetypecode") in SERIES_INSTANCES:
            return None
        fields = self._fields(table, row)
        return SideChange(
            table.key(str(row["activityid"])),
            PimRecord(self.kind, fields),
            str(row.get("@odata.etag") or ""),
        )

    def _fields(self, table: _Table, row: Mapping[str, Any]) -> dict[str, Any]:
        regarding = lookup_ref(row, "regardingobjectid")
        fields: dict[str, Any] = {
            "activityid": str(row["activityid"]).lower(),
            "subject": row.get("subject") or None,
            "description": row.get("description") or None,
            "statecode": row.get("statecode"),
            "statuscode": row.get("statuscode"),
            "prioritycode": row.get("prioritycode"),
            "regardingobjectid": f"{regarding.entity}:{regarding.id}" if regarding else None,
        }
        if self.kind is PimKind.TASK:
            fields["activitytypecode"] = table.logical
            for column in ("scheduledstart", "scheduledend", "actualend"):
                fields[column] = _utc(row.get(column))
            if table.logical == "task":
                fields["percentcomplete"] = row.get("percentcomplete")
            return fields
        fields["location"] = row.get("location") or None
        fields.update(self._parties(row.get(table.parties) or []))
        if table.logical == "recurringappointmentmaster":
            fields.update(self._series_fields(row))
            fields.update(self._exceptions(fields["activityid"], row))
        else:
            fields.update(self._times(row.get("scheduledstart"), row.get("scheduledend"), row))
            fields.update(recurrence=None, overrides=None, exdates=None)
        return fields

    def _times(self, start: Any, end: Any, row: Mapping[str, Any]) -> dict[str, Any]:
        allday = bool(row.get("isalldayevent"))
        return {
            "isalldayevent": allday,
            "scheduledstart": self._day(start) if allday else _utc(start),
            "scheduledend": self._day(end) if allday else _utc(end),
        }

    def _day(self, value: Any) -> str | None:
        """An all-day bound (midnight in the user's zone) as a date."""
        if not value:
            return None
        when = parse_when(str(value))
        if isinstance(when, datetime):
            return when.astimezone(self.user_tz).date().isoformat()
        return when.isoformat()

    def _series_fields(self, row: Mapping[str, Any]) -> dict[str, Any]:
        fields = self._times(row.get("starttime"), row.get("endtime"), row)
        start = parse_when(str(fields["scheduledstart"])) if fields["scheduledstart"] else None
        if isinstance(start, datetime):
            start = start.astimezone(self.user_tz)
        pattern = {k: row.get(k) for k in PATTERN_FIELDS}
        fields["recurrence"] = pattern_to_rrule(pattern, start) if start is not None else None
        return fields

    def _instances(self, master_id: str) -> list[dict[str, Any]]:
        """The series' expanded instances and exceptions (appointments with its seriesid)."""
        try:
            return list(
                self.crm.query(
                    "appointments",
                    select=[
                        *OVERRIDE_COLUMNS,
                        "activityid",
                        "instancetypecode",
                        "originalstartdate",
                    ],
                    filter=f"seriesid eq {master_id}",
                )
            )
        except CrmError as exc:
            raise _side_error(exc) from None

    def _exceptions(self, master_id: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """``overrides`` (the exceptions: moved or changed instances) and ``exdates`` (the
        deleted ones, the master's ``deletedexceptionslist``) of a series."""
        overrides = []
        for instance in self._instances(master_id):
            if instance.get("instancetypecode") != 3 or not instance.get("originalstartdate"):
                continue
            override: dict[str, Any] = {"recurrenceid": _utc(instance["originalstartdate"])}
            for column in OVERRIDE_COLUMNS:
                value = instance.get(column)
                override[column] = _utc(value) if column.startswith("scheduled") else value or None
            overrides.append(override)
        gone = str(row.get("deletedexceptionslist") or "").replace(";", ",").split(",")
        exdates = sorted({d for d in (_utc(g.strip()) for g in gone if g.strip()) if d})
        return {
            "overrides": sorted(overrides, key=lambda o: str(o["recurrenceid"])) or None,
            "exdates": exdates or None,
        }

    def _write_exceptions(self, master_id: str, fields: Mapping[str, Any]) -> None:
        """Move or change the overridden instances and delete the excluded ones, each found
        by its original start; an occurrence the CRM did not expand is refused."""
        overrides = list(fields.get("overrides") or ())
        exdates = list(fields.get("exdates") or ())
        if not overrides and not exdates:
            return
        by_start = {_utc(i.get("originalstartdate")): i for i in self._instances(master_id)}
        for override in overrides:
            instance = self._occurrence(by_start, override.get("recurrenceid"))
            change = {}
            for column in OVERRIDE_COLUMNS:
                wanted = override.get(column)
                if column.startswith("scheduled"):
                    wanted = self._crm_time(wanted)
                    same = _utc(instance.get(column)) == wanted
                else:
                    same = (instance.get(column) or None) == wanted
                if not same:
                    change[column] = wanted
            if change:
                self.crm.update("appointments", str(instance["activityid"]), change)
        for gone in exdates:
            if _utc(gone) in by_start:
                self.crm.delete("appointments", str(by_start[_utc(gone)]["activityid"]))

    @staticmethod
    def _occurrence(
        by_start: Mapping[str | None, Mapping[str, Any]], start: Any
    ) -> Mapping[str, Any]:
        instance = by_start.get(_utc(start))
        if instance is None:
            raise SideError(
                f"the CRM has no occurrence of this series starting {start} to change",
                retryable=False,
            )
        return instance

    def _parties(self, parties: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        lists: dict[int, list[str]] = {ORGANIZER: [], REQUIRED: [], OPTIONAL: []}
        for party in parties:
            mask = party.get("participationtypemask")
            if mask not in lists:
                continue
            email = self._party_email(party)
            if email and email not in lists[int(mask)]:
                lists[int(mask)].append(email)
        return {
            "organizer": lists[ORGANIZER][0] if lists[ORGANIZER] else None,
            "requiredattendees": lists[REQUIRED] or None,
            "optionalattendees": lists[OPTIONAL] or None,
        }

    def _party_email(self, party: Mapping[str, Any]) -> str | None:
        used = str(party.get("addressused") or "").strip().lower()
        if used:
            return used
        ref = lookup_ref(party, "partyid")
        if ref is None or not ref.entity:
            return None
        if ref.id not in self._emails:
            self._emails[ref.id] = self._record_email(ref.entity, ref.id)
        return self._emails[ref.id] or None

    def _record_email(self, logical: str, record_id: str) -> str:
        try:
            table = entity(logical)
            column = table.primary_email
            if column is None:
                return ""
            row = self.crm.get(table.entity_set, record_id, select=[column])
        except (UnknownEntity, CrmPermanentError):
            return ""
        except CrmError as exc:
            raise _side_error(exc) from None
        return str(row.get(column) or "").strip().lower()

    # -- writing ---------------------------------------------------------------------------

    def put(self, key: str | None, record: PimRecord, version: str | None) -> tuple[str, str]:
        if record.kind is not self.kind:
            raise SideError(f"the CRM's {self.kind}s cannot hold a {record.kind}", retryable=False)
        if key is not None:  # partial (core.pim.sides); the body below is the whole activity
            current = self.get(key)
            if current is not None and current.record is not None:
                record = PimRecord(record.kind, {**current.record.fields, **record.fields})
        table = self._target(key, record)
        body = self._body(table, record.fields)
        try:
            if key is None:
                activity_id = self.crm.create(table.entity_set, body)
                self._set_state(table, activity_id, record.fields)
            else:
                activity_id = self._split(key)[1]
                body.update(_state(record.fields))
                self.crm.update(table.entity_set, activity_id, body, if_match=version or "*")
            if table.logical == "recurringappointmentmaster":
                self._write_exceptions(activity_id, record.fields)
            etag = self.crm.get(table.entity_set, activity_id, select=["activityid"]).get(
                "@odata.etag"
            )
        except CrmPermanentError as exc:
            if exc.precondition_failed:
                raise VersionConflict(f"{key} changed in the CRM since {version}") from None
            raise _side_error(exc) from None
        except CrmError as exc:
            raise _side_error(exc) from None
        return table.key(activity_id), str(etag or "")

    def _target(self, key: str | None, record: PimRecord) -> _Table:
        """The table a record belongs in; a series the CRM cannot hold is refused here."""
        fields = record.fields
        if self.kind is PimKind.TASK:
            logical = str(fields.get("activitytypecode") or "task")
            if logical not in TABLES[PimKind.TASK]:
                raise SideError(f"not a CRM task type: {logical}", retryable=False)
        else:
            problem = crm_recurrence_problem(fields)
            if problem:
                raise SideError(f"kept in the mailbox only: {problem}", retryable=False)
            logical = "recurringappointmentmaster" if fields.get("recurrence") else "appointment"
        table = _table(logical)
        if key is not None and self._split(key)[0].logical != logical:
            raise SideError(
                f"{key} cannot become a {logical} in place (a series made single or the "
                "other way round): delete it and create it again",
                retryable=False,
            )
        return table

    def _body(self, table: _Table, fields: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "subject": fields.get("subject") or "",
            "description": fields.get("description"),
        }
        if fields.get("prioritycode") is not None:
            body["prioritycode"] = fields["prioritycode"]
        if fields.get("regardingobjectid"):
            logical, _, record_id = str(fields["regardingobjectid"]).partition(":")
            regarding_set = entity(logical).entity_set
            body[f"regardingobjectid_{logical}_{table.logical}@odata.bind"] = (
                f"/{regarding_set}({record_id})"
            )
        if self.kind is PimKind.TASK:
            for column in ("scheduledstart", "scheduledend", "actualend"):
                body[column] = self._crm_time(fields.get(column))
            if table.logical == "task" and fields.get("percentcomplete") is not None:
                body["percentcomplete"] = fields["percentcomplete"]
            return body
        body["location"] = fields.get("location")
        body["isalldayevent"] = bool(fields.get("isalldayevent"))
        body[table.parties] = self._party_rows(fields)
        start, end = (
            self._crm_time(fields.get("scheduledstart")),
            self._crm_time(fields.get("scheduledend")),
        )
        if table.logical == "appointment":
            body.update(scheduledstart=start, scheduledend=end)
        else:
            body.update(self._pattern_body(fields, start, end))
        return body

    def _pattern_body(
        self, fields: Mapping[str, Any], start: str | None, end: str | None
    ) -> dict[str, Any]:
        if start is None:
            raise SideError("a recurring appointment needs a start", retryable=False)
        tz = zone(fields.get("tzid")) or self.user_tz
        local = parse_when(start)
        local = local.astimezone(tz) if isinstance(local, datetime) else local
        pattern = rrule_to_pattern(str(fields["recurrence"]), local, tz)
        minutes = 0
        if end is not None:
            minutes = int((parse_when(end) - parse_when(start)).total_seconds() // 60)
        return {**pattern, "starttime": start, "endtime": end, "duration": minutes}

    def _crm_time(self, value: Any) -> str | None:
        """A vocabulary time as the CRM takes it: UTC; a date is midnight in the user's zone."""
        if not value:
            return None
        when = parse_when(str(value))
        if not isinstance(when, datetime):
            when = datetime.combine(when, time(0), tzinfo=self.user_tz)
        return utc_iso(when)

    def _party_rows(self, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        organizer = fields.get("organizer")
        for mask, emails in (
            (ORGANIZER, [organizer] if organizer else []),
            (REQUIRED, fields.get("requiredattendees") or []),
            (OPTIONAL, fields.get("optionalattendees") or []),
        ):
            for email in emails:
                rows.append(self._party(str(email).strip().lower(), mask))
        return rows

    def _party(self, email: str, mask: int) -> dict[str, Any]:
        """One activity party: bound to the address's CRM record (the organiser only to a
        user), or unresolved with the address alone."""
        matches = sorted(self.resolver.lookup(email), key=sender_order_key)
        if mask == ORGANIZER:
            matches = [m for m in matches if m.entity == "systemuser"]
        row: dict[str, Any] = {"participationtypemask": mask, "addressused": email}
        if matches:
            ref = matches[0]
            row[f"partyid_{ref.entity}@odata.bind"] = f"/{entity(ref.entity).entity_set}({ref.id})"
        return row

    def _set_state(self, table: _Table, activity_id: str, fields: Mapping[str, Any]) -> None:
        """A new activity is created in its table's default state; the record's own state
        is set afterwards, as Dataverse wants (SetState as a PATCH of statecode and
        statuscode)."""
        state = _state(fields)
        if state:
            self.crm.update(table.entity_set, activity_id, state)

    def delete(self, key: str, version: str | None) -> None:
        table, activity_id = self._split(key)
        try:
            self.crm.delete(table.entity_set, activity_id)
        except CrmPermanentError as exc:
            if exc.not_found:
                return
            raise _side_error(exc) from None
        except CrmError as exc:
            raise _side_error(exc) from None

    def _split(self, key: str) -> tuple[_Table, str]:
        logical, _, activity_id = key.partition(":")
        if logical not in TABLES[self.kind] or not activity_id:
            raise SideError(f"not a key of this side: {key!r}", retryable=False)
        return _table(logical), activity_id


def _links(token: str | None) -> dict[str, str]:
    """The delta link per table a token holds; an unreadable token is none (a full read)."""
    if not token:
        return {}
    try:
        links = json.loads(token)
    except ValueError:
        return {}
    if not isinstance(links, dict):
        return {}
    return {str(k): str(v) for k, v in links.items() if isinstance(v, str)}


def _state(fields: Mapping[str, Any]) -> dict[str, Any]:
    if fields.get("statecode") is None:
        return {}
    state = {"statecode": fields["statecode"]}
    if fields.get("statuscode") is not None:
        state["statuscode"] = fields["statuscode"]
    return state


def _utc(value: Any) -> str | None:
    if not value:
        return None
    when = parse_when(str(value))
    return utc_iso(when) if isinstance(when, datetime) else when.isoformat()


def _side_error(exc: CrmError) -> SideError:
    """A CRM failure in the sides' terms: retryable when the CRM is away, throttling or
    wants a sign-in; not when it refused the request itself."""
    retryable = isinstance(exc, CrmUnavailable | CrmThrottled | CrmAuthError)
    return SideError(f"CRM: {exc}", retryable=retryable)


__all__ = ["CrmActivitiesSide", "default_filter"]
