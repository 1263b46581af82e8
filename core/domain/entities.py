"""The CRM entity table: the one place that says how each Dataverse table the client and the
emulator use is named and addressed (reference section 1).

Everything that needs an entity set, a primary key, a primary name or e-mail column, a label,
a party navigation or a regarding bind reads it here, so the address books, the regarding
picker, Pending Send, the outbox and the emulator cannot drift apart. Pure data: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class CrmEntityError(LookupError):
    """A logical name or entity set this table cannot serve as asked."""


class UnknownEntity(CrmEntityError, KeyError):
    """No such entity in the table (a ``KeyError`` too, as a dictionary look-up would be)."""

    def __str__(self) -> str:  # KeyError would show the repr of its argument
        return str(self.args[0]) if self.args else ""


class NotARegardingTarget(CrmEntityError):
    """The entity exists but an e-mail cannot be filed regarding it."""


@dataclass(frozen=True, slots=True)
class CrmEntity:
    """One Dataverse table as the Web API names it.

    ``email_columns`` lists the e-mail columns, primary first (``addressusedemailcolumnnumber``
    counts from 1 in this order). ``label`` and ``plural`` are the words shown to people.
    ``party``: it can be an activity party (``partyid_<logical>``); ``regarding``: it can be the
    regarding record of an e-mail (``regardingobjectid_<logical>_email``).
    """

    logical: str
    entity_set: str
    key: str
    name_column: str | None = None
    email_columns: tuple[str, ...] = ()
    label: str = ""
    plural: str = ""
    party: bool = False
    regarding: bool = False

    @property
    def primary_email(self) -> str | None:
        """The column address books and party resolution read, if the table has e-mail."""
        return self.email_columns[0] if self.email_columns else None

    @property
    def party_nav(self) -> str | None:
        """The activity party's single-valued navigation to this table."""
        return f"partyid_{self.logical}" if self.party else None

    @property
    def regarding_bind(self) -> str | None:
        """The e-mail's single-valued navigation for a regarding record of this table."""
        return f"regardingobjectid_{self.logical}_email" if self.regarding else None

    def bind(self, record_id: str) -> str:
        """The ``@odata.bind`` value that points at one record: ``/contacts(<id>)``."""
        return f"/{self.entity_set}({record_id})"


def _people(
    logical: str,
    entity_set: str,
    key: str,
    name_column: str,
    email_columns: tuple[str, ...],
    label: str,
    plural: str,
    *,
    regarding: bool = False,
) -> CrmEntity:
    """An e-mail-enabled table: its records can be activity parties."""
    return CrmEntity(
        logical,
        entity_set,
        key,
        name_column,
        email_columns,
        label,
        plural,
        party=True,
        regarding=regarding,
    )


_EMAILS_1_TO_3 = ("emailaddress1", "emailaddress2", "emailaddress3")

#: In the reference's order; the address books sync their entities in this order.
TABLE: tuple[CrmEntity, ...] = (
    _people(
        "contact",
        "contacts",
        "contactid",
        "fullname",
        _EMAILS_1_TO_3,
        "contact",
        "Contacts",
        regarding=True,
    ),
    _people(
        "account",
        "accounts",
        "accountid",
        "name",
        _EMAILS_1_TO_3,
        "account",
        "Accounts",
        regarding=True,
    ),
    _people("lead", "leads", "leadid", "fullname", _EMAILS_1_TO_3, "lead", "Leads", regarding=True),
    _people(
        "systemuser",
        "systemusers",
        "systemuserid",
        "fullname",
        ("internalemailaddress",),
        "user",
        "Users",
    ),
    _people("queue", "queues", "queueid", "name", ("emailaddress",), "queue", "Queues"),
    _people(
        "equipment",
        "equipments",
        "equipmentid",
        "name",
        ("emailaddress",),
        "facility/equipment",
        "Facilities",
    ),
    CrmEntity(
        "opportunity",
        "opportunities",
        "opportunityid",
        "name",
        label="opportunity",
        plural="Opportunities",
        party=True,
        regarding=True,
    ),
    CrmEntity(
        "incident",
        "incidents",
        "incidentid",
        "title",
        label="case",
        plural="Cases",
        party=True,
        regarding=True,
    ),
    CrmEntity("email", "emails", "activityid", "subject", label="e-mail", plural="E-mails"),
    CrmEntity(
        "appointment",
        "appointments",
        "activityid",
        "subject",
        label="appointment",
        plural="Appointments",
    ),
    CrmEntity("task", "tasks", "activityid", "subject", label="task", plural="Tasks"),
    CrmEntity("fax", "faxes", "activityid", "subject", label="fax", plural="Faxes"),
    CrmEntity("letter", "letters", "activityid", "subject", label="letter", plural="Letters"),
    # Issue 20: a recurring appointment's series (its instances are appointments) and the
    # saved views a synchronisation filter may name (system and personal).
    CrmEntity(
        "recurringappointmentmaster",
        "recurringappointmentmasters",
        "activityid",
        "subject",
        label="recurring appointment",
        plural="Recurring appointments",
    ),
    CrmEntity("savedquery", "savedqueries", "savedqueryid", "name", label="view", plural="Views"),
    CrmEntity(
        "userquery",
        "userqueries",
        "userqueryid",
        "name",
        label="personal view",
        plural="Personal views",
    ),
    CrmEntity(
        "activitypointer",
        "activitypointers",
        "activityid",
        "subject",
        label="activity",
        plural="Activities",
    ),
    CrmEntity(
        "activityparty",
        "activityparties",
        "activitypartyid",
        "partyidname",
        ("addressused",),
        label="activity party",
        plural="Activity parties",
    ),
    CrmEntity(
        "activitymimeattachment",
        "activitymimeattachments",
        "activitymimeattachmentid",
        "filename",
        label="attachment",
        plural="Attachments",
    ),
    CrmEntity(
        "usersettings",
        "usersettingscollection",
        "systemuserid",
        None,
        label="user settings",
        plural="User settings",
    ),
    CrmEntity(
        "organization",
        "organizations",
        "organizationid",
        "name",
        label="organization",
        plural="Organizations",
    ),
    CrmEntity(
        "businessunit",
        "businessunits",
        "businessunitid",
        "name",
        label="business unit",
        plural="Business units",
    ),
    CrmEntity(
        "mailbox",
        "mailboxes",
        "mailboxid",
        "name",
        ("emailaddress",),
        label="mailbox",
        plural="Mailboxes",
    ),
    # Server-side synchronisation (issue 19): queues' items, e-mail-to-case rules, mail
    # server profiles and the mailbox alerts an administrator reads.
    CrmEntity(
        "queueitem", "queueitems", "queueitemid", "title", label="queue item", plural="Queue items"
    ),
    CrmEntity(
        "convertrule",
        "convertrules",
        "convertruleid",
        "name",
        label="record creation rule",
        plural="Record creation rules",
    ),
    CrmEntity(
        "convertruleitem",
        "convertruleitems",
        "convertruleitemid",
        "name",
        label="record creation rule item",
        plural="Record creation rule items",
    ),
    CrmEntity(
        "emailserverprofile",
        "emailserverprofiles",
        "emailserverprofileid",
        "name",
        label="e-mail server profile",
        plural="E-mail server profiles",
    ),
    CrmEntity("tracelog", "tracelogs", "tracelogid", "text", label="alert", plural="Alerts"),
    # A tracked e-mail linked to more records than its one regarding (issue 17).
    CrmEntity(
        "connection",
        "connections",
        "connectionid",
        "name",
        label="connection",
        plural="Connections",
    ),
    CrmEntity(
        "connectionrole",
        "connectionroles",
        "connectionroleid",
        "name",
        label="connection role",
        plural="Connection roles",
    ),
)

#: Logical name → entity, in table order.
ENTITIES: Mapping[str, CrmEntity] = MappingProxyType({e.logical: e for e in TABLE})
_BY_SET: Mapping[str, CrmEntity] = MappingProxyType({e.entity_set: e for e in TABLE})

#: Tables an activity party can point at (``partyid`` targets).
PARTY_TARGETS: tuple[str, ...] = tuple(e.logical for e in TABLE if e.party)
#: Tables an e-mail can be regarding (``regardingobjectid`` targets).
REGARDING_TARGETS: tuple[str, ...] = tuple(e.logical for e in TABLE if e.regarding)
#: Parties with a primary e-mail address: what the address books cache and resolve against.
EMAIL_ENABLED: tuple[str, ...] = tuple(e.logical for e in TABLE if e.party and e.email_columns)
#: The activity tables (``activityid`` keyed, with parties), not the pointer over them.
ACTIVITIES: tuple[str, ...] = (
    "email",
    "appointment",
    "task",
    "fax",
    "letter",
    "recurringappointmentmaster",
)
#: What a connection links a tracked e-mail to (``record2id``; ``record1id`` is the e-mail),
#: through typed navigations such as ``record2id_contact``.
CONNECTION_TARGETS: tuple[str, ...] = (
    "contact",
    "account",
    "lead",
    "opportunity",
    "incident",
    "systemuser",
)


def entity(logical: str) -> CrmEntity:
    """The entity named ``logical``; raises :class:`UnknownEntity`."""
    try:
        return ENTITIES[logical]
    except KeyError:
        raise UnknownEntity(f"no CRM entity {logical!r}") from None


def by_set(entity_set: str) -> CrmEntity:
    """The entity whose entity set is ``entity_set``; raises :class:`UnknownEntity`."""
    try:
        return _BY_SET[entity_set]
    except KeyError:
        raise UnknownEntity(f"no CRM entity set {entity_set!r}") from None


def regarding_target(logical: str) -> CrmEntity:
    """The entity an e-mail is filed regarding; raises :class:`UnknownEntity` or
    :class:`NotARegardingTarget`, so nothing is sent that the CRM would refuse."""
    found = entity(logical)
    if not found.regarding:
        raise NotARegardingTarget(f"an e-mail cannot be regarding a {found.label}")
    return found


__all__ = [
    "ACTIVITIES",
    "CONNECTION_TARGETS",
    "EMAIL_ENABLED",
    "ENTITIES",
    "PARTY_TARGETS",
    "REGARDING_TARGETS",
    "TABLE",
    "CrmEntity",
    "CrmEntityError",
    "NotARegardingTarget",
    "UnknownEntity",
    "by_set",
    "entity",
    "regarding_target",
]
