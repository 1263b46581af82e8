"""Record writes and access rules: JSON bodies → column values, ``@odata.bind`` lookups,
deep insert of activity parties, owners, and who may read or write what.

Rules (issue 3, "Security"): customer and reference records are readable organisation-wide;
activities (and their parties and attachments) only by their owner and by the users who take
part in them; writing a record owned by someone else is 403. An administrator
(``tbx_isadministrator``) may change organisation settings, other users' settings and
mailboxes, and records that are not activities — never someone else's e-mail.

Issue 18: a user's privileged columns (everything but :data:`SELF_EDITABLE_USER_COLUMNS`) are
an administrator's to change, user addresses are unique, and a lookup may only be bound to a
record the caller can read.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import pim_records
from .entities import (
    ACTIVITY_CHILD_PARENT,
    ACTIVITY_ENTITIES,
    BY_SET,
    ENTITIES,
    Attribute,
    Entity,
)
from .errors import ODataError, bad_request, conflict, forbidden, not_found
from .storage import Row, Storage

GUID_RE = re.compile(
    r"^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12})\}?$"
)
BIND_RE = re.compile(r"(?:^|/)([A-Za-z_][A-Za-z0-9_]*)\(\{?([0-9a-fA-F-]{36})\}?\)\s*$")

#: The systemuser columns a non-administrator may change on their own record. An allow-list,
#: so that a column added later is privileged until someone decides otherwise: the
#: administrator flag, the addresses (party resolution and sign-in use them), the business
#: unit, the disabled state and the mailbox approval are an administrator's (issue 18).
SELF_EDITABLE_USER_COLUMNS = frozenset({"firstname", "lastname", "fullname", "title"})


#: Columns of a user's settings and mailbox that are an administrator's (issue 18): the
#: tracking-token user number (a colleague's number would make the CRM correlate their
#: replies with my mail), and the mailbox's address and owner (sign-in, party resolution and
#: the router find a user's mail by them). Everything else there is the user's own option.
ADMIN_ONLY_COLUMNS = {
    "usersettings": frozenset({"trackingtokenid", "businessunitid", "systemuserid"}),
    "mailbox": frozenset(
        {
            "emailaddress",
            "regardingobjectid",
            "isforwardmailbox",
            "emailserverprofile",
            "processingstatecode",
            "lastsuccessfulsynccompletedon",
            "tbx_lastrunresult",
        }
    ),
}

#: What the router's application user (issue 19) may change besides what any user may: the
#: processing state of the mailboxes it syncs. Never a user's columns or another setting.
APPLICATION_COLUMNS = {
    "mailbox": frozenset(
        {"processingstatecode", "lastsuccessfulsynccompletedon", "tbx_lastrunresult"}
    ),
}

#: Tables only an administrator writes (the organisation's mail configuration, issue 19);
#: ``tracelog`` alerts are also written by the application user that raises them.
ADMIN_WRITTEN = frozenset(
    {"emailserverprofile", "convertrule", "convertruleitem", "tracelog", "savedquery"}
)
#: Tables only their owner (and administrators) read whatever the server's settings: personal
#: views (issue 20).
ALWAYS_OWNER_ONLY = frozenset({"userquery"})
#: Tables only an administrator and the application user read (mailbox alerts).
ADMIN_READ = frozenset({"tracelog"})
#: Tables whose writes the PIM rules follow up (issue 20: a recurring series' instances).
PIM_SERIES = frozenset({"recurringappointmentmaster"})


def privileged_changes(logical: str, row: Row | None, values: Row) -> list[str]:
    """The columns of ``values`` a non-administrator may not change on ``logical``: on a
    user, all but :data:`SELF_EDITABLE_USER_COLUMNS`; on settings and mailboxes, those in
    :data:`ADMIN_ONLY_COLUMNS`. A column sent with its current value is no change."""
    if logical == "systemuser":
        privileged = [n for n in values if n not in SELF_EDITABLE_USER_COLUMNS]
    else:
        admin_only = ADMIN_ONLY_COLUMNS.get(logical, frozenset())
        privileged = [n for n in values if n in admin_only]
    return sorted(
        n
        for n in privileged
        if not n.endswith("__type") and (row is None or values[n] != row.get(n))
    )


@dataclass(frozen=True)
class Caller:
    """The authenticated user a request acts as."""

    user_id: str
    business_unit_id: str
    is_admin: bool = False
    #: An application user (``systemuser.applicationid`` set): the organisation's
    #: server-side synchronisation, which reads and writes every user's mail (issue 19).
    is_application: bool = False


def new_guid() -> str:
    return str(uuid.uuid4())


def parse_guid(text: str) -> str | None:
    m = GUID_RE.match(text.strip())
    return m.group(1).lower() if m else None


def normalise_datetime(value: str) -> str:
    """Accept ISO 8601 date or date-time (``Z`` or offset); store as UTC ``…Z``."""
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.strptime(text, "%Y-%m-%d").strftime("%Y-%m-%dT00:00:00Z")
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad_request(f"'{value}' is not a valid date-time value.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def coerce(entity: Entity, attr: Attribute, value: Any) -> Any:
    """JSON value → stored value for one attribute, or a 400 that names the attribute."""
    if value is None:
        return None
    t = attr.type

    def wrong(kind: str) -> ODataError:
        return bad_request(
            f"Cannot convert the literal '{value}' to the expected type "
            f"'{kind}' for attribute '{attr.name}' of entity '{entity.logical}'."
        )

    if t in ("string", "memo"):
        if not isinstance(value, str):
            raise wrong("Edm.String")
        if attr.max_length and len(value) > attr.max_length and t == "string":
            raise bad_request(
                f"A validation error occurred. The length of the '{attr.name}' "
                f"attribute of the '{entity.logical}' entity exceeded the maximum "
                f"allowed length of '{attr.max_length}'."
            )
        return value
    if t == "bool":
        if not isinstance(value, bool):
            raise wrong("Edm.Boolean")
        return int(value)
    if t in ("int", "bigint", "picklist", "state", "status"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("Edm.Int32")
        if attr.options and value not in attr.options:
            raise bad_request(
                f"{value} is not a valid value for attribute '{attr.name}' of "
                f"entity '{entity.logical}'."
            )
        return value
    if t in ("money", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("Edm.Decimal")
        return float(value)
    if t == "datetime":
        if not isinstance(value, str):
            raise wrong("Edm.DateTimeOffset")
        return normalise_datetime(value)
    if t == "guid":
        guid = parse_guid(value) if isinstance(value, str) else None
        if guid is None:
            raise wrong("Edm.Guid")
        return guid
    raise bad_request(
        f"Attribute '{attr.name}' cannot be set directly; use '{attr.name}@odata.bind'."
    )


def provision_user(storage: Storage, user: Row, mailbox_id: str | None = None) -> None:
    """What Dataverse creates with every user: a usersettings row (with the next free
    tracking-token user number) and a mailbox routed through the client, as Trackbox
    expects for Pending Send."""
    uid = user["systemuserid"]
    with storage.transaction():
        settings = ENTITIES["usersettings"]
        if storage.get(settings, uid) is None:
            number = (
                int(storage.scalar("SELECT COALESCE(MAX(trackingtokenid), 0) FROM usersettings"))
                + 1
            )
            storage.insert(
                settings,
                {
                    **Records.defaults(settings),
                    "systemuserid": uid,
                    "trackingtokenid": number,
                    "businessunitid": user.get("businessunitid"),
                    "businessunitid__type": "businessunit" if user.get("businessunitid") else None,
                    "createdby": uid,
                    "createdby__type": "systemuser",
                    "modifiedby": uid,
                    "modifiedby__type": "systemuser",
                },
            )
        if user.get("defaultmailbox") or user.get("applicationid"):
            return  # an application user has no mail of its own to process
        mailbox = ENTITIES["mailbox"]
        box = mailbox_id or new_guid()
        storage.insert(
            mailbox,
            {
                **Records.defaults(mailbox),
                "mailboxid": box,
                "name": user.get("fullname") or user.get("internalemailaddress"),
                "emailaddress": user.get("internalemailaddress"),
                "regardingobjectid": uid,
                "regardingobjectid__type": "systemuser",
                "ownerid": uid,
                "ownerid__type": "systemuser",
                "createdby": uid,
                "createdby__type": "systemuser",
                "modifiedby": uid,
                "modifiedby__type": "systemuser",
            },
        )
        storage.update(
            ENTITIES["systemuser"], uid, {"defaultmailbox": box, "defaultmailbox__type": "mailbox"}
        )


class Records:
    """Record operations with the organisation's rules, shared by CRUD, actions and $batch."""

    def __init__(self, storage: Storage, owner_only: frozenset[str] = frozenset()) -> None:
        self.storage = storage
        #: user-owned entities that only their owner (and administrators) may read
        self.owner_only = owner_only | ALWAYS_OWNER_ONLY

    # -- look-ups ---------------------------------------------------------------------------

    def find_activity(self, key: str) -> tuple[Entity, Row] | None:
        for logical in ACTIVITY_ENTITIES:
            ent = ENTITIES[logical]
            row = self.storage.get(ent, key)
            if row is not None:
                return ent, row
        return None

    def resolve_bind(
        self, caller: Caller, entity: Entity, attr: Attribute, target_hint: str | None, ref: Any
    ) -> tuple[str, str]:
        """``/contacts(<guid>)`` → (guid, target logical name), checked against the lookup.

        A record the caller may not read is answered 404 exactly like a missing one — the
        answer a direct GET gives — so a bind cannot be used to learn that a private record
        exists, nor to hang one's own records onto it (issue 18)."""
        if not isinstance(ref, str) or not (m := BIND_RE.search(ref.strip())):
            raise bad_request(f"Invalid @odata.bind value for '{attr.name}': {ref!r}.")
        set_name, key = m.group(1), m.group(2).lower()
        if set_name in ("activitypointers",):
            found = self.find_activity(key)
            if found is None or not self.can_read(caller, found[0], found[1]):
                raise not_found("activitypointer", key)
            target = found[0].logical
        else:
            target_ent = BY_SET.get(set_name)
            if target_ent is None:
                raise bad_request(f"Resource not found for the segment '{set_name}'.")
            target = target_ent.logical
        if target not in attr.targets or (target_hint and target_hint != target):
            raise bad_request(
                f"'{target}' is not a valid target for the lookup '{attr.name}' "
                f"of entity '{entity.logical}'."
            )
        if set_name != "activitypointers":
            row = self.storage.get(ENTITIES[target], key)
            if row is None or not self.can_read(caller, ENTITIES[target], row):
                raise not_found(target, key)
        return key, target

    # -- body → columns ---------------------------------------------------------------------

    def parse_body(
        self, caller: Caller, entity: Entity, body: Any
    ) -> tuple[Row, dict[str, list[Any]]]:
        """Split a JSON body into column values and deep-insert collections; binds are
        resolved as ``caller``."""
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        values: Row = {}
        children: dict[str, list[Any]] = {}
        for name, value in body.items():
            if name.startswith("@odata.") or name.startswith("@"):
                continue
            if name.endswith("@odata.bind"):
                nav = name[: -len("@odata.bind")]
                found = entity.lookup_for_nav(nav)
                if found is None:
                    raise bad_request(
                        f"An undeclared property '{nav}' which only has property "
                        f"annotations in the payload but no property value was "
                        f"found in the payload."
                    )
                attr, target = found
                if value is None:
                    values[attr.name], values[attr.name + "__type"] = None, None
                    continue
                key, target = self.resolve_bind(caller, entity, attr, target, value)
                values[attr.name], values[attr.name + "__type"] = key, target
                continue
            if "@" in name:
                continue  # instance annotations sent back by clients
            if name in entity.collection_navs:
                if not isinstance(value, list):
                    raise bad_request(f"Navigation property '{name}' must be an array.")
                children[name] = value
                continue
            found_attr = entity.attributes.get(name)
            if found_attr is None and name.startswith("_") and name.endswith("_value"):
                found_attr = entity.attributes.get(name[1:-6])
            if found_attr is None:
                raise bad_request(
                    f"The property '{name}' does not exist on type "
                    f"'Microsoft.Dynamics.CRM.{entity.logical}'. Make sure to "
                    f"only use property names that are defined by the type."
                )
            attr = found_attr
            if attr.is_lookup:
                if value is None:
                    values[attr.name], values[attr.name + "__type"] = None, None
                    continue
                raise bad_request(f"Set the lookup '{attr.name}' with '{attr.name}@odata.bind'.")
            if attr.name in ("createdon", "modifiedon", "versionnumber"):
                continue
            values[attr.name] = coerce(entity, attr, value)
        return values, children

    # -- access -----------------------------------------------------------------------------

    def can_read(self, caller: Caller, entity: Entity, row: Row) -> bool:
        if caller.is_application:
            return True
        if entity.logical in ADMIN_READ:
            return caller.is_admin
        if entity.logical == "queueitem":
            found = self.find_activity(row.get("objectid") or "")
            return found is None or self.can_read(caller, found[0], found[1])
        if entity.is_activity:
            return row.get("ownerid") == caller.user_id or self._is_party(row[entity.key], caller)
        if entity.logical in ACTIVITY_CHILD_PARENT:
            parent_attr = ACTIVITY_CHILD_PARENT[entity.logical]
            found = self.find_activity(row.get(parent_attr) or "")
            return found is not None and self.can_read(caller, found[0], found[1])
        if entity.logical == "usersettings":
            return caller.is_admin or row["systemuserid"] == caller.user_id
        if entity.logical in self.owner_only:
            return caller.is_admin or row.get("ownerid") == caller.user_id
        return True

    def _is_party(self, activity_id: str, caller: Caller) -> bool:
        return bool(
            self.storage.scalar(
                "SELECT 1 FROM activityparty WHERE activityid=? AND partyid=? LIMIT 1",
                (activity_id, caller.user_id),
            )
        )

    def check_write(self, caller: Caller, entity: Entity, row: Row | None) -> None:
        """Raise 403 unless ``caller`` may change (or create, when ``row`` is None) it."""
        name = entity.logical
        if name in ADMIN_WRITTEN:
            if caller.is_admin or (name == "tracelog" and caller.is_application):
                return
            raise forbidden(
                f"Principal user (Id={caller.user_id}) is missing "
                f"prv{'Write' if row else 'Create'}{name} privilege."
            )
        if name in ("organization", "businessunit", "systemuser", "equipment"):
            if caller.is_admin or (
                name == "systemuser" and row is not None and row["systemuserid"] == caller.user_id
            ):
                return
            raise forbidden(
                f"Principal user (Id={caller.user_id}) is missing "
                f"prv{'Write' if row else 'Create'}{name} privilege."
            )
        if name == "usersettings":
            if row is not None and (caller.is_admin or row["systemuserid"] == caller.user_id):
                return
            if row is None and caller.is_admin:
                return
            raise forbidden("You can only change your own user settings.")
        if name in ACTIVITY_CHILD_PARENT:
            if row is None:
                return  # checked against the parent activity on create
            parent_attr = ACTIVITY_CHILD_PARENT[name]
            found = self.find_activity(row.get(parent_attr) or "")
            if found is not None:
                self.check_write(caller, found[0], found[1])
            return
        if row is None:
            return
        if caller.is_application and name in (
            "mailbox",
            "queueitem",
            "incident",
            *ACTIVITY_ENTITIES,
        ):
            return  # the router files mail, cases and queue items for everyone
        owner = row.get("ownerid")
        if owner and owner != caller.user_id and not (caller.is_admin and not entity.is_activity):
            raise forbidden(
                f"Principal user (Id={caller.user_id}) is missing "
                f"prvWrite{name} privilege on record {row[entity.key]} owned by "
                f"another user."
            )

    def check_user_columns(
        self, caller: Caller, entity: Entity, row: Row | None, values: Row
    ) -> None:
        """403 when a non-administrator changes a privileged column of a user, of their
        settings or of their mailbox (issue 18): see :func:`privileged_changes`.

        Only a change is refused: sending back a column's current value (a client that PATCHes
        what it read) is not a write of it."""
        if caller.is_admin:
            return
        changed = privileged_changes(entity.logical, row, values)
        if caller.is_application:
            allowed = APPLICATION_COLUMNS.get(entity.logical, frozenset())
            changed = [n for n in changed if n not in allowed]
        if changed:
            raise forbidden(
                f"Principal user (Id={caller.user_id}) is missing prvWrite{entity.logical} "
                f"privilege for {', '.join(changed)}: only an administrator may change it."
            )

    def check_owner_on_create(self, caller: Caller, entity: Entity, values: Row) -> None:
        """403 when anyone but the application user creates an activity owned by someone
        else: filing mail on behalf of its owner is server-side synchronisation's privilege
        (issue 19), and an activity's owner reads it."""
        owner = values.get("ownerid")
        if entity.is_activity and owner and owner != caller.user_id and not caller.is_application:
            raise forbidden(
                f"Principal user (Id={caller.user_id}) is missing prvAssign{entity.logical} "
                "privilege: only the organisation's server-side synchronisation files e-mail "
                "for another user."
            )

    def check_unique_address(self, entity: Entity, row: Row) -> None:
        """409 when another user already has this ``internalemailaddress``: sign-in and party
        resolution find users by it, so a shared address would hand one user the other's
        mail (issue 18). Compared as sign-in does: trimmed, case-insensitive."""
        if entity.logical != "systemuser":
            return
        address = (row.get("internalemailaddress") or "").strip()
        if not address:
            return
        taken = self.storage.scalar(
            "SELECT 1 FROM systemuser WHERE lower(trim(internalemailaddress)) = lower(?)"
            " AND systemuserid IS NOT ? LIMIT 1",
            (address, row.get("systemuserid")),
        )
        if taken:
            raise conflict(
                f"A user with the e-mail address '{address}' already exists; "
                "a user's address must be unique."
            )

    # -- create / update / delete -------------------------------------------------------------

    @staticmethod
    def defaults(entity: Entity) -> Row:
        return {a.name: a.default for a in entity.attributes.values() if a.default is not None}

    def create(
        self,
        caller: Caller,
        entity: Entity,
        body: Any,
        key: str | None = None,
        *,
        trusted: Row | None = None,
    ) -> Row:
        """Create a record from a client body (plus ``trusted`` server-set columns)."""
        if entity.read_only_set or entity.logical == "organization":
            raise ODataError(405, "0x80040203", f"Create is not supported for {entity.logical}.")
        values, children = self.parse_body(caller, entity, body)
        self.check_write(caller, entity, None)
        self.check_user_columns(caller, entity, None, values)
        self.check_owner_on_create(caller, entity, values)
        values.update(trusted or {})
        if entity.key in values and key is None:
            key = values[entity.key]
        with self.storage.transaction():
            row = self.defaults(entity)
            row.update(values)
            row[entity.key] = key or new_guid()
            if self.storage.get(entity, row[entity.key]) is not None:
                raise ODataError(
                    412 if key else 400,
                    "0x80040237",
                    "A record with matching key values already exists.",
                )
            row["createdby"] = row["modifiedby"] = caller.user_id
            row["createdby__type"] = row["modifiedby__type"] = "systemuser"
            if entity.ownership == "user" and not row.get("ownerid"):
                row["ownerid"], row["ownerid__type"] = caller.user_id, "systemuser"
            self._derive(entity, row)
            self._check_parent(caller, entity, row)
            self._check_state(entity, row)
            self.check_unique_address(entity, row)
            stored = self.storage.insert(entity, row)
            if entity.logical == "systemuser":
                provision_user(self.storage, stored)
                stored = self.storage.get(entity, stored[entity.key]) or stored
            if children:
                self._create_children(caller, entity, stored, children, replace=False)
                stored = self.storage.get(entity, stored[entity.key]) or stored
            if entity.logical in PIM_SERIES:
                pim_records.after_write(self, entity, None, stored, bool(children))
                stored = self.storage.get(entity, stored[entity.key]) or stored
            return stored

    def _create_children(
        self,
        caller: Caller,
        entity: Entity,
        parent: Row,
        children: dict[str, list[Any]],
        *,
        replace: bool,
    ) -> None:
        for nav_name, items in children.items():
            nav = entity.collection_navs[nav_name]
            child = ENTITIES[nav.child]
            if replace:
                self.storage.execute(
                    f'DELETE FROM "{child.logical}" WHERE "{nav.child_attr}"=?',
                    (parent[entity.key],),
                )
            for item in items:
                if not isinstance(item, dict):
                    raise bad_request(f"Items of '{nav_name}' must be objects.")
                self.create(
                    caller,
                    child,
                    item,
                    trusted={
                        nav.child_attr: parent[entity.key],
                        nav.child_attr + "__type": entity.logical,
                        **(
                            {"objecttypecode": entity.logical}
                            if nav.child == "activitymimeattachment"
                            else {}
                        ),
                    },
                )
        self.after_children(entity, parent[entity.key])

    def update(
        self, caller: Caller, entity: Entity, key: str, body: Any, *, trusted: Row | None = None
    ) -> Row:
        if entity.read_only_set:
            raise ODataError(
                405,
                "0x80040203",
                f"{entity.set_name} is read-only; change the activity through its own entity set.",
            )
        row = self.storage.get(entity, key)
        if row is None or not self.can_read(caller, entity, row):
            raise not_found(entity.logical, key)
        values, children = self.parse_body(caller, entity, body)
        values.pop(entity.key, None)
        self.check_write(caller, entity, row)
        self.check_user_columns(caller, entity, row, values)
        values.update(trusted or {})
        pim_records.before_update(entity, row, values)
        if entity.is_activity and row.get("statecode") in (1, 2) and not trusted:
            changing_state = "statecode" in values or "statuscode" in values
            if not changing_state:
                raise bad_request(
                    "This activity is closed and cannot be edited; reopen it by "
                    "setting statecode and statuscode first."
                )
        merged = {**row, **values}
        self._derive(entity, merged)
        self._check_state(entity, merged)
        self._check_parent(caller, entity, merged)
        # Whatever deriving and the state rules changed is saved too (a statecode alone
        # brings its default statuscode, as in Dataverse).
        values.update({k: v for k, v in merged.items() if k not in values and v != row.get(k)})
        values["modifiedby"], values["modifiedby__type"] = caller.user_id, "systemuser"
        with self.storage.transaction():
            if "internalemailaddress" in values:  # other edits work even on a legacy clash
                self.check_unique_address(entity, merged)
            updated = self.storage.update(entity, key, values)
            assert updated is not None
            if children:
                # a party list in a PATCH replaces the activity's parties, as in Dataverse
                self._create_children(caller, entity, updated, children, replace=True)
                updated = self.storage.get(entity, key) or updated
            if entity.logical in PIM_SERIES:
                pim_records.after_write(self, entity, row, updated, bool(children))
                updated = self.storage.get(entity, key) or updated
            if entity.logical in ACTIVITY_CHILD_PARENT:
                parent_attr = ACTIVITY_CHILD_PARENT[entity.logical]
                parent = updated.get(parent_attr)
                if parent:
                    self.after_children(
                        ENTITIES[updated.get(parent_attr + "__type") or "email"], parent
                    )
            return updated

    def delete(self, caller: Caller, entity: Entity, key: str) -> None:
        if entity.read_only_set:
            raise ODataError(
                405,
                "0x80040203",
                f"{entity.set_name} is read-only; delete the activity through its own entity set.",
            )
        row = self.storage.get(entity, key)
        if row is None or not self.can_read(caller, entity, row):
            raise not_found(entity.logical, key)
        if entity.logical in ("organization", "usersettings"):
            raise ODataError(405, "0x80040203", f"Delete is not supported for {entity.logical}.")
        self.check_write(caller, entity, row)
        with self.storage.transaction():
            pim_records.before_delete(self, entity, row)
            if entity.is_activity:
                # cascade: parties and attachments belong to the activity
                self.storage.execute("DELETE FROM activityparty WHERE activityid=?", (key,))
                self.storage.execute("DELETE FROM activitymimeattachment WHERE objectid=?", (key,))
            self.storage.delete(entity, key)
            if entity.email_attrs:
                # parties keep the address but say the record is gone, as in Dataverse
                self.storage.execute(
                    "UPDATE activityparty SET ispartydeleted = 1 WHERE partyid = ?", (key,)
                )
            if entity.logical in ACTIVITY_CHILD_PARENT:
                parent_attr = ACTIVITY_CHILD_PARENT[entity.logical]
                if row.get(parent_attr):
                    self.after_children(
                        ENTITIES[row.get(parent_attr + "__type") or "email"], row[parent_attr]
                    )

    # -- derived columns ----------------------------------------------------------------------

    def org(self) -> Row:
        rows = self.storage.query("SELECT * FROM organization LIMIT 1")
        return rows[0] if rows else {}

    def _derive(self, entity: Entity, row: Row) -> None:
        if entity.logical == "email":
            from .correlate import derived_columns

            row.update(derived_columns(self.org(), row))
        if entity.logical in ("incident", "queueitem"):
            from . import queues

            if entity.logical == "incident":
                queues.derive_incident(self.storage, row)
            else:
                queues.derive_queueitem(self, row)
        if entity.logical == "organization":
            from .correlate import org_settings

            org_settings(row)  # 400 with the key and value when a setting is invalid
        if "fullname" in entity.attributes and entity.logical != "activityparty":
            parts = [row.get("firstname"), row.get("lastname")]
            full = " ".join(p for p in parts if p)
            if full:
                row["fullname"] = full
        if entity.logical == "activityparty":
            row["partyidname"] = self.primary_name(row.get("partyid__type"), row.get("partyid"))
            if row.get("partyid") is None and not row.get("addressused"):
                raise bad_request("An activity party needs a partyid or an addressused.")
            if row.get("partyid") and not row.get("addressused"):
                row["addressused"] = self.primary_email(row["partyid__type"], row["partyid"])
        pim_records.derive(entity, row)
        if entity.logical == "activitymimeattachment":
            body = row.get("body")
            if body:
                try:
                    row["filesize"] = len(base64.b64decode(body, validate=True))
                except ValueError as exc:
                    raise bad_request("The attachment body must be base64.") from exc
            else:
                row["filesize"] = 0

    def _check_state(self, entity: Entity, row: Row) -> None:
        state, status = entity.attributes.get("statecode"), entity.attributes.get("statuscode")
        if state is None or status is None:
            return
        states = {
            "email": {0: (1, 8), 1: (2, 3, 4, 6, 7), 2: (5,)},
            "incident": {0: (1, 2, 3, 4), 1: (5, 1000), 2: (6, 2000)},
        }
        if entity.logical in states and row.get("statecode") is not None:
            allowed = states[entity.logical].get(row["statecode"], ())
            if row.get("statuscode") not in allowed:
                row["statuscode"] = allowed[0] if allowed else row.get("statuscode")

    def _check_parent(self, caller: Caller, entity: Entity, row: Row) -> None:
        """Parties and attachments may only be added to activities the caller may write."""
        if entity.logical not in ACTIVITY_CHILD_PARENT:
            return
        parent_attr = ACTIVITY_CHILD_PARENT[entity.logical]
        parent = row.get(parent_attr)
        if not parent:
            raise bad_request(f"'{parent_attr}' is required for {entity.logical}.")
        found = self.find_activity(parent)
        if found is None:
            raise not_found("activitypointer", parent)
        self.check_write(caller, found[0], found[1])

    def after_children(self, entity: Entity, key: str) -> None:
        """Recompute e-mail columns derived from parties/attachments (sender, torecipients,
        attachmentcount), as Dataverse does on save."""
        if entity.logical != "email":
            return
        parties = self.storage.query(
            "SELECT addressused, participationtypemask FROM activityparty WHERE activityid=?"
            " ORDER BY rowid",
            (key,),
        )
        senders = [
            p["addressused"]
            for p in parties
            if p["participationtypemask"] == 1 and p["addressused"]
        ]
        to: list[str] = []
        for p in parties:
            if p["participationtypemask"] == 2 and p["addressused"] and p["addressused"] not in to:
                to.append(p["addressused"])
        count = self.storage.scalar(
            "SELECT COUNT(*) FROM activitymimeattachment WHERE objectid=?", (key,)
        )
        self.storage.update(
            ENTITIES["email"],
            key,
            {
                "sender": senders[0] if senders else None,
                "torecipients": ";".join(to)[:500] or None,
                "attachmentcount": count,
            },
        )

    def primary_name(self, logical: str | None, key: str | None) -> str | None:
        if not logical or not key or logical not in ENTITIES:
            return None
        ent = ENTITIES[logical]
        if not ent.primary_name:
            return None
        value = self.storage.scalar(
            f'SELECT "{ent.primary_name}" FROM "{ent.logical}" WHERE "{ent.key}"=?', (key,)
        )
        return None if value is None else str(value)

    def primary_email(self, logical: str | None, key: str | None) -> str | None:
        if not logical or not key or logical not in ENTITIES:
            return None
        ent = ENTITIES[logical]
        if not ent.email_attrs:
            return None
        value = self.storage.scalar(
            f'SELECT "{ent.email_attrs[0]}" FROM "{ent.logical}" WHERE "{ent.key}"=?', (key,)
        )
        return None if value is None else str(value)
