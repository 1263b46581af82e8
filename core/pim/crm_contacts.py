"""The CRM side of contacts (issue 20): Dataverse ``contacts`` read with change tracking and
written with the Web API client (``core.crm.client``).

Reading: like the address books (``core.sync.address_books``), a ``Prefer:
odata.track-changes`` read whose last page carries a delta link — the side's token — and
later only the delta (changed rows, then ``$deletedEntity`` entries). An expired or refused
token falls back to a full read (``ChangePage.full``). Dataverse refuses ``$filter`` with
change tracking, so the user's filter (``core.pim.filters``) is applied per row here: locally
for owner/status, else by asking the CRM which changed ids the filter or saved view returns.
A row that left the filter is reported like a deletion (the engine then removes only what it
created).

Columns: the field map's names that the organisation's ``contact`` table has (read once from
``EntityDefinitions``), so a CRM without e.g. ``birthdate`` still syncs the rest.
``parentcustomerid`` is the company *name*: read from the lookup's formatted value, written by
binding the account of that name when exactly one exists.

Writing: updates ``PATCH`` with ``If-Match`` (412 → :class:`VersionConflict`); creates name
the id first (:class:`~core.pim.sides.KeyedCreate`) and ``PATCH`` it without ``If-Match`` —
Dataverse's upsert — so a create repeated after a crash updates instead of duplicating.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.crm import CrmClient, CrmPermanentError
from core.crm.wire import odata_string
from core.pim.filters import PimFilter, default_filter
from core.pim.sides import (
    ChangePage,
    PimKind,
    PimRecord,
    SideChange,
    SideError,
    VersionConflict,
)

ENTITY_SET = "contacts"
KEY = "contactid"
COMPANY = "parentcustomerid"
FORMATTED = "@OData.Community.Display.V1.FormattedValue"
PAGE_SIZE = 2000
#: Changed ids asked per membership query (``contactid eq … or …``).
MEMBERSHIP_CHUNK = 50


class CrmContactsSide:
    """The CRM's contacts in the user's filter. ``fields``: the mapped column names;
    ``user_id``: the CRM user "my" means (WhoAmI when None)."""

    kind = PimKind.CONTACT

    def __init__(
        self,
        crm: CrmClient,
        fields: Iterable[str],
        *,
        filter: PimFilter | None = None,
        user_id: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.crm = crm
        self.filter = filter or default_filter(PimKind.CONTACT)
        self.wanted = tuple(fields)
        self._user_id = user_id.lower() if user_id else None
        self.page_size = page_size
        self._columns: tuple[str, ...] | None = None

    # -- what the CRM has --------------------------------------------------------------------

    @property
    def user_id(self) -> str:
        if self._user_id is None:
            self._user_id = self.crm.who_am_i().user_id
        return self._user_id

    def columns(self) -> tuple[str, ...]:
        """The mapped columns this CRM's contact table has."""
        if self._columns is None:
            path = "EntityDefinitions(LogicalName='contact')/Attributes"
            known = {
                str(a.get("LogicalName")) for a in self.crm.query(path, select=["LogicalName"])
            }
            self._columns = tuple(f for f in self.wanted if f in known)
        return self._columns

    def _select(self) -> list[str]:
        cols = [KEY, "statecode", "_ownerid_value"]
        for c in self.columns():
            cols.append(f"_{c}_value" if c == COMPANY else c)
        return cols

    def _record(self, row: Mapping[str, Any]) -> PimRecord:
        fields: dict[str, Any] = {}
        for c in self.columns():
            if c == COMPANY:
                fields[c] = row.get(f"_{COMPANY}_value{FORMATTED}") or None
            else:
                fields[c] = row.get(c)
        return PimRecord(self.kind, fields)

    # -- reading -----------------------------------------------------------------------------

    def changes(self, token: str | None) -> ChangePage:
        if token:
            try:
                return self._read(token)
            except CrmPermanentError:
                pass  # expired or refused delta token: read everything again
        return self._read(None)

    def _read(self, link: str | None) -> ChangePage:
        rows: list[dict[str, Any]] = []
        deleted: list[str] = []
        new_link = ""
        for page in self.crm.track_changes_pages(
            ENTITY_SET,
            self._select(),
            link,
            page_size=self.page_size,
            annotations="OData.Community.Display.V1.FormattedValue",
        ):
            rows.extend(page.rows)
            deleted.extend(page.deleted)
            new_link = page.delta_link or new_link
        full = link is None
        inside = self._in_filter(rows, full=full)
        changes: list[SideChange] = []
        for row in rows:
            key = str(row[KEY]).lower()
            if key in inside:
                changes.append(SideChange(key, self._record(row), str(row.get("@odata.etag", ""))))
            elif not full:
                changes.append(SideChange(key, None))
        changes.extend(SideChange(k, None) for k in deleted)
        return ChangePage(changes, new_link, full=full)

    def _in_filter(self, rows: Sequence[Mapping[str, Any]], *, full: bool) -> set[str]:
        """The ids of ``rows`` that the filter keeps."""
        if self.filter.local:
            user = self.user_id if self.filter.owner == "me" else ""
            return {str(r[KEY]).lower() for r in rows if self.filter.matches(r, user)}
        ids = [str(r[KEY]).lower() for r in rows]
        if self.filter.view is not None or full:
            members = self._members(self.filter.query_params(self.user_id))
            return {i for i in ids if i in members}
        found: set[str] = set()
        clause = self.filter.odata(self.user_id)
        for start in range(0, len(ids), MEMBERSHIP_CHUNK):
            chunk = ids[start : start + MEMBERSHIP_CHUNK]
            these = " or ".join(f"{KEY} eq {i}" for i in chunk)
            found |= self._members({"$filter": f"({clause}) and ({these})" if clause else these})
        return found

    def _members(self, params: Mapping[str, str]) -> set[str]:
        """Ids a query with these options returns (a view's options included)."""
        clause = params.get("$filter")
        views = {k: v for k, v in params.items() if k != "$filter"}
        path = ENTITY_SET
        if views:  # savedQuery=<id> / userQuery=<id>: not an option query() knows
            path += "?" + "&".join(f"{k}={v}" for k, v in views.items())
        rows = self.crm.query(path, select=[KEY], filter=clause, page_size=5000)
        return {str(r[KEY]).lower() for r in rows}

    def get(self, key: str) -> SideChange | None:
        try:
            row = self.crm.get(ENTITY_SET, key, select=self._select(), annotations=True)
        except CrmPermanentError as exc:
            if exc.not_found:
                return None
            raise SideError(str(exc), retryable=False) from exc
        return SideChange(key, self._record(row), str(row.get("@odata.etag", "")))

    def find_by_email(self, address: str) -> SideChange | None:
        """My active contact (in the filter) with this primary e-mail address, if any."""
        clause = f"emailaddress1 eq {odata_string(address)}"
        for row in self.crm.query(
            ENTITY_SET,
            select=self._select(),
            filter=clause,
            orderby="createdon asc",
            annotations=True,
        ):
            if not self.filter.local or self.filter.matches(row, self.user_id):
                key = str(row[KEY]).lower()
                return SideChange(key, self._record(row), str(row.get("@odata.etag", "")))
        return None

    # -- writing -----------------------------------------------------------------------------

    def _body(self, record: PimRecord) -> dict[str, Any]:
        body: dict[str, Any] = {}
        columns = set(self.columns())
        for name, value in record.fields.items():
            if name not in columns:
                continue  # not a column here, or an engine field (CRM id, Track)
            if name == COMPANY:
                account = self._account(value)
                if account is not None:
                    body["parentcustomerid_account@odata.bind"] = f"/accounts({account})"
                continue
            body[name] = value
        return body

    def _account(self, name: Any) -> str | None:
        if not name:
            return None
        rows = list(
            self.crm.query(
                "accounts", select=["accountid"], filter=f"name eq {odata_string(str(name))}", top=2
            )
        )
        return str(rows[0]["accountid"]).lower() if len(rows) == 1 else None

    def put(self, key: str | None, record: PimRecord, version: str | None) -> tuple[str, str]:
        if key is None:
            key = self.new_key()
            return key, self.create_at(key, record)
        body = self._body(record)
        if body:
            try:
                self.crm.update(ENTITY_SET, key, body, if_match=version or "*")
            except CrmPermanentError as exc:
                raise _side_error(exc, key) from exc
        return key, ""  # the new version arrives with the next delta (our own change)

    def new_key(self) -> str:
        return str(uuid.uuid4())

    def create_at(self, key: str, record: PimRecord) -> str:
        try:
            self.crm.update(ENTITY_SET, key, self._body(record), if_match=None)
        except CrmPermanentError as exc:
            raise _side_error(exc, key) from exc
        return ""

    def delete(self, key: str, version: str | None) -> None:
        try:
            self.crm.delete(ENTITY_SET, key)
        except CrmPermanentError as exc:
            if not exc.not_found:
                raise _side_error(exc, key) from exc


def _side_error(exc: CrmPermanentError, key: str) -> SideError:
    if exc.precondition_failed:
        return VersionConflict(f"contact {key} changed in the CRM")
    return SideError(f"contact {key}: {exc}", retryable=False)


__all__ = ["CrmContactsSide"]
