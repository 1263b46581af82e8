"""What the desktop's PIM views rely on in core (``core.workspace.pim``): the banner's words,
recurring instances with a deleted occurrence, overdue tasks, untrack by clearing the Track
tick, and an IMAP profile's items read offline from the pairing state."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from core.domain.model import RecordRef
from core.pim.sides import TRACK_FIELD, PimKind
from core.pim.state import Pair, PimState
from core.workspace.pim import PimItem, PimService, banner, is_overdue, occurrences, seed_demo

NOW = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)  # a Wednesday


def service(folder: Path, backend: str = "demo") -> PimService:
    def no_crm():  # type: ignore[no-untyped-def]
        raise AssertionError("no CRM call expected")

    return PimService(folder, backend, no_crm, lambda: None)


def test_banner_says_tracked_regarding_pending_or_personal() -> None:
    task = PimKind.TASK
    tracked = PimItem(
        task,
        "k",
        "1",
        {
            "activityid": "task:1",
            "regardingobjectid": "account:a1",
            "regardingname": "Northwind Traders",
        },
    )
    assert banner(tracked).text == "Tracked in CRM (regarding Northwind Traders)"
    assert banner(tracked).state == "tracked"
    pending = PimItem(task, "k", "1", {TRACK_FIELD: True})
    assert banner(pending).state == "pending"
    assert "next synchronisation" in banner(pending).text
    personal = PimItem(PimKind.CONTACT, "k", "1", {"firstname": "Ann"})
    assert banner(personal).text == "Not tracked"
    assert "personal contact" in banner(personal).reason


def test_weekly_series_shows_each_week_but_a_deleted_occurrence() -> None:
    series = PimItem(
        PimKind.APPOINTMENT,
        "k",
        "1",
        {
            "subject": "Stand-up",
            "scheduledstart": "2026-12-07T09:00:00Z",
            "scheduledend": "2026-12-07T09:15:00Z",
            "recurrence": "FREQ=WEEKLY;BYDAY=MO",
            "exdates": ["2026-12-14T09:00:00Z"],
        },
    )
    allday = PimItem(
        PimKind.APPOINTMENT,
        "a",
        "1",
        {"subject": "Fair", "scheduledstart": "2026-12-10", "scheduledend": "2026-12-11"},
    )
    found = occurrences([series, allday], date(2026, 12, 1), date(2026, 12, 31), UTC)
    starts = [o.start for o in found if o.item is series]
    assert [s.day for s in starts] == [7, 21, 28]  # type: ignore[union-attr]
    assert all(o.recurring for o in found if o.item is series)
    fair = [o for o in found if o.item is allday]
    assert len(fair) == 1 and fair[0].all_day and fair[0].start == date(2026, 12, 10)


def test_overdue_is_an_open_task_past_its_due_time() -> None:
    def task(due: str, state: int = 0) -> PimItem:
        return PimItem(PimKind.TASK, "k", "1", {"scheduledend": due, "statecode": state})

    assert is_overdue(task("2026-12-09T11:00:00Z"), NOW)
    assert not is_overdue(task("2026-12-09T13:00:00Z"), NOW)
    assert not is_overdue(task("2026-12-08T11:00:00Z", state=1), NOW)
    assert is_overdue(task("2026-12-08"), NOW) and not is_overdue(task("2026-12-09"), NOW)


def test_clearing_the_track_tick_untracks_and_detaches_the_pair(tmp_path: Path) -> None:
    seed_demo(tmp_path, NOW)
    pim = service(tmp_path)
    contact = next(i for i in pim.items(PimKind.CONTACT) if i.title == "Peter Lindqvist")
    pim.save(PimKind.CONTACT, contact.key, {"contactid": "c-1", TRACK_FIELD: True})
    state = PimState.in_profile(tmp_path)
    state.save_pair(Pair("contact", "c-1", contact.key))
    state.close()
    assert pim.get(PimKind.CONTACT, contact.key).tracked

    pim.save(PimKind.CONTACT, contact.key, {TRACK_FIELD: False})
    after = pim.get(PimKind.CONTACT, contact.key)
    assert not after.tracked and after.crm_id is None
    state = PimState.in_profile(tmp_path)
    pair = state.pair_by_crm("contact", "c-1")
    state.close()
    assert pair is not None and pair.status == "detached" and pair.mailbox_key is None


def test_set_regarding_marks_an_activity_tracked(tmp_path: Path) -> None:
    seed_demo(tmp_path, NOW)
    pim = service(tmp_path)
    task = next(i for i in pim.items(PimKind.TASK) if i.title == "Prepare the Northwind quote")
    pim.set_regarding(PimKind.TASK, task.key, RecordRef("account", "a-1", "Northwind"))
    after = pim.get(PimKind.TASK, task.key)
    assert after.regarding == RecordRef("account", "a-1", "Northwind") and after.track_marked


def test_an_imap_profile_shows_the_last_synced_copy_offline(tmp_path: Path) -> None:
    state = PimState.in_profile(tmp_path)
    state.save_pair(Pair("contact", "c-9", "/dav/book/x.vcf", "e1", "m1", {"firstname": "Zoe"}))
    state.save_pair(Pair("contact", "c-8", None, status="detached"))
    state.close()
    pim = service(tmp_path, "imap")
    assert not pim.editable
    items = pim.items(PimKind.CONTACT)
    assert [(i.key, i.title, i.crm_id) for i in items] == [("/dav/book/x.vcf", "Zoe", "c-9")]
