"""The demo organisation: one source of truth for the emulator's ``--seed demo`` and the demo
mailbox generator, so that the mails in the demo mailbox come from people the demo CRM knows.

All domains are under the reserved ``.example`` TLD (RFC 2606): nothing here can reach a real
mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass

ORGANISATION_NAME = "Contoso Demo"
INTERNAL_DOMAIN = "contoso.example"
DEMO_PASSWORD = "demo"  # the emulator's demo users; never a real secret


@dataclass(frozen=True, slots=True)
class DemoUser:
    first: str
    last: str
    email: str
    title: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass(frozen=True, slots=True)
class DemoAccount:
    name: str
    domain: str
    email: str
    city: str


@dataclass(frozen=True, slots=True)
class DemoContact:
    first: str
    last: str
    email: str
    account: str  # DemoAccount.name
    job_title: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass(frozen=True, slots=True)
class DemoLead:
    first: str
    last: str
    email: str
    company: str
    topic: str

    @property
    def full_name(self) -> str:
        return f"{self.first} {self.last}"


#: The person at the keyboard in ``trackbox demo``.
ME = DemoUser("Alex", "Morgan", f"alex.morgan@{INTERNAL_DOMAIN}", "Account Manager")

COLLEAGUES: tuple[DemoUser, ...] = (
    DemoUser("Priya", "Shah", f"priya.shah@{INTERNAL_DOMAIN}", "Sales Director"),
    DemoUser("Tomás", "Ferreira", f"tomas.ferreira@{INTERNAL_DOMAIN}", "Support Engineer"),
    DemoUser("Hannah", "Becker", f"hannah.becker@{INTERNAL_DOMAIN}", "Inside Sales"),
)

USERS: tuple[DemoUser, ...] = (ME, *COLLEAGUES)

ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("Fabrikam Inc.", "fabrikam.example", "info@fabrikam.example", "Seattle"),
    DemoAccount("Northwind Traders", "northwind.example", "office@northwind.example", "London"),
    DemoAccount(
        "Adventure Works", "adventure-works.example", "hello@adventure-works.example", "Denver"
    ),
    DemoAccount("Litware GmbH", "litware.example", "kontakt@litware.example", "München"),
    DemoAccount("Tailspin Toys", "tailspin.example", "sales@tailspin.example", "Lyon"),
    DemoAccount("Wingtip Solutions", "wingtip.example", "contact@wingtip.example", "Madrid"),
)

CONTACTS: tuple[DemoContact, ...] = (
    DemoContact("Jane", "Doe", "jane.doe@fabrikam.example", "Fabrikam Inc.", "Purchasing Manager"),
    DemoContact("Mark", "Chen", "mark.chen@fabrikam.example", "Fabrikam Inc.", "CTO"),
    DemoContact(
        "Olivia",
        "Brooks",
        "olivia.brooks@northwind.example",
        "Northwind Traders",
        "Operations Lead",
    ),
    DemoContact(
        "Samuel", "Okafor", "samuel.okafor@northwind.example", "Northwind Traders", "Finance"
    ),
    DemoContact("Lena", "Vogel", "lena.vogel@litware.example", "Litware GmbH", "Einkauf"),
    DemoContact(
        "Jürgen", "Maaß", "juergen.maass@litware.example", "Litware GmbH", "Geschäftsführer"
    ),
    DemoContact(
        "Camille",
        "Durand",
        "camille.durand@tailspin.example",
        "Tailspin Toys",
        "Responsable achats",
    ),
    DemoContact(
        "Diego", "Martín", "diego.martin@wingtip.example", "Wingtip Solutions", "IT Manager"
    ),
    DemoContact(
        "Grace", "Kim", "grace.kim@adventure-works.example", "Adventure Works", "Project Manager"
    ),
    # Shares her address with a lead below: resolution must find both records.
    DemoContact(
        "Ruth", "Alvarez", "ruth.alvarez@adventure-works.example", "Adventure Works", "Buyer"
    ),
)

LEADS: tuple[DemoLead, ...] = (
    DemoLead(
        "Ruth",
        "Alvarez",
        "ruth.alvarez@adventure-works.example",
        "Adventure Works",
        "Bulk licence renewal",
    ),
    DemoLead(
        "Kenji",
        "Watanabe",
        "kenji.watanabe@proseware.example",
        "Proseware",
        "Interested in the premium plan",
    ),
    DemoLead(
        "Fatima",
        "Haddad",
        "fatima.haddad@blueyonder.example",
        "Blue Yonder Airlines",
        "Fleet tracking pilot",
    ),
    DemoLead("Noah", "Williams", "noah.williams@coho.example", "Coho Winery", "Webinar follow-up"),
)

#: People the CRM does not know: their mail must not be tracked by sender rules.
UNKNOWN_SENDERS: tuple[tuple[str, str], ...] = (
    ("Newsletter", "news@daily-digest.example"),
    ("Chris Parker", "chris.parker@gmail.example"),
    ("Conference Team", "events@techconf.example"),
    ("Ines Costa", "ines.costa@margie-travel.example"),
)
