"""The PIM engine's parts: the three-way merge on plain values, field maps, filters, the
Maildir demo's local side through ``core.pim.sync`` against the emulator, the CardDAV ctag/ETag
fallback and the retry after a stale version (against Radicale)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.pim.carddav_side import CardDavSide
from core.pim.crm_contacts import CrmContactsSide
from core.pim.fields import CONTACT_MAP, Direction, FieldMapError, effective_map
from core.pim.filters import FilterError, PimFilter, SavedView, default_filter
from core.pim.local_side import LocalSide
from core.pim.merge import merge
from core.pim.sides import PimKind, PimRecord, VersionConflict
from core.pim.state import FILE_NAME
from core.pim.sync import PimSettings, sync_profile
from crmserver import RunningServer
from tests.pim.conftest import ContactsRig, crm_as

BOTH = CONTACT_MAP.with_directions({"jobtitle": "both"})


def test_merge_takes_each_sides_change_and_lets_the_crm_win_a_conflict() -> None:
    base = {"firstname": "A", "lastname": "B", "jobtitle": "Old", "telephone1": "1"}
    crm = {**base, "firstname": "A2", "jobtitle": "CRM"}
    mailbox = {**base, "lastname": "B2", "jobtitle": "Box", "telephone1": ""}
    out = merge(BOTH, base, crm, mailbox)
    assert out.crm == {"lastname": "B2", "telephone1": None}
    assert out.mailbox == {"firstname": "A2", "jobtitle": "CRM"}  # the winner reaches both
    assert out.conflicts == [("jobtitle", "CRM", "Box", "Old")]
    assert out.base["jobtitle"] == "CRM" and out.base["telephone1"] is None


def test_merge_of_an_unchanged_side_and_of_equal_changes_writes_nothing() -> None:
    base = {"firstname": "A"}
    assert merge(BOTH, base, None, {"firstname": " A "}).crm == {}
    same = merge(BOTH, base, {"firstname": "Z"}, {"firstname": "Z"})
    assert (same.crm, same.mailbox, same.conflicts) == ({}, {}, [])


def test_merge_follows_one_way_and_unsynchronised_fields() -> None:
    fields = CONTACT_MAP.with_directions(
        {"jobtitle": "crm_to_mailbox", "telephone1": "mailbox_to_crm", "description": "none"}
    )
    base = {"jobtitle": "J", "telephone1": "T", "description": "D"}
    changed = {"jobtitle": "J2", "telephone1": "T2", "description": "D2"}
    from_crm = merge(fields, base, changed, None)
    assert from_crm.mailbox == {"jobtitle": "J2"} and from_crm.crm == {}
    from_box = merge(fields, base, None, changed)
    assert from_box.crm == {"telephone1": "T2"} and from_box.mailbox == {}
    assert "description" not in from_box.base


def test_field_map_overrides_respect_the_administrators_locks() -> None:
    fields = effective_map(
        PimKind.CONTACT, admin={"jobtitle": "crm_to_mailbox"}, locked=["jobtitle"],
        user={"telephone1": Direction.NONE},
    )  # fmt: skip
    assert fields.direction("jobtitle") is Direction.TO_MAILBOX
    assert fields.direction("telephone1") is Direction.NONE
    assert ("jobtitle", "Job title", Direction.TO_MAILBOX, True) in fields.user_view()
    with pytest.raises(FieldMapError, match="administrator"):
        fields.with_directions({"jobtitle": "both"})
    with pytest.raises(FieldMapError, match="not a mapped"):
        fields.with_directions({"nosuchfield": "both"})


def test_filters_default_as_the_crm_did_and_become_odata() -> None:
    me = "4026be43-0000-0000-0000-000000000001"
    assert default_filter(PimKind.CONTACT).odata(me) == f"statecode eq 0 and _ownerid_value eq {me}"
    appointments = default_filter(PimKind.APPOINTMENT).odata(me) or ""
    assert (
        "appointment_activity_parties/any" in appointments
        and "participationtypemask eq 7" in appointments
    )
    assert default_filter(PimKind.TASK).odata(me) == f"statecode eq 0 and _ownerid_value eq {me}"
    widened = PimFilter(PimKind.CONTACT, owner="any", status="any")
    assert widened.odata(me) is None and widened.local
    narrowed = PimFilter(PimKind.CONTACT, extra="address1_city eq 'Paris'")
    assert not narrowed.local and narrowed.odata(me or "").endswith("(address1_city eq 'Paris')")
    view = PimFilter(PimKind.CONTACT, view=SavedView("userquery", me))
    assert view.query_params(me) == {"userQuery": me}
    with pytest.raises(FilterError):
        PimFilter(PimKind.CONTACT, status="sleeping")


def test_a_narrowed_filter_is_asked_of_the_crm(rig: ContactsRig) -> None:
    rig.filter = PimFilter(PimKind.CONTACT, extra="address1_city eq 'Lyon'")
    lyon = rig.new_contact(
        firstname="Ly", lastname="On", emailaddress1="ly@x.example", address1_city="Lyon"
    )
    rig.new_contact(
        firstname="Pa", lastname="Ris", emailaddress1="pa@x.example", address1_city="Paris"
    )
    rig.run()
    assert {f["contactid"] for f in rig.cards().values()} == {lyon}
    # The Paris contact moves to Lyon: the delta's row is checked with the CRM.
    rig.crm.update("contacts", lyon, {"address1_city": "Nice"})
    rig.run()
    rig.run()
    assert rig.cards() == {}  # left the filter: the card the engine made is removed


def test_the_maildir_demo_keeps_contacts_in_its_local_side(
    fresh_crm_https: RunningServer, tmp_path: Path
) -> None:
    with crm_as(fresh_crm_https) as crm:
        first = sync_profile(crm, tmp_path, "maildir", PimSettings(kinds=(PimKind.CONTACT,)))
        (outcome,) = first
        assert outcome.result is not None and outcome.result.created_in_mailbox > 0
        local = LocalSide(tmp_path / FILE_NAME, PimKind.CONTACT)
        try:
            items = local.items()
            assert len(items) == outcome.result.created_in_mailbox
            item = items[0]
            assert item.record is not None
            crm_id = item.record.fields["contactid"]
            local.put(
                item.key, PimRecord(PimKind.CONTACT, {"jobtitle": "Edited in the demo"}), None
            )
        finally:
            local.close()
        sync_profile(crm, tmp_path, "maildir", PimSettings(kinds=(PimKind.CONTACT,)))
        assert crm.get("contacts", crm_id)["jobtitle"] == "Edited in the demo"
        skipped = sync_profile(crm, tmp_path, "imap", PimSettings(kinds=(PimKind.CONTACT,)))
        assert skipped[0].skipped and "CardDAV" in skipped[0].skipped


def test_carddav_without_sync_collection_falls_back_to_etags(rig: ContactsRig) -> None:
    side = CardDavSide(rig.book.url, rig.book.auth, use_sync=False)
    try:
        first = side.changes(None)
        assert first.full and first.changes == [] and first.token.startswith("ctag:")
        href = rig.put_card(
            "a.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\nN:A;;;;\r\nEND:VCARD\r\n"
        )
        rig.put_card(
            "b.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:b\r\nFN:B\r\nN:B;;;;\r\nEND:VCARD\r\n"
        )
        second = side.changes(first.token)
        assert not second.full and sorted(c.key for c in second.changes) == sorted(
            [href, href.replace("a.vcf", "b.vcf")]
        )
        assert side.changes(second.token).changes == []  # ctag unchanged: nothing fetched
        rig.delete_card(href)
        rig.edit_card(href.replace("a.vcf", "b.vcf"), "FN:B", "FN:B2")
        third = side.changes(second.token)
        assert {(c.key.rsplit("/", 1)[1], c.record is None) for c in third.changes} == {
            ("a.vcf", True),
            ("b.vcf", False),
        }
    finally:
        side.close()


class RacingCrmSide(CrmContactsSide):
    """The real CRM side; before its first update someone else edits the same contact."""

    racer: Any = None
    raced = False
    refused = 0

    def put(self, key: str | None, record: PimRecord, version: str | None) -> tuple[str, str]:
        if key is not None and not self.raced:
            self.raced = True
            self.racer.update("contacts", key, {"jobtitle": "Concurrent"})
        try:
            return super().put(key, record, version)
        except VersionConflict:
            self.refused += 1
            raise


def test_a_stale_version_is_read_again_and_merged(rig: ContactsRig) -> None:
    crm_id = rig.new_contact(firstname="St", lastname="Ale", emailaddress1="stale@x.example")
    rig.run()
    rig.run()
    href, _ = rig.card_for(crm_id)
    rig.edit_card(href, "N:Ale;St;;;", "N:Ale;St;;;\r\nTEL;TYPE=WORK,VOICE:+33 1")
    engine = rig.engine()
    racing = RacingCrmSide(rig.crm, rig.fields.synced(), user_id=rig.user_id)
    racing.racer = rig.crm
    engine.crm = racing
    result = engine.run()
    assert not result.errors and racing.raced
    assert racing.refused == 1  # the first write met the CRM's 412, the second went in
    contact = rig.contact(crm_id)
    assert contact["telephone1"] == "+33 1"  # the mailbox change went in after re-reading
    assert contact["jobtitle"] == "Concurrent"  # the concurrent edit is kept, not overwritten
    rig.run()
    assert rig.card_for(crm_id)[1]["jobtitle"] == "Concurrent"


def test_version_conflict_is_raised_on_a_stale_etag(rig: ContactsRig) -> None:
    side = CardDavSide(rig.book.url, rig.book.auth)
    try:
        key, version = side.put(None, PimRecord(PimKind.CONTACT, {"firstname": "V"}), None)
        side.put(key, PimRecord(PimKind.CONTACT, {"firstname": "V2"}), version)
        with pytest.raises(VersionConflict):
            side.put(key, PimRecord(PimKind.CONTACT, {"firstname": "V3"}), version)
    finally:
        side.close()


def test_an_imap_profile_syncs_contacts_to_its_carddav_book(
    fresh_crm_https: RunningServer, radicale_book: Any, tmp_path: Path
) -> None:
    settings = PimSettings(carddav_url=radicale_book.url, dav_auth=radicale_book.auth)
    with crm_as(fresh_crm_https) as crm:
        outcomes = {o.kind: o for o in sync_profile(crm, tmp_path, "imap", settings)}
    contacts = outcomes[PimKind.CONTACT]
    assert contacts.error is None and contacts.result is not None
    assert contacts.result.created_in_mailbox > 0
    side = CardDavSide(radicale_book.url, radicale_book.auth)
    try:
        assert len(side.changes(None).changes) == contacts.result.created_in_mailbox
    finally:
        side.close()
