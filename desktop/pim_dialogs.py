"""Create and edit dialogs for contacts, appointments and tasks (issue 20), with a Track in
CRM tick and, for appointments and tasks, Set Regarding through the regarding picker
(:class:`desktop.regarding.RegardingPicker`). The dialog only collects fields: the view's
worker writes them (``core.workspace.pim.PimService.save``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QDateTime
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.domain.model import RecordRef
from core.pim.sides import TRACK_FIELD, PimKind

if TYPE_CHECKING:
    from core.workspace.pim import PimItem

CONTACT_FIELDS = (
    ("firstname", "&First name"),
    ("lastname", "&Last name"),
    ("emailaddress1", "&E-mail"),
    ("telephone1", "&Business phone"),
    ("mobilephone", "&Mobile phone"),
    ("jobtitle", "&Job title"),
    ("address1_city", "&City"),
)
RECURRENCES: tuple[tuple[str, str | None], ...] = (
    ("Does not repeat", None),
    ("Daily", "FREQ=DAILY"),
    ("Weekly", "FREQ=WEEKLY"),
    ("Monthly", "FREQ=MONTHLY"),
)
PRIORITY_CHOICES = (("Low", 0), ("Normal", 1), ("High", 2))
TITLES = {PimKind.CONTACT: "Contact", PimKind.APPOINTMENT: "Appointment", PimKind.TASK: "Task"}


def _iso(edit: QDateTimeEdit) -> str:
    when = edit.dateTime().toPython()
    assert isinstance(when, datetime)
    return when.astimezone().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(edit: QDateTimeEdit) -> date:
    day = edit.date().toPython()
    assert isinstance(day, date)
    return day


def _set_when(edit: QDateTimeEdit, value: Any, default: datetime) -> None:
    from core.workspace.pim import parse_time

    when = parse_time(value)
    if when is None:
        when = default
    if not isinstance(when, datetime):
        when = datetime(when.year, when.month, when.day).astimezone()
    local = when.astimezone()
    edit.setDateTime(
        QDateTime(local.year, local.month, local.day, local.hour, local.minute, local.second)
    )


class PimItemDialog(QDialog):
    """New or open an item of ``kind``. ``pick_regarding(done)`` opens the regarding picker
    and calls ``done(ref)`` with the choice (the window provides it)."""

    def __init__(
        self,
        kind: PimKind,
        item: PimItem | None,
        parent: QWidget | None = None,
        pick_regarding: Callable[[Callable[[RecordRef], None]], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.kind, self.item = kind, item
        self.setObjectName(f"{kind.value}Dialog")
        verb = "New" if item is None else "Edit"
        self.setWindowTitle(f"{verb} {TITLES[kind].lower()}")
        self.regarding: RecordRef | None = item.regarding if item is not None else None
        self._pick = pick_regarding
        self.edits: dict[str, QWidget] = {}
        form = QFormLayout()
        fields = item.fields if item is not None else {}
        if kind is PimKind.CONTACT:
            for name, label in CONTACT_FIELDS:
                edit = QLineEdit(str(fields.get(name) or ""))
                edit.setObjectName(name)
                form.addRow(label, edit)
                self.edits[name] = edit
        else:
            self._activity_rows(form, fields)
        self.track = QCheckBox("&Track in CRM")
        self.track.setObjectName("trackInCrm")
        self.track.setChecked(item.tracked if item is not None else False)
        form.addRow(self.track)
        if kind is not PimKind.CONTACT:
            form.addRow(self._regarding_row())
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)

    def _activity_rows(self, form: QFormLayout, fields: Any) -> None:
        subject = QLineEdit(str(fields.get("subject") or ""))
        subject.setObjectName("subject")
        form.addRow("&Subject", subject)
        self.edits["subject"] = subject
        now = datetime.now().astimezone().replace(minute=0, second=0, microsecond=0)
        if self.kind is PimKind.APPOINTMENT:
            location = QLineEdit(str(fields.get("location") or ""))
            location.setObjectName("location")
            form.addRow("&Location", location)
            self.edits["location"] = location
            self.start = self._when("start", "St&art", form)
            _set_when(self.start, fields.get("scheduledstart"), now + timedelta(hours=1))
            self.end = self._when("end", "&End", form)
            _set_when(self.end, fields.get("scheduledend"), now + timedelta(hours=2))
            self.all_day = QCheckBox("All &day")
            self.all_day.setChecked(bool(fields.get("isalldayevent")))
            form.addRow(self.all_day)
            self.recurrence = QComboBox()
            self.recurrence.setObjectName("recurrence")
            self.recurrence.view().setAccessibleName("Repeat choices")
            for label, rule in RECURRENCES:
                self.recurrence.addItem(label, rule)
            current = str(fields.get("recurrence") or "")
            for i, (_label, rule) in enumerate(RECURRENCES):
                if rule and current.startswith(rule):
                    self.recurrence.setCurrentIndex(i)
            form.addRow("&Repeat", self.recurrence)
        else:
            self.end = self._when("due", "&Due", form)
            _set_when(self.end, fields.get("scheduledend"), now + timedelta(days=1))
            self.priority = QComboBox()
            self.priority.setObjectName("priority")
            self.priority.view().setAccessibleName("Priority choices")
            for label, code in PRIORITY_CHOICES:
                self.priority.addItem(label, code)
            self.priority.setCurrentIndex(int(fields.get("prioritycode") or 1))
            form.addRow("&Priority", self.priority)
            self.completed = QCheckBox("&Completed")
            self.completed.setChecked(fields.get("statecode") == 1)
            form.addRow(self.completed)
        notes = QPlainTextEdit(str(fields.get("description") or ""))
        notes.setObjectName("description")
        notes.setAccessibleName("Notes")
        notes.setTabChangesFocus(True)
        notes.setMaximumHeight(90)
        form.addRow("&Notes", notes)
        self.edits["description"] = notes

    def _when(self, name: str, label: str, form: QFormLayout) -> QDateTimeEdit:
        edit = QDateTimeEdit()
        edit.setObjectName(name)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("ddd dd MMM yyyy HH:mm")
        form.addRow(label, edit)
        return edit

    def _regarding_row(self) -> QWidget:
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        self.regarding_label = QLabel()
        self.regarding_label.setObjectName("regardingLabel")
        self.regarding_button = QPushButton("Set &Regarding…")
        self.regarding_button.setEnabled(self._pick is not None)
        self.regarding_button.clicked.connect(self._choose_regarding)
        line.addWidget(self.regarding_label, 1)
        line.addWidget(self.regarding_button)
        self._show_regarding()
        return row

    def _show_regarding(self) -> None:
        ref = self.regarding
        text = f"Regarding: {ref.name or ref.entity} ({ref.entity})" if ref else "Regarding: none"
        self.regarding_label.setText(text)

    def _choose_regarding(self) -> None:
        if self._pick is None:
            return

        def chosen(ref: RecordRef) -> None:
            self.regarding = ref
            self.track.setChecked(True)
            self._show_regarding()

        self._pick(chosen)

    def fields(self) -> dict[str, Any]:
        """What the user entered, in the PIM vocabulary (``core.pim.sides``)."""
        out: dict[str, Any] = {}
        for name, edit in self.edits.items():
            text = edit.toPlainText() if isinstance(edit, QPlainTextEdit) else edit.text()  # type: ignore[attr-defined]
            out[name] = text.strip() or None
        if self.kind is PimKind.APPOINTMENT:
            if self.all_day.isChecked():
                start = _day(self.start)
                end = max(_day(self.end), start + timedelta(days=1))
                out.update(scheduledstart=start.isoformat(), scheduledend=end.isoformat())
            else:
                out.update(scheduledstart=_iso(self.start), scheduledend=_iso(self.end))
            out["isalldayevent"] = self.all_day.isChecked()
            rule = self.recurrence.currentData()
            out["recurrence"] = rule
        elif self.kind is PimKind.TASK:
            out["scheduledend"] = _iso(self.end)
            out["prioritycode"] = self.priority.currentData()
            out["statecode"] = 1 if self.completed.isChecked() else 0
            out["activitytypecode"] = "task"
            if self.completed.isChecked():
                out["percentcomplete"] = 100
        out[TRACK_FIELD] = self.track.isChecked()
        if self.regarding is not None:
            from core.workspace.pim import REGARDING_FIELD, REGARDING_NAME

            out[REGARDING_FIELD] = f"{self.regarding.entity}:{self.regarding.id}"
            out[REGARDING_NAME] = self.regarding.name
        return out


__all__ = ["PimItemDialog"]
