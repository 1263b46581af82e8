"""The CRM entity table (``core.domain.entities``): its look-ups, the facts of reference
section 1, and that every reader of it (address books, regarding picker, Pending Send, the
emulator) agrees with it."""

from __future__ import annotations

import pytest

from core.domain import entities
from core.domain.entities import (
    EMAIL_ENABLED,
    PARTY_TARGETS,
    REGARDING_TARGETS,
    TABLE,
    CrmEntityError,
    NotARegardingTarget,
    UnknownEntity,
    by_set,
    entity,
    regarding_target,
)


def test_lookups_by_logical_name_and_entity_set() -> None:
    contact = entity("contact")
    assert (contact.entity_set, contact.key, contact.name_column) == (
        "contacts",
        "contactid",
        "fullname",
    )
    assert by_set("usersettingscollection") is entity("usersettings")
    assert by_set("equipments").logical == "equipment"


def test_unknown_names_raise_a_typed_error() -> None:
    with pytest.raises(UnknownEntity, match="no CRM entity 'contacts'"):
        entity("contacts")
    with pytest.raises(UnknownEntity, match="no CRM entity set 'contact'"):
        by_set("contact")
    # callers that catch a dictionary's KeyError, or the table's base error, still work
    with pytest.raises(KeyError):
        entity("nosuch")
    with pytest.raises(CrmEntityError):
        entity("nosuch")
    assert str(UnknownEntity("no CRM entity 'x'")) == "no CRM entity 'x'"


def test_regarding_targets_and_binds() -> None:
    account = regarding_target("account")
    assert account.regarding_bind == "regardingobjectid_account_email"
    assert account.bind("a1b2") == "/accounts(a1b2)"
    assert regarding_target("incident").entity_set == "incidents"
    with pytest.raises(NotARegardingTarget, match="a user"):
        regarding_target("systemuser")
    with pytest.raises(UnknownEntity):
        regarding_target("team")
    assert entity("systemuser").regarding_bind is None
    assert set(REGARDING_TARGETS) == {"account", "contact", "lead", "opportunity", "incident"}


def test_parties_and_email_columns_follow_the_reference() -> None:
    expected = {
        "contact": ("emailaddress1", "partyid_contact"),
        "account": ("emailaddress1", "partyid_account"),
        "lead": ("emailaddress1", "partyid_lead"),
        "systemuser": ("internalemailaddress", "partyid_systemuser"),
        "queue": ("emailaddress", "partyid_queue"),
        "equipment": ("emailaddress", "partyid_equipment"),
    }
    assert {e: (entity(e).primary_email, entity(e).party_nav) for e in expected} == expected
    assert entity("contact").email_columns == ("emailaddress1", "emailaddress2", "emailaddress3")
    assert tuple(expected) == EMAIL_ENABLED  # the address books' order
    assert set(PARTY_TARGETS) == {*expected, "opportunity", "incident"}
    assert entity("opportunity").primary_email is None
    assert entity("mailbox").party_nav is None and entity("mailbox").primary_email
    assert entity("email").key == "activityid" and entity("fax").entity_set == "faxes"
    assert entity("incident").label == "case" and entity("equipment").plural == "Facilities"


def test_names_are_unique_and_the_mappings_read_only() -> None:
    assert len({e.logical for e in TABLE}) == len({e.entity_set for e in TABLE}) == len(TABLE)
    assert all(e.label and e.plural for e in TABLE)
    with pytest.raises(TypeError):
        entities.ENTITIES["x"] = entity("contact")  # type: ignore[index]


def test_the_address_books_read_the_table() -> None:
    from core.sync.address_books import SOURCES

    assert tuple(SOURCES) == EMAIL_ENABLED
    for logical, source in SOURCES.items():
        table = entity(logical)
        assert (source.set_name, source.key, source.name, source.email) == (
            table.entity_set,
            table.key,
            table.name_column,
            table.primary_email,
        )


def test_the_regarding_picker_reads_the_table() -> None:
    from core.workspace.regarding import CRM_SPECS, ENTITY_LABELS, GROUP_ORDER, can_be_regarding

    assert sorted(GROUP_ORDER) == sorted(REGARDING_TARGETS)
    assert set(CRM_SPECS) == set(REGARDING_TARGETS)
    for logical, spec in CRM_SPECS.items():
        assert spec.table is entity(logical)
        assert ENTITY_LABELS[logical] == spec.table.plural
    assert ENTITY_LABELS["incident"] == "Cases"
    assert can_be_regarding("lead") and not can_be_regarding("queue")
    assert not can_be_regarding("new_custom")


def test_pending_send_looks_parties_up_by_the_tables_keys() -> None:
    from core.sync import pending_send

    keys = [entity(e).key for e in pending_send._PARTY_ENTITIES]
    assert keys == ["contactid", "accountid", "leadid", "systemuserid"]


def test_the_emulator_serves_the_table() -> None:
    from crmserver import entities as emulator

    assert set(emulator.ENTITIES) == {e.logical for e in TABLE}
    for logical, served in emulator.ENTITIES.items():
        table = entity(logical)
        assert (served.set_name, served.key, served.primary_name) == (
            table.entity_set,
            table.key,
            table.name_column,
        )
        assert served.email_attrs == (table.email_columns if table.party else ())
    assert emulator.BY_SET.keys() == {e.entity_set for e in TABLE}
    email = emulator.ENTITIES["email"]
    regarding = email.attributes["regardingobjectid"]
    assert set(regarding.targets) == set(REGARDING_TARGETS)
    assert {email.nav_name(regarding, t) for t in regarding.targets} == {
        entity(t).regarding_bind for t in REGARDING_TARGETS
    }
    party = emulator.ENTITIES["activityparty"]
    partyid = party.attributes["partyid"]
    assert {party.nav_name(partyid, t) for t in partyid.targets} == {
        entity(t).party_nav for t in PARTY_TARGETS
    }
