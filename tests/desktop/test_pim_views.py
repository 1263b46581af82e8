"""Mail, Calendar, Contacts and Tasks (issue 20) in the window on the demo: Ctrl+1…4 switch
views; the calendar shows the demo's appointments (recurring ones too) in the week and month
views; an appointment made in the dialog appears; Track and Untrack a contact and Set
Regarding on a task reach the demo CRM (the emulator, queried) after a PIM pass; the tasks
view marks overdue tasks; and no call of the PIM service runs on the GUI thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from core.workspace.pim import PimService
from desktop.pim_common import PimViewBase
from desktop.pim_dialogs import PimItemDialog
from desktop.pim_nav import CALENDAR, CONTACTS, MAIL, TASKS
from desktop.regarding import RegardingPicker
from desktop.tasks_view import OVERDUE_ROLE

SERVICE_CALLS = ("items", "get", "save", "delete", "track", "untrack", "set_regarding", "sync")


@pytest.fixture
def on_gui_thread(monkeypatch) -> Iterator[list[str]]:
    """Names of PimService calls made on the GUI (main) thread; must stay empty."""
    found: list[str] = []
    for name in SERVICE_CALLS:
        original = getattr(PimService, name)

        def spy(self, *args, __original=original, __name=name, **kwargs):  # type: ignore[no-untyped-def]
            if threading.current_thread() is threading.main_thread():
                found.append(__name)
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(PimService, name, spy)
    yield found


def first_pass(qtbot, window) -> None:
    """The PIM pass that follows the first mail sync has finished."""
    qtbot.waitUntil(lambda: window.pim_nav.passes >= 1, timeout=120_000)


def another_pass(qtbot, window) -> None:
    nav = window.pim_nav
    qtbot.waitUntil(lambda: not nav._syncing, timeout=60_000)
    before = nav.passes
    nav.sync_now()
    qtbot.waitUntil(lambda: nav.passes > before, timeout=120_000)


def refreshed(qtbot, view: PimViewBase) -> None:
    with qtbot.waitSignal(view.loaded, timeout=30_000):
        view.refresh()


def item(view: PimViewBase, title: str):  # type: ignore[no-untyped-def]
    found = [i for i in view.items if i.title == title]
    assert found, f"{title!r} not in {[i.title for i in view.items]}"
    return found[0]


def test_ctrl_1_to_4_switch_views(qtbot, window, on_gui_thread) -> None:
    nav = window.pim_nav
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=10_000)
    for key, index, view in (
        (Qt.Key.Key_2, CALENDAR, nav.calendar),
        (Qt.Key.Key_3, CONTACTS, nav.contacts),
        (Qt.Key.Key_4, TASKS, nav.tasks),
    ):
        qtbot.keyClick(window, key, Qt.KeyboardModifier.ControlModifier)
        assert nav.current() == index and nav.stack.currentWidget() is view
        assert nav.buttons[index].isChecked()
        assert nav.item_menu_action.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert nav.current() == MAIL and nav.stack.currentWidget() is window.mail_view.panel.parent()
    assert not nav.item_menu_action.isVisible()
    nav.buttons[CONTACTS].click()  # the switcher under the folder tree
    assert nav.current() == CONTACTS
    window.resize(800, 500)  # usable at 800×500: the switcher shows all four
    QApplication.processEvents()
    assert all(b.isVisible() and b.width() > 20 for b in nav.buttons)
    assert on_gui_thread == []


def test_calendar_week_and_month_show_the_demo_and_a_new_appointment(
    qtbot, window, demo, on_gui_thread
) -> None:
    first_pass(qtbot, window)
    nav, calendar = window.pim_nav, window.pim_nav.calendar
    nav.switch_to(CALENDAR)
    refreshed(qtbot, calendar)
    anchor = demo.anchor.date()
    calendar.go_to(anchor)
    week = calendar.texts()
    joined = "\n".join(week)
    for subject in ("Team stand-up", "Product demo for Northwind", "Lunch with Olivia Brooks"):
        assert subject in joined
    # The all-day event sits in the top row.
    all_day = [calendar.week.item(0, c) for c in range(7)]
    assert any(c is not None and "Trade fair in Lyon" in c.text() for c in all_day)
    # The tracked one, created in the CRM by the first pass, carries the tracked icon.
    assert item(calendar, "Product demo for Northwind").crm_id is not None

    calendar.set_mode("month")
    month = "\n".join(calendar.texts())
    # The weekly stand-up repeats on every Monday of the month's six weeks.
    assert month.count("Team stand-up ↻") >= 4
    assert "Trade fair in Lyon" in month

    # A new appointment made in the dialog appears.
    calendar.set_mode("week")
    calendar.action_new.trigger()
    dialog = window.findChild(PimItemDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.edits["subject"].setText("Site visit at Litware")  # type: ignore[attr-defined]
    monday = anchor - timedelta(days=anchor.weekday())
    start = dialog.start.dateTime()
    day = monday + timedelta(days=2)
    start.setDate(start.date().__class__(day.year, day.month, day.day))
    start.setTime(start.time().__class__(15, 0))
    dialog.start.setDateTime(start)
    dialog.end.setDateTime(start.addSecs(3600))
    dialog.accept()
    qtbot.waitUntil(
        lambda: any("15:00 Site visit at Litware" in t for t in calendar.texts()), timeout=30_000
    )
    assert on_gui_thread == []


def test_track_and_untrack_a_contact_reach_the_crm(qtbot, window, demo, on_gui_thread) -> None:
    first_pass(qtbot, window)
    nav, contacts = window.pim_nav, window.pim_nav.contacts
    nav.switch_to(CONTACTS)
    refreshed(qtbot, contacts)
    address = "peter.lindqvist@personal.example"
    crm = demo.workspace.crm

    def in_crm() -> list[dict]:
        return list(crm.query("contacts", filter=f"emailaddress1 eq '{address}'"))

    assert in_crm() == []
    peter = item(contacts, "Peter Lindqvist")
    contacts.select_key(peter.key)
    assert contacts.banner.text.text().startswith("<b>Not tracked</b>")
    assert contacts.action_track.isEnabled() and not contacts.action_untrack.isEnabled()
    contacts.action_track.trigger()
    qtbot.waitUntil(
        lambda: "waiting for the next synchronisation" in contacts.banner.text.text(),
        timeout=30_000,
    )

    another_pass(qtbot, window)
    refreshed(qtbot, contacts)
    rows = in_crm()
    assert len(rows) == 1 and rows[0]["lastname"] == "Lindqvist"
    peter = item(contacts, "Peter Lindqvist")
    assert peter.crm_id == rows[0]["contactid"]
    contacts.select_key(peter.key)
    assert "Tracked in CRM" in contacts.banner.text.text()

    contacts.action_untrack.trigger()
    qtbot.waitUntil(lambda: "Not tracked" in contacts.banner.text.text(), timeout=30_000)
    assert item(contacts, "Peter Lindqvist").crm_id is None
    another_pass(qtbot, window)
    refreshed(qtbot, contacts)
    # Untracked: personal again after a pass, the CRM's record kept (not duplicated).
    assert not item(contacts, "Peter Lindqvist").tracked
    assert len(in_crm()) == 1
    # The search box narrows the list.
    qtbot.keyClicks(contacts.search, "lindq")
    assert contacts.rows() == ["Peter Lindqvist"]
    assert on_gui_thread == []


def test_tasks_overdue_complete_and_set_regarding(qtbot, window, demo, on_gui_thread) -> None:
    first_pass(qtbot, window)
    nav, tasks = window.pim_nav, window.pim_nav.tasks
    nav.switch_to(TASKS)
    refreshed(qtbot, tasks)
    overdue = tasks.row_of("Send the Fabrikam proposal")
    later = tasks.row_of("Prepare the Northwind quote")
    done = tasks.row_of("Book the venue for the partner day")
    assert overdue is not None and later is not None and done is not None
    assert overdue.data(0, OVERDUE_ROLE) is True and later.data(0, OVERDUE_ROLE) is False
    assert overdue.foreground(2).color().name() == "#c62828"
    assert done.checkState(1) == Qt.CheckState.Checked and done.text(4) == "Completed"

    # Complete by the checkbox.
    later.setCheckState(1, Qt.CheckState.Checked)
    qtbot.waitUntil(
        lambda: item(tasks, "Prepare the Northwind quote").fields["statecode"] == 1,
        timeout=30_000,
    )

    # Set Regarding on the tracked, overdue task (created in the CRM by the first pass).
    task = item(tasks, "Send the Fabrikam proposal")
    assert task.crm_id is not None and task.crm_id.startswith("task:")
    tasks.select_key(task.key)
    tasks.action_regarding.trigger()
    picker = window.findChild(RegardingPicker, "RegardingPicker")
    assert picker is not None and picker.isVisible()
    with qtbot.waitSignal(
        picker.results_changed, timeout=10_000, check_params_cb=lambda s: s == "crm"
    ):
        qtbot.keyClicks(picker.edit, "northwind")
    names = [h.record.name for h in picker.model.hits()]
    for _ in range(names.index("Northwind Traders")):
        qtbot.keyClick(picker.edit, Qt.Key.Key_Down)
    account = picker.current_hit().record
    qtbot.keyClick(picker.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: "Tracked in CRM (regarding Northwind Traders)" in tasks.banner.text.text(),
        timeout=30_000,
    )

    another_pass(qtbot, window)
    row = demo.workspace.crm.get("tasks", task.crm_id.partition(":")[2])
    assert row["_regardingobjectid_value"] == account.id
    assert on_gui_thread == []


def test_demo_dates_are_this_week(demo) -> None:
    """The demo's appointments lie in the week of its anchor (what the calendar opens on)."""
    service = PimService(demo.data_dir, "demo", lambda: demo.workspace.crm, lambda: None)
    from core.pim.sides import PimKind

    starts = [i.fields["scheduledstart"][:10] for i in service.items(PimKind.APPOINTMENT)]
    monday = demo.anchor.date() - timedelta(days=demo.anchor.weekday())
    week = {(monday + timedelta(days=d)).isoformat() for d in range(7)}
    assert starts and set(starts) <= week
    assert isinstance(date.fromisoformat(starts[0]), date)


def test_calendar_screenshot_stages_the_week_with_a_tracked_appointment(qtbot, window) -> None:
    from desktop.screenshots import stage

    shot: list[object] = []
    stage(window, "calendar", shot.append)
    qtbot.waitUntil(lambda: bool(shot), timeout=120_000)
    calendar = window.pim_nav.calendar
    assert shot == [window] and window.pim_nav.current() == CALENDAR
    assert calendar.current is not None and calendar.current.crm_id is not None
    assert calendar.banner.isVisible() and "Tracked in CRM" in calendar.banner.text.text()


def test_pim_dialogs_name_every_focusable_widget(qtbot) -> None:
    from core.pim.sides import PimKind
    from tests.desktop.test_accessible_names import unnamed

    for kind in PimKind:
        dialog = PimItemDialog(kind, None, None, lambda _done: None)
        qtbot.addWidget(dialog)
        assert unnamed(dialog) == [], kind
