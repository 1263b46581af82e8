"""Dataverse connections of a tracked e-mail: the records it is linked to beyond its one
regarding (``connections``: ``record1id`` the e-mail activity, ``record2id`` the record).

Reads and writes in the CRM's own terms, for the outbox (add, remove: each safe to run
twice) and for the reading pane's list (on a worker).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.crm.client import CrmClient
from core.crm.errors import CrmPermanentError
from core.domain.entities import CONNECTION_TARGETS, CrmEntity, CrmEntityError, entity
from core.domain.model import RecordRef

CONNECTIONS = entity("connection").entity_set
_FORMATTED = "@OData.Community.Display.V1.FormattedValue"
_LOGICAL = "@Microsoft.Dynamics.CRM.lookuplogicalname"


class NotALinkTarget(CrmEntityError):
    """A mail cannot be linked to a record of this type."""


@dataclass(frozen=True, slots=True)
class Link:
    """One connection of an e-mail activity: its id and the record at the other end."""

    connection_id: str
    record: RecordRef


def links_of(crm: CrmClient, activity_id: str) -> list[Link]:
    """The active connections from the e-mail ``activity_id`` to records, oldest first."""
    rows = crm.query(
        CONNECTIONS,
        select=["connectionid", "_record2id_value", "createdon"],
        filter=f"_record1id_value eq {_guid(activity_id)} and statecode eq 0",
        orderby="createdon",
        annotations=True,
    )
    links = []
    for row in rows:
        other = row.get("_record2id_value")
        kind = row.get(f"_record2id_value{_LOGICAL}")
        if not other or not kind:
            continue  # a connection to nothing (its record deleted): not a link to show
        name = str(row.get(f"_record2id_value{_FORMATTED}") or "")
        links.append(
            Link(str(row["connectionid"]).lower(), RecordRef(str(kind), str(other).lower(), name))
        )
    return links


def find_link(crm: CrmClient, activity_id: str, record: RecordRef) -> str | None:
    """The id of an active connection from ``activity_id`` to ``record``, if there is one."""
    rows = crm.query(
        CONNECTIONS,
        select=["connectionid"],
        filter=(
            f"_record1id_value eq {_guid(activity_id)} and "
            f"_record2id_value eq {_guid(record.id)} and statecode eq 0"
        ),
        top=1,
    )
    for row in rows:
        return str(row["connectionid"]).lower()
    return None


def add_link(crm: CrmClient, activity_id: str, record: RecordRef) -> str:
    """Create the connection (typed binds, as Dataverse names them); returns its id. Raises
    :class:`NotALinkTarget` for a type a mail cannot be linked to."""
    target = link_target(record.entity)
    body = {
        "record1id_email@odata.bind": f"/{entity('email').entity_set}({activity_id})",
        f"record2id_{target.logical}@odata.bind": target.bind(record.id),
    }
    if record.name:
        body["name"] = record.name[:500]
    return crm.create(CONNECTIONS, body)


def remove_link(crm: CrmClient, connection_id: str) -> None:
    """Delete the connection; one that is gone already counts as removed."""
    try:
        crm.delete(CONNECTIONS, connection_id)
    except CrmPermanentError as exc:
        if not exc.not_found:
            raise


def link_target(logical: str) -> CrmEntity:
    """The table of a record a mail can be linked to; :class:`NotALinkTarget` otherwise."""
    if logical not in CONNECTION_TARGETS:
        raise NotALinkTarget(f"a mail cannot be linked to a {logical}")
    return entity(logical)


def _guid(value: str) -> str:
    """A GUID literal for ``$filter`` (only hex digits and dashes survive)."""
    return "".join(ch for ch in value if ch in "0123456789abcdefABCDEF-")


__all__ = [
    "CONNECTIONS",
    "Link",
    "NotALinkTarget",
    "add_link",
    "find_link",
    "links_of",
    "link_target",
    "remove_link",
]
