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
from .entities import ENTITIES
from .oauth_clients import register_default_clients
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


def seed_demo(storage: Storage) -> bool:
    """Fill an empty database with the demo organisation; False when already seeded."""
    if storage.scalar("SELECT COUNT(*) FROM systemuser"):
        return False
    with storage.transaction():
        ensure_organisation(storage)
        # One slow hash for the shared demo password keeps start-up fast (tests start many
        # servers); users added later get their own salt.
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
        me = user_id(demo.ME.email)
        ins = storage.insert
        for acc in demo.ACCOUNTS:
            ins(
                ENTITIES["account"],
                _base(
                    "account",
                    {
                        "accountid": guid("account", acc.name),
                        "name": acc.name,
                        "emailaddress1": acc.email,
                        "address1_city": acc.city,
                        "websiteurl": f"https://www.{acc.domain}",
                    },
                    me,
                ),
            )
        for c in demo.CONTACTS:
            ins(
                ENTITIES["contact"],
                _base(
                    "contact",
                    {
                        "contactid": guid("contact", c.email),
                        "firstname": c.first,
                        "lastname": c.last,
                        "emailaddress1": c.email,
                        "jobtitle": c.job_title,
                        "parentcustomerid": guid("account", c.account),
                        "parentcustomerid__type": "account",
                    },
                    me,
                ),
            )
        for lead in demo.LEADS:
            ins(
                ENTITIES["lead"],
                _base(
                    "lead",
                    {
                        "leadid": guid("lead", lead.email),
                        "firstname": lead.first,
                        "lastname": lead.last,
                        "emailaddress1": lead.email,
                        "companyname": lead.company,
                        "subject": lead.topic,
                    },
                    me,
                ),
            )
        for name, local in (("Support", "support"), ("Sales", "sales")):
            qid = guid("queue", name)
            address = f"{local}@{demo.INTERNAL_DOMAIN}"
            ins(
                ENTITIES["queue"],
                _base("queue", {"queueid": qid, "name": name, "emailaddress": address}, me),
            )
            ins(
                ENTITIES["mailbox"],
                _base(
                    "mailbox",
                    {
                        "mailboxid": guid("mailbox", address),
                        "name": name,
                        "emailaddress": address,
                        "regardingobjectid": qid,
                        "regardingobjectid__type": "queue",
                        "incomingemaildeliverymethod": 2,
                        "outgoingemaildeliverymethod": 2,
                    },
                    me,
                ),
            )
        ins(
            ENTITIES["equipment"],
            _base(
                "equipment",
                {
                    "equipmentid": guid("equipment", "Projector Room 1"),
                    "name": "Projector Room 1",
                    "emailaddress": f"room1@{demo.INTERNAL_DOMAIN}",
                    "businessunitid": BU_ID,
                    "businessunitid__type": "businessunit",
                },
                me,
            ),
        )
        for acc, topic in zip(
            demo.ACCOUNTS[:4],
            ("Annual licence renewal", "Fleet rollout", "Premium support upgrade", "Pilot project"),
            strict=True,
        ):
            ins(
                ENTITIES["opportunity"],
                _base(
                    "opportunity",
                    {
                        "opportunityid": guid("opportunity", f"{acc.name}:{topic}"),
                        "name": f"{acc.name}: {topic}",
                        "customerid": guid("account", acc.name),
                        "customerid__type": "account",
                        "parentaccountid": guid("account", acc.name),
                        "parentaccountid__type": "account",
                        "estimatedvalue": 25000.0,
                    },
                    me,
                ),
            )
        for n, (acc, title) in enumerate(
            zip(
                demo.ACCOUNTS[:3],
                ("Login fails after update", "Invoice shows wrong VAT", "Sync stops at 99%"),
                strict=True,
            ),
            start=1,
        ):
            ins(
                ENTITIES["incident"],
                _base(
                    "incident",
                    {
                        "incidentid": guid("incident", f"{acc.name}:{title}"),
                        "title": title,
                        "ticketnumber": f"CAS-{1000 + n:05d}",
                        "customerid": guid("account", acc.name),
                        "customerid__type": "account",
                    },
                    me,
                ),
            )
    return True


# -- bulk data -------------------------------------------------------------------------------

FIRST = (
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Klara",
    "Lukas",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Rosa",
    "Stefan",
    "Tara",
    "Umar",
    "Vera",
    "Will",
    "Xenia",
    "Yusuf",
    "Zoe",
    "Amir",
    "Bianca",
    "Chen",
    "Dana",
    "Emil",
)
LAST = (
    "Schmidt",
    "Garcia",
    "Nguyen",
    "Smith",
    "Rossi",
    "Novak",
    "Kowalski",
    "Dubois",
    "Silva",
    "Jensen",
    "Okafor",
    "Tanaka",
    "Müller",
    "Andersson",
    "Horvat",
    "Popescu",
    "Fischer",
    "Moreau",
    "Costa",
    "Brown",
    "Ivanova",
    "Lindqvist",
    "Haddad",
    "Kim",
)
COMPANY_A = (
    "Blue",
    "North",
    "Silver",
    "Bright",
    "Green",
    "Rapid",
    "Prime",
    "Urban",
    "Alpine",
    "Coastal",
    "Iron",
    "Golden",
    "Quiet",
    "Clever",
    "Solid",
)
COMPANY_B = (
    "Logistics",
    "Foods",
    "Systems",
    "Works",
    "Labs",
    "Energy",
    "Textiles",
    "Media",
    "Health",
    "Motors",
    "Analytics",
    "Design",
    "Finance",
    "Garden",
    "Robotics",
)
SUFFIX = ("Ltd", "GmbH", "Inc.", "S.A.", "B.V.", "AG", "LLC", "Oy")
CITIES = (
    "Berlin",
    "Lisbon",
    "Austin",
    "Osaka",
    "Lagos",
    "Toronto",
    "Lyon",
    "Krakow",
    "Melbourne",
    "Nairobi",
)


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
    start = int(storage.scalar("SELECT COUNT(*) FROM systemuser"))
    one_hash = hash_password(password) if users else None
    for i in range(users):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        address = f"{_slug(first)}.{_slug(last)}{start + i}@crm-users.example"
        owners.append(
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
    if not owners:
        raise ValueError("Create at least one user first (--users N or 'user add').")
    counts = {"systemuser": users}
    with storage.transaction():
        acc_ids: list[str] = []
        rows: list[Row] = []
        for i in range(accounts):
            name = (
                f"{COMPANY_A[i % len(COMPANY_A)]} {COMPANY_B[(i // 15) % len(COMPANY_B)]} "
                f"{SUFFIX[i % len(SUFFIX)]} {i // 225 + 1}"
            )
            aid = guid("account", f"bulk:{i}")
            acc_ids.append(aid)
            email: str | None = None if rng.random() < 0.05 else f"info@{_slug(name)}.example"
            rows.append(
                _base(
                    "account",
                    {
                        "accountid": aid,
                        "name": name,
                        "emailaddress1": email,
                        "telephone1": None,
                        "address1_city": rng.choice(CITIES),
                    },
                    owners[i % len(owners)],
                )
            )
        storage.insert_many(ENTITIES["account"], rows)
        counts["account"] = len(rows)
        rows, contact_emails = [], []
        for i in range(contacts):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            parent = acc_ids[i % len(acc_ids)] if acc_ids else None
            email = (
                None
                if rng.random() < 0.05
                else f"{_slug(first)}.{_slug(last)}.{i}@customer{i % 997}.example"
            )
            if email:
                contact_emails.append(email)
            rows.append(
                _base(
                    "contact",
                    {
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
                    },
                    owners[i % len(owners)],
                )
            )
        storage.insert_many(ENTITIES["contact"], rows)
        counts["contact"] = len(rows)
        rows = []
        for i in range(leads):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            if contact_emails and rng.random() < 0.02:
                email = rng.choice(contact_emails)
            elif rng.random() < 0.05:
                email = None
            else:
                email = f"{_slug(first)}.{_slug(last)}.{i}@prospect{i % 503}.example"
            rows.append(
                _base(
                    "lead",
                    {
                        "leadid": guid("lead", f"bulk:{i}"),
                        "firstname": first,
                        "lastname": last,
                        "emailaddress1": email,
                        "companyname": f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}",
                        "subject": "Website enquiry",
                    },
                    owners[i % len(owners)],
                )
            )
        storage.insert_many(ENTITIES["lead"], rows)
        counts["lead"] = len(rows)
        rows = []
        for i in range(opportunities if acc_ids else 0):
            acc = acc_ids[i % len(acc_ids)]
            rows.append(
                _base(
                    "opportunity",
                    {
                        "opportunityid": guid("opportunity", f"bulk:{i}"),
                        "name": f"Deal {i + 1}",
                        "customerid": acc,
                        "customerid__type": "account",
                        "parentaccountid": acc,
                        "parentaccountid__type": "account",
                        "estimatedvalue": float(rng.randrange(1000, 200000, 500)),
                    },
                    owners[i % len(owners)],
                )
            )
        storage.insert_many(ENTITIES["opportunity"], rows)
        counts["opportunity"] = len(rows)
        rows = []
        for i in range(incidents if acc_ids else 0):
            acc = acc_ids[i % len(acc_ids)]
            rows.append(
                _base(
                    "incident",
                    {
                        "incidentid": guid("incident", f"bulk:{i}"),
                        "title": f"Case {i + 1}",
                        "ticketnumber": f"CAS-{i + 1:06d}",
                        "customerid": acc,
                        "customerid__type": "account",
                    },
                    owners[i % len(owners)],
                )
            )
        storage.insert_many(ENTITIES["incident"], rows)
        counts["incident"] = len(rows)
    return counts
