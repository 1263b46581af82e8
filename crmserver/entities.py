"""Entity definitions served by the emulator: attributes, lookups and navigation properties,
following the Dataverse tables the e-mail flows use (reference section 1 and 4).

Entity sets, keys, primary names, e-mail columns and which tables are parties or regarding
targets come from the client's own table, ``core.domain.entities``, so the emulator and the
client cannot disagree on them. Everything else (storage schema, $metadata, EntityDefinitions,
JSON shapes, $filter name checks) is derived from these definitions, so adding a column is one
line here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.domain import entities as crm_table

AttrType = Literal[
    "guid",
    "string",
    "memo",
    "int",
    "bigint",
    "bool",
    "datetime",
    "money",
    "decimal",
    "picklist",
    "state",
    "status",
    "lookup",
    "owner",
]

ACTIVITY_ENTITIES = crm_table.ACTIVITIES
#: Child entities of an activity → the lookup column holding their parent activity.
ACTIVITY_CHILD_PARENT = {"activityparty": "activityid", "activitymimeattachment": "objectid"}
REGARDING_TARGETS = crm_table.REGARDING_TARGETS
PARTY_TARGETS = crm_table.PARTY_TARGETS
Ownership = Literal["user", "org", "none"]


@dataclass(frozen=True)
class Attribute:
    """One column. ``targets`` lists the entities a lookup may point to (polymorphic when
    more than one); ``options`` are picklist labels for the FormattedValue annotation."""

    name: str
    type: AttrType
    targets: tuple[str, ...] = ()
    default: object = None
    max_length: int | None = None
    readonly: bool = False
    options: dict[int, str] = field(default_factory=dict)

    @property
    def is_lookup(self) -> bool:
        return self.type in ("lookup", "owner")

    @property
    def value_name(self) -> str:
        """Name clients read and filter on: ``_x_value`` for lookups."""
        return f"_{self.name}_value" if self.is_lookup else self.name


@dataclass(frozen=True)
class CollectionNav:
    """A one-to-many navigation (``email_activity_parties``): child rows whose ``child_attr``
    lookup points at this record."""

    name: str
    child: str
    child_attr: str


@dataclass
class Entity:
    logical: str
    set_name: str
    key: str
    primary_name: str | None
    attributes: dict[str, Attribute]
    ownership: Ownership = "user"
    email_attrs: tuple[str, ...] = ()
    change_tracking: bool = True
    collection_navs: dict[str, CollectionNav] = field(default_factory=dict)
    object_type_code: int = 10000
    read_only_set: bool = False

    @property
    def is_activity(self) -> bool:
        return self.logical in ACTIVITY_ENTITIES or self.logical == "activitypointer"

    def lookup_for_nav(self, nav: str) -> tuple[Attribute, str | None] | None:
        """Map a single-valued navigation name to (lookup attribute, target or None).

        Accepts the typed names Dataverse uses (``regardingobjectid_contact_email``,
        ``partyid_contact``, ``parentcustomerid_account``) and the bare attribute name
        (``ownerid``, ``primarycontactid``), as third-party clients send both.
        """
        attr = self.attributes.get(nav)
        if attr is not None and attr.is_lookup:
            return attr, attr.targets[0] if len(attr.targets) == 1 else None
        for attr in self.attributes.values():
            if not attr.is_lookup or not nav.startswith(attr.name + "_"):
                continue
            rest = nav[len(attr.name) + 1 :]
            for target in attr.targets:
                if rest in (target, f"{target}_{self.logical}"):
                    return attr, target
        return None

    def nav_name(self, attr: Attribute, target: str) -> str:
        """The typed navigation property for a lookup value (associatednavigationproperty)."""
        if len(attr.targets) <= 1:
            return attr.name
        if attr.name == "regardingobjectid" and self.is_activity:
            return f"regardingobjectid_{target}_{self.logical}"
        return f"{attr.name}_{target}"

    def single_navs(self) -> list[tuple[str, Attribute, str]]:
        """Every single-valued navigation property: (name, lookup, target)."""
        out = []
        for attr in self.attributes.values():
            if attr.is_lookup:
                for target in attr.targets:
                    out.append((self.nav_name(attr, target), attr, target))
        return out


STATE_ACTIVE = {0: "Active", 1: "Inactive"}
STATUS_ACTIVE = {1: "Active", 2: "Inactive"}
EMAIL_STATE = {0: "Open", 1: "Completed", 2: "Canceled"}
EMAIL_STATUS = {
    1: "Draft",
    2: "Completed",
    3: "Sent",
    4: "Received",
    5: "Canceled",
    6: "Pending Send",
    7: "Sending",
    8: "Failed",
}
ACTIVITY_STATUS = {1: "Open", 2: "Completed", 3: "Canceled", 4: "Scheduled", 5: "Busy"}
PRIORITY = {0: "Low", 1: "Normal", 2: "High"}
DELIVERY = {
    0: "None",
    1: "Microsoft Dynamics 365 for Outlook",
    2: "Server-Side Synchronization",
    3: "Forward Mailbox",
}
OUT_DELIVERY = {
    0: "None",
    1: "Microsoft Dynamics 365 for Outlook",
    2: "Server-Side Synchronization",
}
FILTERING = {
    0: "All email messages",
    1: "Email messages in response to Dynamics 365 email",
    2: "Email messages from Dynamics 365 Leads, Contacts and Accounts",
    3: "Email messages from Dynamics 365 records that are email enabled",
    4: "No email messages",
}
APPROVAL = {0: "Empty", 1: "Approved", 2: "Pending Approval", 3: "Rejected"}
CORRELATION = {
    0: "None",
    1: "Skipped",
    2: "XHeader",
    3: "InReplyTo",
    4: "TrackingToken",
    5: "ConversationIndex",
    6: "SmartMatching",
    7: "CustomCorrelation",
}
CASE_ORIGIN = {1: "Phone", 2: "Email", 3: "Web", 2483: "Facebook", 3986: "Twitter"}
PROCESSING_STATE = {0: "Idle", 1: "Processing"}
SERVER_TYPE = {
    0: "Exchange Server",
    1: "Other (POP3/SMTP)",
    2: "Exchange Server (Hybrid)",
    3: "Exchange Online",
}
TRACE_LEVEL = {1: "Information", 2: "Warning", 3: "Error"}
#: Queue items may hold activities and cases; ``objecttypecode`` says which (type codes).
QUEUE_OBJECTS = {"email": 4202, "appointment": 4201, "task": 4212, "fax": 4204, "letter": 4207}
QUEUE_OBJECTS_ALL = {**QUEUE_OBJECTS, "incident": 112}
PARTICIPATION = {
    1: "Sender",
    2: "To Recipient",
    3: "CC Recipient",
    4: "BCC Recipient",
    5: "Required attendee",
    6: "Optional attendee",
    7: "Organizer",
    8: "Regarding",
    9: "Owner",
    10: "Resource",
    11: "Customer",
    12: "Chat Participant",
}


def _a(name: str, type_: AttrType, *targets: str, **kw: object) -> Attribute:
    return Attribute(name, type_, tuple(targets), **kw)  # type: ignore[arg-type]


def _s(name: str, length: int = 100, **kw: object) -> Attribute:
    return Attribute(name, "string", max_length=length, **kw)  # type: ignore[arg-type]


def _common(
    key: str, owned: bool, state: dict[int, str], status: dict[int, str], status_default: int = 1
) -> list[Attribute]:
    attrs = [
        _a(key, "guid"),
        _a("createdon", "datetime", readonly=True),
        _a("modifiedon", "datetime", readonly=True),
        _a("versionnumber", "bigint", readonly=True),
        _a("createdby", "lookup", "systemuser", readonly=True),
        _a("modifiedby", "lookup", "systemuser", readonly=True),
        _a("statecode", "state", default=0, options=state),
        _a("statuscode", "status", default=status_default, options=status),
    ]
    if owned:
        attrs.append(_a("ownerid", "owner", "systemuser"))
    return attrs


def _entity(
    logical: str,
    attrs: list[Attribute],
    *,
    owned: bool = True,
    ownership: Ownership = "org",
    state: dict[int, str] | None = None,
    status: dict[int, str] | None = None,
    status_default: int = 1,
    change_tracking: bool = True,
    collection_navs: dict[str, CollectionNav] | None = None,
    object_type_code: int = 10000,
) -> Entity:
    """An entity named as ``core.domain.entities`` says, with the common columns and
    ``attrs``. ``ownership`` applies when not ``owned`` (then "org" or "none")."""
    table = crm_table.entity(logical)
    common = _common(
        table.key, owned, state or STATE_ACTIVE, status or STATUS_ACTIVE, status_default
    )
    merged = {a.name: a for a in common}
    merged.update({a.name: a for a in attrs})
    return Entity(
        logical,
        table.entity_set,
        table.key,
        table.name_column,
        merged,
        ownership="user" if owned else ownership,
        # Parties are resolved by address; other tables' e-mail columns (a mailbox's) are not.
        email_attrs=table.email_columns if table.party else (),
        change_tracking=change_tracking,
        collection_navs=collection_navs or {},
        object_type_code=object_type_code,
    )


def _activity(
    logical: str,
    code: int,
    extra: list[Attribute],
    status: dict[int, str],
    status_default: int,
) -> Entity:
    attrs = [
        _s("subject", 800 if logical == "email" else 200),
        _a("description", "memo"),
        _a("regardingobjectid", "lookup", *REGARDING_TARGETS),
        _a("actualstart", "datetime"),
        _a("actualend", "datetime"),
        _a("scheduledstart", "datetime"),
        _a("scheduledend", "datetime"),
        _a("prioritycode", "picklist", default=1, options=PRIORITY),
        _s("activitytypecode", 64, default=logical, readonly=True),
        *extra,
    ]
    navs = {
        f"{logical}_activity_parties": CollectionNav(
            f"{logical}_activity_parties", "activityparty", "activityid"
        ),
    }
    if logical == "email":
        navs["email_activity_mime_attachment"] = CollectionNav(
            "email_activity_mime_attachment", "activitymimeattachment", "objectid"
        )
    return _entity(
        logical,
        attrs,
        state=EMAIL_STATE,
        status=status,
        status_default=status_default,
        collection_navs=navs,
        object_type_code=code,
    )


#: Columns every activity table has: ``activitypointers`` is the union of them (read-only).
POINTER_COLUMNS = (
    "activityid",
    "createdon",
    "modifiedon",
    "versionnumber",
    "createdby",
    "modifiedby",
    "statecode",
    "statuscode",
    "ownerid",
    "subject",
    "description",
    "regardingobjectid",
    "actualstart",
    "actualend",
    "scheduledstart",
    "scheduledend",
    "prioritycode",
    "activitytypecode",
)


def _activity_pointer() -> Entity:
    """``activitypointer``: every activity, whatever its type, for "activities of a record"
    queries (``activitypointers?$filter=_regardingobjectid_value eq …``)."""
    email = _activity("email", 4202, [], EMAIL_STATUS, 1)
    attrs = {name: email.attributes[name] for name in POINTER_COLUMNS}
    attrs["statuscode"] = _a("statuscode", "status", default=1)
    table = crm_table.entity("activitypointer")
    return Entity(
        table.logical,
        table.entity_set,
        table.key,
        table.name_column,
        attrs,
        ownership="user",
        change_tracking=False,
        object_type_code=4200,
        read_only_set=True,
    )


def _email_enabled(n: int) -> list[Attribute]:
    return [_s(f"emailaddress{i}", 100) for i in range(1, n + 1)]


def _organisation() -> list[Entity]:
    """The organisation and its settings (one row)."""
    return [
        _entity(
            "organization",
            [
                _s("name", 160),
                _s("trackingprefix", 256, default="CRM:"),
                _a("trackingtokenidbase", "int", default=0),
                _a("trackingtokeniddigits", "int", default=3),
                _a("maximumtrackingnumber", "int", default=999),
                _a("emailcorrelationenabled", "bool", default=True),
                _a("tbx_correlateinreplyto", "bool", default=True),
                _a("tbx_correlatetrackingtoken", "bool", default=True),
                _a("tbx_correlateconversationindex", "bool", default=True),
                _a("enablesmartmatching", "bool", default=False),
                _s("hashfilterkeywords", 1000, default=r"^[\s]*([\w]+\s?:[\s]*)+"),
                _a("hashmaxcount", "int", default=20),
                _a("hashdeltasubjectcount", "int", default=0),
                _a("hashminaddresscount", "int", default=2),
                _a("ignoreinternalemail", "bool", default=False),
                _a("maxuploadfilesize", "int", default=5_242_880),
                _a("tbx_tokenonlycorrelation", "bool", default=False),
                _a("allowunresolvedpartiesonemailsend", "bool", default=False),
                _a("unresolveemailaddressifmultiplematch", "bool", default=False),
                _a("resolvesimilarunresolvedemailaddress", "bool", default=False),
                _a("requireapprovalforuseremail", "bool", default=False),
                _a("requireapprovalforqueueemail", "bool", default=False),
                _a(
                    "emailconnectionchannel",
                    "picklist",
                    default=0,
                    options={
                        0: "Server-Side Synchronization",
                        1: "Microsoft Dynamics 365 Email Router",
                    },
                ),
                _a("tagpollingperiod", "int", default=10),
                _a("emailsendpollingperiod", "int", default=10),
                _a("allowoutlookscheduledsyncs", "bool", default=True),
                _a("minoutlooksyncinterval", "int", default=15),
                _a("allowofflinescheduledsyncs", "bool", default=True),
                _a("minofflinesyncinterval", "int", default=15),
                _a("allowaddressbooksyncs", "bool", default=True),
                _a("minaddressbooksyncinterval", "int", default=60),
                _a("expirechangetrackingindays", "int", default=7),
                # Issue 20: how far ahead a recurring appointment's instances are created
                # (months) and at most how many at once.
                _a("futureexpansionwindow", "int", default=12),
                _a("recurrenceexpansionsynchcreatemax", "int", default=1000),
            ],
            owned=False,
            change_tracking=False,
            object_type_code=1019,
        ),
    ]


def _users() -> list[Entity]:
    """Business units and the users in them."""
    return [
        _entity(
            "businessunit",
            [
                _s("name", 160),
                _a("organizationid", "lookup", "organization", readonly=True),
                _a("parentbusinessunitid", "lookup", "businessunit"),
            ],
            owned=False,
            change_tracking=False,
            object_type_code=10,
        ),
        _entity(
            "systemuser",
            [
                _s("firstname", 64),
                _s("lastname", 64),
                _s("fullname", 200),
                _s("internalemailaddress", 100),
                _s("domainname", 1024),
                _s("title", 128),
                _a("businessunitid", "lookup", "businessunit"),
                _a("isdisabled", "bool", default=False),
                _a("emailrouteraccessapproval", "picklist", default=1, options=APPROVAL),
                _a("defaultmailbox", "lookup", "mailbox", readonly=True),
                _a("tbx_isadministrator", "bool", default=False),
                # Set on an application user (issue 19: the router's service account).
                _a("applicationid", "guid"),
            ],
            owned=False,
            object_type_code=8,
        ),
    ]


def _customers() -> list[Entity]:
    """The customer tables the address books cache: contacts, accounts, leads."""
    return [
        _entity(
            "contact",
            [
                _s("firstname", 50),
                _s("lastname", 50),
                _s("fullname", 160),
                *_email_enabled(3),
                _s("jobtitle", 100),
                _s("telephone1", 50),
                _s("address1_city", 80),
                # Issue 20: the fields the PIM synchronisation maps to vCards and mailbox
                # contacts (birthdate is date-only in Dataverse: stored at 00:00Z here).
                _s("middlename", 50),
                _s("telephone2", 50),
                _s("telephone3", 50),
                _s("mobilephone", 50),
                _s("fax", 50),
                _s("department", 100),
                _s("address1_line1", 250),
                _s("address1_line2", 250),
                _s("address1_line3", 250),
                _s("address1_stateorprovince", 50),
                _s("address1_postalcode", 20),
                _s("address1_country", 80),
                _a("birthdate", "datetime"),
                _a("parentcustomerid", "lookup", "account", "contact"),
                _a("donotemail", "bool", default=False),
                _a("description", "memo"),
            ],
            object_type_code=2,
        ),
        _entity(
            "account",
            [
                _s("name", 160),
                *_email_enabled(3),
                _s("telephone1", 50),
                _s("address1_city", 80),
                _s("websiteurl", 200),
                _a("primarycontactid", "lookup", "contact"),
                _a("donotemail", "bool", default=False),
            ],
            object_type_code=1,
        ),
        _entity(
            "lead",
            [
                _s("firstname", 50),
                _s("lastname", 50),
                _s("fullname", 160),
                _s("subject", 300),
                _s("companyname", 100),
                *_email_enabled(3),
                _s("telephone1", 50),
                _a("donotemail", "bool", default=False),
                _a("description", "memo"),
            ],
            state={0: "Open", 1: "Qualified", 2: "Disqualified"},
            status={
                1: "New",
                2: "Contacted",
                3: "Qualified",
                4: "Lost",
                5: "Cannot Contact",
                6: "No Longer Interested",
                7: "Canceled",
            },
            object_type_code=4,
        ),
    ]


def _resources() -> list[Entity]:
    """Queues and facilities/equipment: e-mail-enabled, not customers."""
    return [
        _entity(
            "queue",
            [
                _s("name", 160),
                _s("emailaddress", 100),
                _s("description", 2000),
                _a("incomingemailfilteringmethod", "picklist", default=0, options=FILTERING),
                _a("emailrouteraccessapproval", "picklist", default=1, options=APPROVAL),
                _a("defaultmailbox", "lookup", "mailbox", readonly=True),
            ],
            object_type_code=2020,
        ),
        _entity(
            "equipment",
            [
                _s("name", 160),
                _s("emailaddress", 100),
                _a("businessunitid", "lookup", "businessunit"),
                _a("isdisabled", "bool", default=False),
            ],
            owned=False,
            object_type_code=4000,
        ),
    ]


def _sales_and_service() -> list[Entity]:
    """The records mail is filed regarding besides customers: opportunities and cases."""
    return [
        _entity(
            "opportunity",
            [
                _s("name", 300),
                _a("customerid", "lookup", "account", "contact"),
                _a("parentaccountid", "lookup", "account"),
                _a("parentcontactid", "lookup", "contact"),
                _a("estimatedvalue", "money"),
                _a("description", "memo"),
            ],
            state={0: "Open", 1: "Won", 2: "Lost"},
            status={1: "In Progress", 2: "On Hold", 3: "Won", 4: "Canceled", 5: "Out-Sold"},
            object_type_code=3,
        ),
        _entity(
            "incident",
            [
                _s("title", 200),
                _s("ticketnumber", 100),
                _a("customerid", "lookup", "account", "contact"),
                _a("description", "memo"),
                _a("caseorigincode", "picklist", options=CASE_ORIGIN),
            ],
            state={0: "Active", 1: "Resolved", 2: "Canceled"},
            status={
                1: "In Progress",
                2: "On Hold",
                3: "Waiting for Details",
                4: "Researching",
                5: "Problem Solved",
                6: "Canceled",
                1000: "Information Provided",
                2000: "Merged",
            },
            object_type_code=112,
        ),
    ]


def _emails() -> list[Entity]:
    """The e-mail activity, with its correlation and delivery columns."""
    return [
        _activity(
            "email",
            4202,
            [
                _a("directioncode", "bool", default=True),
                _s("sender", 250, readonly=True),
                _s("torecipients", 500, readonly=True),
                _s("trackingtoken", 50),
                _s("messageid", 320),
                _s("inreplyto", 320),
                _s("conversationindex", 2048),
                _a("baseconversationindexhash", "int"),
                _a("conversationtrackingid", "guid"),
                _a("emailtrackingid", "guid"),
                _a("correlatedactivityid", "lookup", "email"),
                _a("parentactivityid", "lookup", "email"),
                _a("correlationmethod", "picklist", default=0, options=CORRELATION),
                _a("correlatedsubjectchanged", "bool", default=False),
                _s("submittedby", 250),
                _a("senton", "datetime"),
                _a("deliveryprioritycode", "picklist", default=1, options=PRIORITY),
                _a("attachmentcount", "int", default=0, readonly=True),
                _a(
                    "notifications",
                    "picklist",
                    default=0,
                    options={
                        0: "None",
                        1: "The message was saved as a Microsoft Dynamics 365 email "
                        "record, but not all the attachments could be saved with it.",
                        2: "Body was truncated.",
                    },
                ),
                _a("readreceiptrequested", "bool", default=False),
                _a("deliveryreceiptrequested", "bool", default=False),
                _a("sendermailboxid", "lookup", "mailbox"),
                _a("receivingmailboxid", "lookup", "mailbox"),
                _a("delayedemailsendtime", "datetime"),
                _s("tbx_smartkey", 800, readonly=True),
            ],
            EMAIL_STATUS,
            1,
        ),
    ]


def _other_activities() -> list[Entity]:
    """The other activity tables (defined in :mod:`crmserver.pim_entities`, issue 20: with the
    recurring appointment master), and the read-only pointer over them all."""
    from .pim_entities import pim_activities  # it builds on this module's helpers

    return [
        *pim_activities(),
        _activity_pointer(),
    ]


def _activity_children() -> list[Entity]:
    """The rows that belong to one activity: its parties and its attachments."""
    return [
        _entity(
            "activityparty",
            [
                _a("activityid", "lookup", *ACTIVITY_ENTITIES),
                _a("partyid", "lookup", *PARTY_TARGETS),
                _s("partyidname", 400, readonly=True),
                _s("addressused", 320),
                _a("addressusedemailcolumnnumber", "int"),
                _a("participationtypemask", "picklist", default=1, options=PARTICIPATION),
                _a("ispartydeleted", "bool", default=False, readonly=True),
                _s("unresolvedpartyname", 400),
                _a("donotemail", "bool", default=False),
            ],
            owned=False,
            ownership="none",
            change_tracking=False,
            object_type_code=135,
        ),
        _entity(
            "activitymimeattachment",
            [
                _a("objectid", "lookup", *ACTIVITY_ENTITIES),
                _s("objecttypecode", 64),
                _s("filename", 255),
                _s("mimetype", 256),
                _a("body", "memo"),
                _s("subject", 2000),
                _a("attachmentnumber", "int"),
                _a("filesize", "int", readonly=True),
            ],
            owned=False,
            ownership="none",
            change_tracking=False,
            object_type_code=1001,
        ),
    ]


def _mail_settings() -> list[Entity]:
    """Per-user mail settings and the mailboxes mail is delivered through."""
    return [
        _entity(
            "usersettings",
            [
                _a("incomingemailfilteringmethod", "picklist", default=1, options=FILTERING),
                _a("outlooksyncinterval", "int", default=15),
                _a("offlinesyncinterval", "int", default=15),
                _a("addressbooksyncinterval", "int", default=1440),
                _a("autocreatecontactonpromote", "int", default=0),
                _a("trackingtokenid", "int", default=1),
                _a("nexttrackingnumber", "int", default=1),
                _a("isduplicatedetectionenabledwhengoingonline", "bool", default=False),
                _a("synccontactcompany", "bool", default=True),
                _a("usecrmformforemail", "bool", default=True),
                _a("usecrmformforappointment", "bool", default=True),
                _a("usecrmformforcontact", "bool", default=True),
                _a("usecrmformfortask", "bool", default=True),
                _a("issendasallowed", "bool", default=False),
                _a("businessunitid", "lookup", "businessunit"),
            ],
            owned=False,
            ownership="none",
            change_tracking=False,
            object_type_code=150,
        ),
        _entity(
            "mailbox",
            [
                _s("name", 200),
                _s("emailaddress", 100),
                _a("regardingobjectid", "lookup", "systemuser", "queue"),
                _a("incomingemaildeliverymethod", "picklist", default=1, options=DELIVERY),
                _a("outgoingemaildeliverymethod", "picklist", default=1, options=OUT_DELIVERY),
                _a("actdeliverymethod", "picklist", default=0, options=DELIVERY),
                _a("isforwardmailbox", "bool", default=False),
                # Server-side synchronisation (issue 19): the profile it is processed with and
                # what the router last did with it.
                _a("emailserverprofile", "lookup", "emailserverprofile"),
                _a("processingstatecode", "picklist", default=0, options=PROCESSING_STATE),
                _a("lastsuccessfulsynccompletedon", "datetime"),
                _s("tbx_lastrunresult", 2000),
            ],
            change_tracking=False,
            object_type_code=9606,
        ),
    ]


def _server_side_sync() -> list[Entity]:
    """Issue 19: queue items, the automatic record creation (e-mail-to-case) rules, mail
    server profiles and the alerts (trace log) the router writes about mailboxes. Columns
    named as Dataverse names them; ``tbx_`` ones are the emulator's simplifications."""
    return [
        _entity(
            "queueitem",
            [
                _s("title", 300, readonly=True),
                _a("queueid", "lookup", "queue"),
                _a("objectid", "lookup", *QUEUE_OBJECTS_ALL),
                _a(
                    "objecttypecode",
                    "picklist",
                    readonly=True,
                    options={v: k for k, v in QUEUE_OBJECTS_ALL.items()},
                ),
                _a("enteredon", "datetime", readonly=True),
                _a("workerid", "lookup", "systemuser"),
                _a("workeridmodifiedon", "datetime", readonly=True),
            ],
            owned=False,
            object_type_code=2029,
        ),
        _entity(
            "convertrule",
            [
                _s("name", 160),
                _a("description", "memo"),
                _a("queueid", "lookup", "queue"),
                _a("sourcetypecode", "picklist", default=4202, options={4202: "Email"}),
                _a("allowunknownsender", "bool", default=False),
                _a("checkblockedsocialprofile", "bool", default=False),
                _a("checkifresolved", "bool", default=False),
                _a("resolvedsince", "int", default=0),
                _a("sendresponsetocustomer", "bool", default=False),
                _s("tbx_responsesubject", 400),
                _a("tbx_responsetext", "memo"),
            ],
            owned=False,
            state={0: "Draft", 1: "Active"},
            status={1: "Draft", 2: "Active"},
            object_type_code=9300,
        ),
        _entity(
            "convertruleitem",
            [
                _s("name", 160),
                _a("convertruleid", "lookup", "convertrule"),
                _a("conditionxml", "memo"),
                _a("propertiesxml", "memo"),
                _a("sequencenumber", "int", default=1),
                _s("tbx_subjectcontains", 400),
                _s("tbx_fromdomain", 255),
            ],
            owned=False,
            object_type_code=9301,
        ),
        _entity(
            "emailserverprofile",
            [
                _s("name", 100),
                _a("description", "memo"),
                _a("servertype", "picklist", default=1, options=SERVER_TYPE),
                _s("incomingserverlocation", 2048),
                _s("outgoingserverlocation", 2048),
                _a("incomingportnumber", "int"),
                _a("outgoingportnumber", "int"),
                _a("incominguseimpersonation", "bool", default=False),
                _a("outgoinguseimpersonation", "bool", default=False),
                _a("incomingusessl", "bool", default=True),
                _a("outgoingusessl", "bool", default=True),
            ],
            owned=False,
            object_type_code=9605,
        ),
        _entity(
            "tracelog",
            [
                _a("regardingobjectid", "lookup", "mailbox", "emailserverprofile"),
                _a("level", "picklist", default=1, options=TRACE_LEVEL),
                _a("text", "memo"),
                _s("tracecode", 100),
                _s("machinename", 100),
                _a("errordetails", "memo"),
            ],
            owned=False,
            change_tracking=False,
            object_type_code=4619,
        ),
    ]


def _connections() -> list[Entity]:
    """Connections: a tracked e-mail linked to records beyond its one regarding, with
    optional roles. Both ends are polymorphic lookups bound through typed navigations
    (``record1id_email@odata.bind``, ``record2id_contact@odata.bind``)."""
    ends = ("email", *crm_table.CONNECTION_TARGETS)
    return [
        _entity("connectionrole", [_s("name", 100), _a("description", "memo")], owned=False),
        _entity(
            "connection",
            [
                _s("name", 500),
                _a("description", "memo"),
                _a("record1id", "lookup", *ends),
                _a("record2id", "lookup", *ends),
                _a("record1roleid", "lookup", "connectionrole"),
                _a("record2roleid", "lookup", "connectionrole"),
            ],
            object_type_code=3234,
        ),
    ]


def _saved_views() -> list[Entity]:
    """System and personal views a synchronisation filter may name (issue 20)."""
    from .pim_entities import pim_views

    return pim_views()


def build_entities() -> dict[str, Entity]:
    """The entity model, keyed by logical name (in this order: storage and $metadata follow
    it)."""
    ents = [
        *_organisation(),
        *_users(),
        *_customers(),
        *_resources(),
        *_sales_and_service(),
        *_emails(),
        *_other_activities(),
        *_activity_children(),
        *_mail_settings(),
        *_connections(),
        *_server_side_sync(),
        *_saved_views(),
    ]
    return {e.logical: e for e in ents}


ENTITIES: dict[str, Entity] = build_entities()
BY_SET: dict[str, Entity] = {e.set_name: e for e in ENTITIES.values()}
