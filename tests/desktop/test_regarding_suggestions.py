"""The regarding picker's suggestions (issue 17): opened for a mail with nothing typed, it
shows the mail's people, their accounts, open opportunities and cases (from the CRM, kept for
offline use) and recent choices, grouped and keyboard navigable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt

from core.domain import demo_data
from core.domain.model import Address, MailRef, MessageHeader, RecordRef
from core.workspace.regarding import (
    RECENT_LIMIT,
    SUGGESTION_GROUPS,
    RegardingHit,
    RegardingSearch,
    RegardingSuggestions,
    choose_suggestions,
)
from crmserver.seed import guid
from desktop.demo import DemoEnvironment
from desktop.regarding import RegardingPicker
from desktop.workers import Workers

JANE = Address("jane.doe@fabrikam.example", "Jane Doe")
OPPORTUNITY = "Fabrikam Inc.: Annual licence renewal"
CASE = "Login fails after update"


def _from_jane() -> MessageHeader:
    return MessageHeader(
        ref=MailRef("INBOX", "x-1"),
        message_id="<suggest-1@fabrikam.example>",
        subject="Renewal question",
        sender=JANE,
        to=(Address(demo_data.ME.email, "Me"),),
    )


@pytest.fixture
def picker_for(qtbot, demo: DemoEnvironment, workers: Workers) -> Iterator[object]:
    opened: list[RegardingPicker] = []

    def make(online: bool) -> RegardingPicker:
        ws = demo.workspace
        picker = RegardingPicker(
            RegardingSearch(ws.store, ws.crm),
            workers,
            online=online,
            suggest_for=_from_jane(),
            ok_text="Link",
        )
        qtbot.addWidget(picker)
        opened.append(picker)
        return picker

    yield make
    for picker in opened:
        picker.close()
    workers.wait()


def _lines(picker: RegardingPicker) -> list[str]:
    model = picker.model
    return [
        str(model.data(model.index(r, 0), Qt.ItemDataRole.DisplayRole)).strip()
        for r in range(model.rowCount())
    ]


def _wait_for(qtbot, picker: RegardingPicker, source: str) -> None:
    sources: list[str] = []
    picker.results_changed.connect(sources.append)
    qtbot.waitUntil(lambda: source in sources or "error" in sources, timeout=60_000)
    assert "error" not in sources, picker.status.text()


def test_suggestions_for_a_mail_from_a_known_contact(qtbot, picker_for) -> None:
    picker = picker_for(True)
    _wait_for(qtbot, picker, "suggested-crm")
    lines = _lines(picker)
    heads = [SUGGESTION_GROUPS[g] for g in ("suggested-people", "suggested-accounts")]
    heads += [SUGGESTION_GROUPS["suggested-opportunities"], SUGGESTION_GROUPS["suggested-cases"]]
    assert [line for line in lines if line in heads] == heads  # grouped, in this order
    people = lines.index(heads[0])
    assert lines[people + 1].startswith("Jane Doe")
    assert lines[lines.index(heads[1]) + 1].startswith("Fabrikam Inc.")
    assert lines[lines.index(heads[2]) + 1].startswith(OPPORTUNITY)
    assert lines[lines.index(heads[3]) + 1].startswith(CASE)
    assert picker.buttons.button(picker.buttons.StandardButton.Ok).text() == "Link"

    # Keyboard: the first record is current; Down skips the headings; Enter picks.
    hit = picker.current_hit()
    assert hit is not None and hit.record.name == "Jane Doe"
    picker.move_current(1)
    assert picker.current_hit() is not None
    assert picker.current_hit().record.name == "Fabrikam Inc."
    picker.move_current(1)
    qtbot.keyClick(picker.edit, Qt.Key.Key_Return)
    assert picker.selected() == RecordRef(
        "opportunity",
        guid("opportunity", f"Fabrikam Inc.:{OPPORTUNITY.split(': ')[1]}"),
        OPPORTUNITY,
    )


def test_offline_suggestions_use_what_the_crm_said_before(qtbot, picker_for) -> None:
    first = picker_for(False)  # offline, nothing kept yet: says the CRM is needed
    _wait_for(qtbot, first, "suggested-local")
    assert "need the CRM" in first.status.text()
    lines = _lines(first)
    assert any(line.startswith("Jane Doe") for line in lines)  # from the address book
    assert not any(line.startswith(OPPORTUNITY) for line in lines)

    _wait_for(qtbot, picker_for(True), "suggested-crm")  # online once: the CRM's answers are kept
    again = picker_for(False)
    _wait_for(qtbot, again, "suggested-local")
    assert any(line.startswith(OPPORTUNITY) for line in _lines(again))
    assert "need the CRM" not in again.status.text()


def test_typing_searches_and_clearing_brings_suggestions_back(qtbot, picker_for) -> None:
    picker = picker_for(False)
    _wait_for(qtbot, picker, "suggested-local")
    picker.edit.setText("northwind")
    qtbot.waitUntil(
        lambda: any(line.startswith("Northwind") for line in _lines(picker)), timeout=60_000
    )
    assert SUGGESTION_GROUPS["suggested-people"] not in _lines(picker)
    picker.edit.setText("")
    qtbot.waitUntil(lambda: SUGGESTION_GROUPS["suggested-people"] in _lines(picker), timeout=60_000)


def test_recent_choices_most_recent_first_at_most_ten(demo: DemoEnvironment) -> None:
    search = RegardingSearch(demo.workspace.store)
    refs = [RecordRef("account", f"00000000-0000-0000-0000-{i:012d}", f"A{i}") for i in range(12)]
    for ref in refs:
        search.remember(ref)
    search.remember(refs[3])  # chosen again: back on top
    names = [h.record.name for h in search.recent()]
    assert names == ["A3", "A11", "A10", "A9", "A8", "A7", "A6", "A5", "A4", "A2"]
    assert len(names) == RECENT_LIMIT
    suggested = RegardingSuggestions(search, _from_jane()).local().hits
    assert [h.record.name for h in suggested if h.group == "recent"] == names


def test_choose_suggestions_groups_and_drops_repeats() -> None:
    jane = RecordRef("contact", "c1", "Jane Doe")
    fab = RecordRef("account", "a1", "Fabrikam Inc.")
    opp = RecordRef("opportunity", "o1", "Renewal")
    user = RecordRef("systemuser", "u1", "Me")
    people = [RegardingHit(jane, "contact"), RegardingHit(user, "systemuser")]
    related = {("contact", "c1"): [RegardingHit(fab, "account"), RegardingHit(opp, "opportunity")]}
    recent = [RegardingHit(opp, "recent"), RegardingHit(RecordRef("lead", "l1", "Lee"), "recent")]
    got = [(h.group, h.record.name) for h in choose_suggestions(people, related, recent)]
    assert got == [
        ("suggested-people", "Jane Doe"),  # a user cannot be regarding: not suggested
        ("suggested-accounts", "Fabrikam Inc."),
        ("suggested-opportunities", "Renewal"),
        ("recent", "Lee"),  # the opportunity shows once, in its first group
    ]


def test_a_found_record_without_an_address_says_why(qtbot, picker_for, demo) -> None:
    """A contact with no e-mail is a valid regarding record, but the address books leave it
    out: the picker says so on the line instead of leaving the user to wonder."""
    from core.domain.new_party import NO_ADDRESS

    demo.workspace.crm.create("contacts", {"firstname": "Quill", "lastname": "Noaddress"})
    picker = picker_for(True)
    _wait_for(qtbot, picker, "suggested-local")
    picker.edit.setText("Quill")
    _wait_for(qtbot, picker, "reasons")
    line = next(x for x in _lines(picker) if x.startswith("Quill Noaddress"))
    assert line.endswith(NO_ADDRESS)
    row = next(r for r in range(picker.model.rowCount()) if "Quill" in _lines(picker)[r])
    tip = picker.model.data(picker.model.index(row, 0), Qt.ItemDataRole.ToolTipRole)
    assert tip == f"Not in the address book: {NO_ADDRESS}"
