"""Contacts sync fixtures: the emulator over HTTPS (its own database per test) and a new
Radicale address book per test, wired into a :class:`ContactsRig`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.pim.carddav_side import CardDavSide
from core.pim.crm_contacts import CrmContactsSide
from core.pim.engine import PassResult, PimEngine
from core.pim.fields import CONTACT_MAP, FieldMap
from core.pim.filters import PimFilter
from core.pim.sides import PimKind
from core.pim.state import PimState
from crmserver import RunningServer
from tests.plugins.crm import crm_ssl_context
from tests.plugins.radicale import DavCollection


def crm_as(server: RunningServer, email: str = demo_data.ME.email) -> CrmClient:
    return CrmClient(
        server.url, BasicAuth(email, demo_data.DEMO_PASSWORD), verify=crm_ssl_context(server)
    )


@dataclass
class ContactsRig:
    """The CRM (as the demo user ``ME``), a colleague's CRM client, the address book, and
    the pairing state; ``engine()`` builds a fresh engine (new sides) for each pass, as a
    new sync run would."""

    crm: CrmClient
    colleague: CrmClient
    book: DavCollection
    state_path: Path
    fields: FieldMap = CONTACT_MAP
    filter: PimFilter | None = None
    last_book: CardDavSide | None = None

    def __post_init__(self) -> None:
        self.state = PimState(self.state_path)
        self.user_id = self.crm.who_am_i().user_id
        self.dav = httpx.Client(auth=self.book.auth, timeout=30)

    def engine(self, *, crash: Callable[[str], None] | None = None) -> PimEngine:
        crm_side = CrmContactsSide(
            self.crm, self.fields.synced(), filter=self.filter, user_id=self.user_id
        )
        self.last_book = CardDavSide(self.book.url, self.book.auth)
        return PimEngine(
            PimKind.CONTACT, crm_side, self.last_book, self.fields, self.state, crash_hook=crash
        )

    def run(self) -> PassResult:
        result = self.engine().run()
        assert not result.errors, result.errors
        return result

    # -- the address book seen with a bare client ------------------------------------------

    def cards(self) -> dict[str, dict[str, Any]]:
        """href → mapped fields of every vCard in the book."""
        side = CardDavSide(self.book.url, self.book.auth)
        try:
            page = side.changes(None)
        finally:
            side.close()
        return {c.key: dict(c.record.fields) for c in page.changes if c.record is not None}

    def card_for(self, crm_id: str) -> tuple[str, dict[str, Any]]:
        found = [(k, f) for k, f in self.cards().items() if f.get("contactid") == crm_id]
        assert len(found) == 1, found
        return found[0]

    def put_card(self, name: str, text: str) -> str:
        url = self.book.url + name
        response = self.dav.put(url, content=text, headers={"Content-Type": "text/vcard"})
        assert response.status_code in (201, 204), response.text
        return str(httpx.URL(url).path)

    def edit_card(self, href: str, old: str, new: str) -> None:
        url = str(httpx.URL(self.book.url).join(href))
        text = self.dav.get(url).text
        assert old in text, text
        response = self.dav.put(url, content=text.replace(old, new))
        assert response.status_code in (201, 204)

    def delete_card(self, href: str) -> None:
        response = self.dav.delete(str(httpx.URL(self.book.url).join(href)))
        assert response.status_code in (200, 204)

    # -- the CRM -------------------------------------------------------------------------------

    def new_contact(self, client: CrmClient | None = None, **values: Any) -> str:
        return (client or self.crm).create("contacts", values)

    def contact(self, crm_id: str) -> dict[str, Any]:
        return self.crm.get("contacts", crm_id)

    def contacts_with(self, email: str) -> list[dict[str, Any]]:
        return list(
            self.crm.query(
                "contacts", select=["contactid", "statecode"], filter=f"emailaddress1 eq '{email}'"
            )
        )

    def close(self) -> None:
        self.state.close()
        self.dav.close()
        if self.last_book is not None:
            self.last_book.close()


@pytest.fixture
def rig(
    fresh_crm_https: RunningServer, radicale_book: DavCollection, tmp_path: Path
) -> Iterator[ContactsRig]:
    crm = crm_as(fresh_crm_https)
    colleague = crm_as(fresh_crm_https, demo_data.COLLEAGUES[0].email)
    made = ContactsRig(crm, colleague, radicale_book, tmp_path / "pim.sqlite")
    try:
        yield made
    finally:
        made.close()
        crm.close()
        colleague.close()
