"""The reasons name a sender's table with the one entity table's label
(``core.domain.entities``), not with a second list of words."""

from __future__ import annotations

import pytest

from core.domain.entities import EMAIL_ENABLED, entity
from core.domain.model import Address, RecordRef
from core.domain.resolution import describe_sender

JANE = Address("jane.doe@fabrikam.example", "Jane Doe")


@pytest.mark.parametrize("logical", EMAIL_ENABLED)
def test_sender_is_named_by_its_table_label(logical: str) -> None:
    text = describe_sender(JANE, [RecordRef(logical, "id-1", "Jane")])
    assert text == f"Sender Jane Doe is a CRM {entity(logical).label}"


def test_the_words_people_read() -> None:
    said = {
        logical: describe_sender(JANE, [RecordRef(logical, "id-1")])
        for logical in ("contact", "systemuser", "equipment", "team", "businessunit")
    }
    assert said == {
        "contact": "Sender Jane Doe is a CRM contact",
        "systemuser": "Sender Jane Doe is a CRM user",
        "equipment": "Sender Jane Doe is a CRM facility/equipment",
        "team": "Sender Jane Doe is a CRM team",  # not in the table: its logical name
        "businessunit": "Sender Jane Doe is a CRM business unit",
    }
