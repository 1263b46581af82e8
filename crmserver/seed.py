"""Seed data: the demo organisation from ``core/domain/demo_data.py`` and bulk realistic data for
benchmarks and load tests.

GUIDs are uuid5 of a stable name, so every run (and every test) sees the same ids. Bulk rows
go in with one ``executemany`` per table inside one transaction: 100,000 contacts take a few
seconds.
"""

from __future__ import annotations

import random
import uuid

from core.domain import demo_data as demo

from .auth import hash_password
from .bulk_names import CITIES, COMPANY_A, COMPANY_B, FIRST, LAST, SUFFIX
from .entities import ENTITIES
from .oauth_clients import register_default_clients
from .pim_seed import seed_pim_demo
from .records import Records, provision_user
from .storage import Row, Storage

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://trackbox.example/crm-emulator")


def guid(kind: str, name: str) -> str:
    """The deterministic id of a seeded record."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name.lower()}"))


ORG_ID = guid("organization", demo.ORGANISATION_NAME)
BU_ID = guid("businessunit", demo.ORGANISATION_NAME)


def user_id(email: str) -> str:
    return guid("systemuser", email)


def _base(logical: str, values: Row, owner: str | None) -> Row:
    ent = ENTITIES[logical]
    row = Records.defaults(ent)
    row.update(values)
    if owner:
        row.update(
            createdby=owner,
            createdby__type="systemuser",
            modifiedby=owner,
            modifiedby__type="systemuser",
        )
        if ent.ownership == "user":
            row.update(ownerid=owner, ownerid__type="systemuser")
    if "fullname" in ent.attributes and logical != "activityparty" and row.get("lastname"):
        row["fullname"] = " ".join(p for p in (row.get("firstname"), row.get("lastname")) if p)
    return row


def ensure_organisation(storage: Storage, name: str = demo.ORGANISATION_NAME) -> tuple[str, str]:
    """The organisation and root business unit, created when the database is empty; the
    organisation always has the development OAuth client (``oauth_clients.DEV_CLIENT_ID``)."""
    register_default_clients(storage)
    rows = storage.query("SELECT organizationid FROM organization LIMIT 1")
    if rows:
        org = rows[0]["organizationid"]
        bu = storage.scalar(
            "SELECT businessunitid FROM businessunit WHERE parentbusinessunitid IS NULL LIMIT 1"
        )
        return org, bu
    org_id, bu_id = guid("organization", name), guid("businessunit", name)
    with storage.transaction():
        storage.insert(
            ENTITIES["organization"],
            _base("organization", {"organizationid": org_id, "name": name}, None),
        )
        storage.insert(
            ENTITIES["businessunit"],
            _base(
                "businessunit",
                {
                    "businessunitid": bu_id,
                    "name": name,
                    "organizationid": org_id,
                    "organizationid__type": "organization",
                },
                None,
            ),
        )
    return org_id, bu_id


def add_user(
    storage: Storage,
    *,
    first: str,
    last: str,
    email: str,
    password: str,
    title: str = "",
    admin: bool = False,
    password_hash: str | None = None,
) -> str:
    """A system user with credentials, user settings (next free tracking-token number) and a
    mailbox routed through the client (Outlook-style), as Trackbox expects."""
    _, bu = ensure_organisation(storage)
    uid = user_id(email)
    with storage.transaction():
        if storage.get(ENTITIES["systemuser"], uid) is not None:
            raise ValueError(f"A user with e-mail {email} already exists.")
        storage.insert(
            ENTITIES["systemuser"],
            _base(
                "systemuser",
                {
                    "systemuserid": uid,
                    "firstname": first,
                    "lastname": last,
                    "fullname": f"{first} {last}".strip(),
                    "internalemailaddress": email,
                    "domainname": email,
                    "title": title,
                    "businessunitid": bu,
                    "businessunitid__type": "businessunit",
                    "tbx_isadministrator": int(admin),
                },
                None,
            ),
        )
        user = storage.get(ENTITIES["systemuser"], uid)
        assert user is not None
        provision_user(storage, user, guid("mailbox", email))
        storage.set_password_hash(uid, password_hash or hash_password(password))
    return uid


#: The demo organisation's shared mailboxes: queue name and local part of its address.
DEMO_QUEUES = (("Support", "support"), ("Sales", "sales"))
#: The demo's e-mail-enabled equipment (a room), so addresses can resolve to a resource.
DEMO_EQUIPMENT = "Projector Room 1"
#: One open opportunity for each of the first demo accounts.
DEMO_OPPORTUNITY_TOPICS = (
    "Annual licence renewal",
    "Fleet rollout",
    "Premium support upgrade",
    "Pilot project",
)
#: One case for each of the first demo accounts (ticket numbers CAS-01001 on).
DEMO_INCIDENT_TITLES = ("Login fails after update", "Invoice shows wrong VAT", "Sync stops at 99%")

#: A seeded record: its table's logical name and its row.
Seeded = tuple[str, Row]


def seed_demo(storage: Storage) -> bool:
    """Fill an empty database with the demo organisation; False when already seeded."""
    if storage.scalar("SELECT COUNT(*) FROM systemuser"):
        return False
    with storage.transaction():
        ensure_organisation(storage)
        _add_demo_users(storage)
        me = user_id(demo.ME.email)
        for logical, row in (
            *_demo_customers(me),
            *_demo_queues(me),
            _demo_equipment(me),
            *_demo_opportunities(me),
            *_demo_incidents(me),
        ):
            storage.insert(ENTITIES[logical], row)
        _demo_server_side(storage, me)
        seed_pim_demo(storage, me, BU_ID)  # issue 20: calendar, tasks, views
    return True


def _add_demo_users(storage: Storage) -> None:
    """The demo users, the first an administrator. One slow hash for the shared demo password
    keeps start-up fast (tests start many servers); users added later get their own salt."""
    shared = hash_password(demo.DEMO_PASSWORD)
    for i, user in enumerate(demo.USERS):
        add_user(
            storage,
            first=user.first,
            last=user.last,
            email=user.email,
            password=demo.DEMO_PASSWORD,
            title=user.title,
            admin=(i == 0),
            password_hash=shared,
        )


def _demo_customers(me: str) -> list[Seeded]:
    """The demo accounts, their contacts, then the leads, all owned by ``me``."""
    rows: list[Seeded] = []
    for acc in demo.ACCOUNTS:
        values: Row = {
            "accountid": guid("account", acc.name),
            "name": acc.name,
            "emailaddress1": acc.email,
            "address1_city": acc.city,
            "websiteurl": f"https://www.{acc.domain}",
        }
        rows.append(("account", _base("account", values, me)))
    for c in demo.CONTACTS:
        values = {
            "contactid": guid("contact", c.email),
            "firstname": c.first,
            "lastname": c.last,
            "emailaddress1": c.email,
            "jobtitle": c.job_title,
            "parentcustomerid": guid("account", c.account),
            "parentcustomerid__type": "account",
        }
        rows.append(("contact", _base("contact", values, me)))
    for lead in demo.LEADS:
        values = {
            "leadid": guid("lead", lead.email),
            "firstname": lead.first,
            "lastname": lead.last,
            "emailaddress1": lead.email,
            "companyname": lead.company,
            "subject": lead.topic,
        }
        rows.append(("lead", _base("lead", values, me)))
    return rows


def _demo_queues(me: str) -> list[Seeded]:
    """Each demo queue followed by its mailbox (server-side delivery, as shared mailboxes
    usually are)."""
    rows: list[Seeded] = []
    for name, local in DEMO_QUEUES:
        qid = guid("queue", name)
        address = f"{local}@{demo.INTERNAL_DOMAIN}"
        rows.append(
            ("queue", _base("queue", {"queueid": qid, "name": name, "emailaddress": address}, me))
        )
        mailbox: Row = {
            "mailboxid": guid("mailbox", address),
            "name": name,
            "emailaddress": address,
            "regardingobjectid": qid,
            "regardingobjectid__type": "queue",
            "incomingemaildeliverymethod": 2,
            "outgoingemaildeliverymethod": 2,
        }
        rows.append(("mailbox", _base("mailbox", mailbox, me)))
    return rows


def _demo_equipment(me: str) -> Seeded:
    values: Row = {
        "equipmentid": guid("equipment", DEMO_EQUIPMENT),
        "name": DEMO_EQUIPMENT,
        "emailaddress": f"room1@{demo.INTERNAL_DOMAIN}",
        "businessunitid": BU_ID,
        "businessunitid__type": "businessunit",
    }
    return "equipment", _base("equipment", values, me)


def _demo_opportunities(me: str) -> list[Seeded]:
    rows: list[Seeded] = []
    for acc, topic in zip(demo.ACCOUNTS[:4], DEMO_OPPORTUNITY_TOPICS, strict=True):
        values: Row = {
            "opportunityid": guid("opportunity", f"{acc.name}:{topic}"),
            "name": f"{acc.name}: {topic}",
            "customerid": guid("account", acc.name),
            "customerid__type": "account",
            "parentaccountid": guid("account", acc.name),
            "parentaccountid__type": "account",
            "estimatedvalue": 25000.0,
        }
        rows.append(("opportunity", _base("opportunity", values, me)))
    return rows


def _demo_incidents(me: str) -> list[Seeded]:
    rows: list[Seeded] = []
    for n, (acc, title) in enumerate(
        zip(demo.ACCOUNTS[:3], DEMO_INCIDENT_TITLES, strict=True), start=1
    ):
        values: Row = {
            "incidentid": guid("incident", f"{acc.name}:{title}"),
            "title": title,
            "ticketnumber": f"CAS-{1000 + n:05d}",
            "customerid": guid("account", acc.name),
            "customerid__type": "account",
        }
        rows.append(("incident", _base("incident", values, me)))
    return rows


#: Server-side synchronisation in the demo (issue 19): the mail server profile the queues'
#: and one user's mailboxes are processed with, that user (Hannah: her mail is tracked and
#: sent by the router), the router's application user (no password: it signs in with a
#: client secret an administrator registers, ``trackbox-crm app add --user <ROUTER_USER_ID>``;
#: no e-mail address either, so no address book lists it and no mail resolves to it), and the
#: Support queue's e-mail-to-case rule.
SERVER_PROFILE_NAME = "Contoso mail (IMAP/SMTP)"
SERVER_SIDE_USER = demo.COLLEAGUES[2]
ROUTER_USER_ID = guid("systemuser", "application:trackbox-router")
ROUTER_APPLICATION_ID = guid("application", "trackbox-router")
CASE_RULE_NAME = "Support: e-mail to case"


def _demo_server_side(storage: Storage, me: str) -> None:
    profile = guid("emailserverprofile", SERVER_PROFILE_NAME)
    storage.insert(
        ENTITIES["emailserverprofile"],
        _base(
            "emailserverprofile",
            {
                "emailserverprofileid": profile,
                "name": SERVER_PROFILE_NAME,
                "servertype": 1,
                "incomingserverlocation": f"imap.{demo.INTERNAL_DOMAIN}",
                "outgoingserverlocation": f"smtp.{demo.INTERNAL_DOMAIN}",
                "incomingportnumber": 993,
                "outgoingportnumber": 587,
            },
            me,
        ),
    )
    storage.execute(
        "UPDATE mailbox SET incomingemaildeliverymethod = 2, outgoingemaildeliverymethod = 2,"
        " emailserverprofile = ?, emailserverprofile__type = 'emailserverprofile'"
        " WHERE regardingobjectid = ? OR regardingobjectid__type = 'queue'",
        (profile, user_id(SERVER_SIDE_USER.email)),
    )
    _add_router_user(storage)
    _demo_case_rule(storage, me)


def _add_router_user(storage: Storage) -> None:
    """The router's application user: no mailbox, no password, no settings of its own (it
    files and sends mail as the mailboxes' owners, with their tracking-token numbers)."""
    uid = ROUTER_USER_ID
    storage.insert(
        ENTITIES["systemuser"],
        _base(
            "systemuser",
            {
                "systemuserid": uid,
                "firstname": "Trackbox",
                "lastname": "Router",
                "title": "Server-side synchronisation",
                "businessunitid": BU_ID,
                "businessunitid__type": "businessunit",
                "applicationid": ROUTER_APPLICATION_ID,
            },
            None,
        ),
    )


def _demo_case_rule(storage: Storage, me: str) -> None:
    rule = guid("convertrule", CASE_RULE_NAME)
    storage.insert(
        ENTITIES["convertrule"],
        _base(
            "convertrule",
            {
                "convertruleid": rule,
                "name": CASE_RULE_NAME,
                "queueid": guid("queue", DEMO_QUEUES[0][0]),
                "queueid__type": "queue",
                "statecode": 1,
                "statuscode": 2,
                "allowunknownsender": 1,
                "checkifresolved": 1,
                "resolvedsince": 7,
                "sendresponsetocustomer": 1,
                "tbx_responsesubject": "We have received your request",
                "tbx_responsetext": "Thank you for contacting Contoso support. "
                "Your case number is in the subject of this message.",
            },
            me,
        ),
    )
    storage.insert(
        ENTITIES["convertruleitem"],
        _base(
            "convertruleitem",
            {
                "convertruleitemid": guid("convertruleitem", CASE_RULE_NAME),
                "name": "Create a case",
                "convertruleid": rule,
                "convertruleid__type": "convertrule",
                "sequencenumber": 1,
            },
            me,
        ),
    )


# -- bulk data -------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def seed_bulk(
    storage: Storage,
    *,
    accounts: int = 0,
    contacts: int = 0,
    leads: int = 0,
    users: int = 0,
    opportunities: int = 0,
    incidents: int = 0,
    password: str = demo.DEMO_PASSWORD,
    rng_seed: int = 7,
) -> dict[str, int]:
    """Deterministic realistic data: ~5% of records without e-mail, ~2% of leads share an
    address with a contact. Returns the number of rows created per entity."""
    rng = random.Random(rng_seed)
    ensure_organisation(storage)
    owners = [
        r["systemuserid"]
        for r in storage.query("SELECT systemuserid FROM systemuser ORDER BY internalemailaddress")
    ]
    owners += _add_bulk_users(storage, users, password)
    if not owners:
        raise ValueError("Create at least one user first (--users N or 'user add').")
    counts = {"systemuser": users}
    with storage.transaction():
        acc_ids, rows = _bulk_accounts(rng, accounts, owners)
        counts["account"] = _insert_rows(storage, "account", rows)
        rows, contact_emails = _bulk_contacts(rng, contacts, acc_ids, owners)
        counts["contact"] = _insert_rows(storage, "contact", rows)
        rows = _bulk_leads(rng, leads, contact_emails, owners)
        counts["lead"] = _insert_rows(storage, "lead", rows)
        rows = _bulk_opportunities(rng, opportunities if acc_ids else 0, acc_ids, owners)
        counts["opportunity"] = _insert_rows(storage, "opportunity", rows)
        rows = _bulk_incidents(incidents if acc_ids else 0, acc_ids, owners)
        counts["incident"] = _insert_rows(storage, "incident", rows)
    return counts


def _insert_rows(storage: Storage, logical: str, rows: list[Row]) -> int:
    """One ``executemany`` for the whole table (what makes 100,000 rows take seconds)."""
    storage.insert_many(ENTITIES[logical], rows)
    return len(rows)


def _add_bulk_users(storage: Storage, count: int, password: str) -> list[str]:
    """``count`` sales users sharing one password hash; the number in each address continues
    after the existing users, so repeated runs add new people."""
    start = int(storage.scalar("SELECT COUNT(*) FROM systemuser"))
    one_hash = hash_password(password) if count else None
    added = []
    for i in range(count):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        address = f"{_slug(first)}.{_slug(last)}{start + i}@crm-users.example"
        added.append(
            add_user(
                storage,
                first=first,
                last=last,
                email=address,
                password=password,
                title="Sales",
                password_hash=one_hash,
            )
        )
    return added


def _bulk_accounts(
    rng: random.Random, count: int, owners: list[str]
) -> tuple[list[str], list[Row]]:
    """``count`` accounts with their ids (later rows attach to them round-robin)."""
    acc_ids: list[str] = []
    rows: list[Row] = []
    for i in range(count):
        name = (
            f"{COMPANY_A[i % len(COMPANY_A)]} {COMPANY_B[(i // 15) % len(COMPANY_B)]} "
            f"{SUFFIX[i % len(SUFFIX)]} {i // 225 + 1}"
        )
        aid = guid("account", f"bulk:{i}")
        acc_ids.append(aid)
        email: str | None = None if rng.random() < 0.05 else f"info@{_slug(name)}.example"
        values: Row = {
            "accountid": aid,
            "name": name,
            "emailaddress1": email,
            "telephone1": None,
            "address1_city": rng.choice(CITIES),
        }
        rows.append(_base("account", values, owners[i % len(owners)]))
    return acc_ids, rows


def _bulk_contacts(
    rng: random.Random, count: int, acc_ids: list[str], owners: list[str]
) -> tuple[list[Row], list[str]]:
    """``count`` contacts and the e-mail addresses they got (some leads reuse them)."""
    rows: list[Row] = []
    contact_emails: list[str] = []
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        parent = acc_ids[i % len(acc_ids)] if acc_ids else None
        email = (
            None
            if rng.random() < 0.05
            else f"{_slug(first)}.{_slug(last)}.{i}@customer{i % 997}.example"
        )
        if email:
            contact_emails.append(email)
        values: Row = {
            "contactid": guid("contact", f"bulk:{i}"),
            "firstname": first,
            "lastname": last,
            "emailaddress1": email,
            "emailaddress2": None,
            "jobtitle": "Buyer",
            "telephone1": f"+1 555 {i:07d}",
            "address1_city": CITIES[i % len(CITIES)],
            "parentcustomerid": parent,
            "parentcustomerid__type": "account" if parent else None,
        }
        rows.append(_base("contact", values, owners[i % len(owners)]))
    return rows, contact_emails


def _bulk_leads(
    rng: random.Random, count: int, contact_emails: list[str], owners: list[str]
) -> list[Row]:
    """``count`` leads; ~2% take a contact's address, so resolution meets duplicates."""
    rows: list[Row] = []
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email: str | None
        if contact_emails and rng.random() < 0.02:
            email = rng.choice(contact_emails)
        elif rng.random() < 0.05:
            email = None
        else:
            email = f"{_slug(first)}.{_slug(last)}.{i}@prospect{i % 503}.example"
        values: Row = {
            "leadid": guid("lead", f"bulk:{i}"),
            "firstname": first,
            "lastname": last,
            "emailaddress1": email,
            "companyname": f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}",
            "subject": "Website enquiry",
        }
        rows.append(_base("lead", values, owners[i % len(owners)]))
    return rows


def _bulk_opportunities(
    rng: random.Random, count: int, acc_ids: list[str], owners: list[str]
) -> list[Row]:
    rows: list[Row] = []
    for i in range(count):
        acc = acc_ids[i % len(acc_ids)]
        values: Row = {
            "opportunityid": guid("opportunity", f"bulk:{i}"),
            "name": f"Deal {i + 1}",
            "customerid": acc,
            "customerid__type": "account",
            "parentaccountid": acc,
            "parentaccountid__type": "account",
            "estimatedvalue": float(rng.randrange(1000, 200000, 500)),
        }
        rows.append(_base("opportunity", values, owners[i % len(owners)]))
    return rows


def _bulk_incidents(count: int, acc_ids: list[str], owners: list[str]) -> list[Row]:
    rows: list[Row] = []
    for i in range(count):
        acc = acc_ids[i % len(acc_ids)]
        values: Row = {
            "incidentid": guid("incident", f"bulk:{i}"),
            "title": f"Case {i + 1}",
            "ticketnumber": f"CAS-{i + 1:06d}",
            "customerid": acc,
            "customerid__type": "account",
        }
        rows.append(_base("incident", values, owners[i % len(owners)]))
    return rows
