"""Server rules of the PIM activities (issue 20), called from :class:`crmserver.records.Records`
around its writes: state → status pairs, an appointment's duration, and recurring series.

A recurring appointment master's instances are stored as appointments (``instancetypecode``
2, ``seriesid`` = the master, ``originalstartdate`` = the occurrence), created when the master
is written, from the pattern start up to the organisation's ``futureexpansionwindow`` months
ahead (at most ``recurrenceexpansionsynchcreatemax``). An instance that is changed becomes an
exception (3); a deleted one is remembered in the master's ``deletedexceptionslist``, so
re-expanding skips it. Changing the pattern drops the instances and exceptions and expands
again, as Dataverse does; other changes of the master reach the instances not yet changed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .entities import ENTITIES, Entity
from .errors import ODataError, bad_request
from .pim_entities import STATE_STATUS
from .recurrence import PATTERN_FIELDS, Pattern, PatternError, iso, occurrences, parse_utc
from .storage import Row

if TYPE_CHECKING:
    from .records import Records

MASTER = "recurringappointmentmaster"
#: Master columns its untouched instances follow.
SHARED_FIELDS = (
    "subject",
    "description",
    "location",
    "isalldayevent",
    "prioritycode",
    "regardingobjectid",
    "regardingobjectid__type",
    "globalobjectid",
    "category",
    "subcategory",
)
#: Columns whose change does not turn an instance into an exception.
_NOT_AN_EXCEPTION = {"statecode", "statuscode", "modifiedby", "modifiedby__type", "ownerid"}
_INSTANCE_NS = uuid.UUID("9b1f3c52-7a44-4d0e-9d61-2f7e8c1a5b30")


def derive(entity: Entity, row: Row) -> None:
    """Columns computed on every save of a PIM activity."""
    logical = entity.logical
    if logical in STATE_STATUS:
        _check_status(entity, row)
    if logical == "appointment":
        _duration(row)
    elif logical == MASTER:
        _normalise_master(row)


def before_update(entity: Entity, row: Row, values: Row) -> None:
    """A statecode alone brings that state's default status; a changed instance becomes an
    exception."""
    states = STATE_STATUS.get(entity.logical)
    if states and "statecode" in values and "statuscode" not in values:
        allowed = states.get(values["statecode"], ())
        if row.get("statuscode") not in allowed and allowed:
            values["statuscode"] = allowed[0]
    elif states and "statuscode" in values:
        state = values.get("statecode", row.get("statecode"))
        if values["statuscode"] not in (states.get(state, ()) if isinstance(state, int) else ()):
            raise _bad_status(entity, state, values["statuscode"])
    if entity.logical == "appointment":
        _duration_change(row, values)
    if entity.logical == "appointment" and row.get("instancetypecode") == 2:
        changed = [k for k, v in values.items() if k not in _NOT_AN_EXCEPTION and v != row.get(k)]
        if changed:
            values["instancetypecode"] = 3


def after_write(records: Records, entity: Entity, old: Row | None, new: Row, parties: bool) -> None:
    """Keep a master's instances in step with it (``parties``: its party list was sent)."""
    if entity.logical != MASTER:
        return
    if old is None or any(old.get(f) != new.get(f) for f in PATTERN_FIELDS):
        if old is not None:
            for inst in _instances(records, new["activityid"]):
                _remove(records, inst["activityid"])
            records.storage.update(
                ENTITIES[MASTER], new["activityid"], {"deletedexceptionslist": None}
            )
        expand(records, new["activityid"])
        return
    follow = {f: new.get(f) for f in SHARED_FIELDS if old.get(f) != new.get(f)}
    if old.get("statecode") != new.get("statecode"):
        follow.update(statecode=new.get("statecode"), statuscode=new.get("statuscode"))
    for inst in _instances(records, new["activityid"], types=(2,)):
        if follow:
            records.storage.update(ENTITIES["appointment"], inst["activityid"], follow)
        if parties:
            _copy_parties(records, new["activityid"], inst["activityid"])


def before_delete(records: Records, entity: Entity, row: Row) -> None:
    """Deleting a master deletes its series; deleting an occurrence is remembered."""
    if entity.logical == MASTER:
        for inst in _instances(records, row["activityid"]):
            _remove(records, inst["activityid"])
        return
    if entity.logical == "appointment" and row.get("seriesid") and row.get("originalstartdate"):
        master = records.storage.get(ENTITIES[MASTER], row["seriesid"])
        if master is not None:
            gone = [d for d in (master.get("deletedexceptionslist") or "").split(",") if d]
            gone.append(row["originalstartdate"])
            records.storage.update(
                ENTITIES[MASTER], master["activityid"], {"deletedexceptionslist": ",".join(gone)}
            )


def expand(records: Records, master_id: str) -> None:
    """Create the instances the pattern has and the series lacks; remove plain instances it
    no longer has; set the master's span."""
    master = records.storage.get(ENTITIES[MASTER], master_id)
    if master is None:
        return
    org = records.org()
    months = int(org.get("futureexpansionwindow") or 12)
    limit = int(org.get("recurrenceexpansionsynchcreatemax") or 1000)
    try:
        pattern = Pattern.of(master)
        horizon = max(datetime.now(UTC).date(), pattern.start) + timedelta(days=31 * months)
        starts = occurrences(pattern, horizon, limit)
    except PatternError as exc:
        raise bad_request(str(exc)) from exc
    gone = set((master.get("deletedexceptionslist") or "").split(","))
    wanted = {iso(s): s for s in starts if iso(s) not in gone}
    have = {i["originalstartdate"]: i for i in _instances(records, master_id)}
    for original, inst in have.items():
        if original not in wanted and inst["instancetypecode"] == 2:
            _remove(records, inst["activityid"])
    minutes = int(master.get("duration") or 0)
    for original, start in wanted.items():
        if original not in have:
            _add_instance(records, master, start, minutes)
    span: Row = {"lastexpandedinstancedate": iso(starts[-1]) if starts else None}
    if starts:
        span.update(
            scheduledstart=iso(starts[0]),
            scheduledend=iso(starts[0] + timedelta(minutes=minutes)),
            effectivestartdate=iso(starts[0]),
            effectiveenddate=iso(starts[-1] + timedelta(minutes=minutes))
            if pattern.count or pattern.end
            else None,
        )
    records.storage.update(ENTITIES[MASTER], master_id, span)


def _add_instance(records: Records, master: Row, start: datetime, minutes: int) -> None:
    original = iso(start)
    key = str(uuid.uuid5(_INSTANCE_NS, f"{master['activityid']}:{original}"))
    row: Row = {
        **records.defaults(ENTITIES["appointment"]),
        **{f: master.get(f) for f in SHARED_FIELDS},
        "activityid": key,
        "instancetypecode": 2,
        "seriesid": master["activityid"],
        "originalstartdate": original,
        "scheduledstart": original,
        "scheduledend": iso(start + timedelta(minutes=minutes)),
        "scheduleddurationminutes": minutes,
        "statecode": master.get("statecode"),
        "statuscode": master.get("statuscode"),
    }
    for col in ("ownerid", "createdby", "modifiedby"):
        row[col], row[col + "__type"] = master.get(col), master.get(col + "__type")
    records.storage.insert(ENTITIES["appointment"], row)
    _copy_parties(records, master["activityid"], key)


def _copy_parties(records: Records, master_id: str, instance_id: str) -> None:
    party = ENTITIES["activityparty"]
    records.storage.execute("DELETE FROM activityparty WHERE activityid=?", (instance_id,))
    for p in records.storage.query("SELECT * FROM activityparty WHERE activityid=?", (master_id,)):
        copy = {k: v for k, v in p.items() if k not in ("versionnumber", "modifiedon")}
        copy.update(
            activitypartyid=str(uuid.uuid5(_INSTANCE_NS, f"{instance_id}:{p['activitypartyid']}")),
            activityid=instance_id,
            activityid__type="appointment",
        )
        records.storage.insert(party, copy)


def _instances(records: Records, master_id: str, types: tuple[int, ...] = (2, 3)) -> list[Row]:
    marks = ", ".join("?" * len(types))
    return records.storage.query(
        "SELECT activityid, instancetypecode, originalstartdate FROM appointment"
        f" WHERE seriesid=? AND instancetypecode IN ({marks})",
        (master_id, *types),
    )


def _remove(records: Records, key: str) -> None:
    """Delete an instance with its parties (a tombstone for the appointments delta)."""
    records.storage.execute("DELETE FROM activityparty WHERE activityid=?", (key,))
    records.storage.delete(ENTITIES["appointment"], key)


# -- derived columns --------------------------------------------------------------------------


def _check_status(entity: Entity, row: Row) -> None:
    """statuscode must belong to statecode; the table's default status gives way to the
    state's default (a create that names only the state)."""
    states = STATE_STATUS[entity.logical]
    state, status = row.get("statecode"), row.get("statuscode")
    if state not in states:
        raise bad_request(f"{state} is not a valid statecode for {entity.logical}.")
    if status in states[state]:
        return
    if status is None or status == entity.attributes["statuscode"].default:
        row["statuscode"] = states[state][0]
        return
    raise _bad_status(entity, state, status)


def _bad_status(entity: Entity, state: object, status: object) -> ODataError:
    label = entity.attributes["statecode"].options.get(state, state)  # type: ignore[call-overload]
    return bad_request(
        f"{status} is not a valid status code for state code {entity.logical}State {label}."
    )


def _duration_change(row: Row, values: Row) -> None:
    """A new start or end makes the duration; a duration alone moves the end."""
    if "scheduledstart" in values or "scheduledend" in values:
        values.pop("scheduleddurationminutes", None)
    elif values.get("scheduleddurationminutes") is not None and row.get("scheduledstart"):
        start = parse_utc(row["scheduledstart"])
        values["scheduledend"] = iso(
            start + timedelta(minutes=int(values["scheduleddurationminutes"]))
        )


def _minutes(start: str, end: str) -> int:
    return int((parse_utc(end) - parse_utc(start)).total_seconds() // 60)


def _duration(row: Row) -> None:
    """scheduleddurationminutes follows the start and end (an end is made from a duration)."""
    start, end = row.get("scheduledstart"), row.get("scheduledend")
    if start and not end and row.get("scheduleddurationminutes") is not None:
        end = iso(parse_utc(start) + timedelta(minutes=int(row["scheduleddurationminutes"])))
        row["scheduledend"] = end
    if start and end:
        if end < start:
            raise bad_request("The appointment's scheduledend is before its scheduledstart.")
        row["scheduleddurationminutes"] = _minutes(start, end)


def _normalise_master(row: Row) -> None:
    """starttime from the first instance's start when only that was sent; endtime and
    duration from each other; patternstartdate from starttime."""
    if not row.get("starttime") and row.get("scheduledstart"):
        row["starttime"] = row["scheduledstart"]
    if not row.get("endtime") and row.get("scheduledend") and row.get("starttime"):
        row["endtime"] = row["scheduledend"]
    start, end = row.get("starttime"), row.get("endtime")
    if start and end:
        row["duration"] = _minutes(start, end)
        if row["duration"] < 0:
            raise bad_request("The recurring appointment's endtime is before its starttime.")
    elif start and row.get("duration") is not None:
        row["endtime"] = iso(parse_utc(start) + timedelta(minutes=int(row["duration"])))
    if start and not row.get("patternstartdate"):
        row["patternstartdate"] = start[:10] + "T00:00:00Z"
    row["instancetypecode"] = 1
    if row.get("duration") is not None:
        row["scheduleddurationminutes"] = row["duration"]
