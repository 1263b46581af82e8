"""The Calendar view (issue 20): a week view (a row for all-day events on top, then an hour
per row, each appointment placed at its start and spanning its hours) and a month view (a
cell per day), recurring instances shown (``core.workspace.pim.occurrences`` expands them),
and a details pane under the tracking banner. The tracked icon marks each tracked entry.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.pim.sides import PimKind
from desktop.icons import state_icon
from desktop.pim_common import PimViewBase, details_html, item_state
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.workspace.pim import Occurrence, PimItem

KEYS_ROLE = Qt.ItemDataRole.UserRole + 1
FIRST_HOUR = 0
HOURS = 24
ALL_DAY_ROW = 0
WORK_START = 8
ENTRY = QColor("#dbe8f7")


def _local_tz() -> tzinfo:
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


class CalendarView(PimViewBase):
    kind = PimKind.APPOINTMENT

    def __init__(self, workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(workers, parent)
        self.setObjectName("calendarView")
        self.day = date.today()
        self.mode = "week"
        self.shown: list[Occurrence] = []
        self.week = self._table("calendarWeek", "Week view")
        self.month = self._table("calendarMonth", "Month view")
        self.month.setRowCount(6)
        self.month.verticalHeader().setVisible(False)
        self.month.setColumnCount(7)
        self.month.setHorizontalHeaderLabels(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
        self.week.setColumnCount(7)
        self.week.setRowCount(1 + HOURS)
        labels = ["All day", *[f"{h:02d}:00" for h in range(FIRST_HOUR, FIRST_HOUR + HOURS)]]
        self.week.setVerticalHeaderLabels(labels)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.week)
        self.pages.addWidget(self.month)
        right = self.details_column("appointmentDetails", "Appointment details")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.pages)
        split.addWidget(right)
        split.setSizes([640, 260])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar())
        layout.addLayout(self._navigation())
        layout.addWidget(split, 1)

    def _table(self, name: str, label: str) -> QTableWidget:
        table = QTableWidget()
        table.setObjectName(name)
        table.setAccessibleName(label)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setWordWrap(True)
        table.horizontalHeader().setStretchLastSection(False)
        from PySide6.QtWidgets import QHeaderView

        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        table.customContextMenuRequested.connect(lambda pos: self.show_menu(table.viewport(), pos))
        table.currentCellChanged.connect(lambda r, c, _r, _c: self._picked(table, r, c))
        table.cellDoubleClicked.connect(lambda _r, _c: self._open_current())
        return table

    def _navigation(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setContentsMargins(4, 2, 4, 2)
        self.previous_button = QPushButton("◀")
        self.previous_button.setAccessibleName("Previous")
        self.today_button = QPushButton("Today")
        self.next_button = QPushButton("▶")
        self.next_button.setAccessibleName("Next")
        self.week_button = QPushButton("Week")
        self.month_button = QPushButton("Month")
        group = QButtonGroup(self)
        for button in (self.week_button, self.month_button):
            button.setCheckable(True)
            group.addButton(button)
        self.week_button.setChecked(True)
        self.title = QLabel()
        self.title.setObjectName("calendarTitle")
        self.previous_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.today_button.clicked.connect(lambda: self.go_to(date.today()))
        self.week_button.clicked.connect(lambda: self.set_mode("week"))
        self.month_button.clicked.connect(lambda: self.set_mode("month"))
        for widget in (self.previous_button, self.today_button, self.next_button):
            row.addWidget(widget)
        row.addWidget(self.title, 1)
        row.addWidget(self.week_button)
        row.addWidget(self.month_button)
        return row

    # -- navigation ------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.pages.setCurrentWidget(self.week if mode == "week" else self.month)
        (self.week_button if mode == "week" else self.month_button).setChecked(True)
        self.show_items(self.items)

    def go_to(self, day: date) -> None:
        self.day = day
        self.show_items(self.items)

    def step(self, direction: int) -> None:
        if self.mode == "week":
            self.go_to(self.day + timedelta(days=7 * direction))
        else:
            month = self.day.month - 1 + direction
            self.go_to(date(self.day.year + month // 12, month % 12 + 1, 1))

    def range(self) -> tuple[date, date]:
        """The first and last day shown."""
        if self.mode == "week":
            first = self.day - timedelta(days=self.day.weekday())
            return first, first + timedelta(days=6)
        start = self.day.replace(day=1)
        first = start - timedelta(days=start.weekday())
        return first, first + timedelta(days=41)

    # -- filling -----------------------------------------------------------------------------
    def show_items(self, items: list[PimItem]) -> None:
        from core.workspace.pim import occurrences

        first, last = self.range()
        self.shown = occurrences(items, first, last, _local_tz())
        if self.mode == "week":
            self.title.setText(f"Week of {first:%d %b %Y}")
            self._fill_week(first)
        else:
            self.title.setText(f"{self.day:%B %Y}")
            self._fill_month(first)

    def _fill_week(self, first: date) -> None:
        table = self.week
        table.clearSpans()
        table.clearContents()
        table.setHorizontalHeaderLabels([f"{first + timedelta(days=d):%a %d}" for d in range(7)])
        cells: dict[tuple[int, int], list[Occurrence]] = {}
        spans: dict[tuple[int, int], int] = {}
        for occ in self.shown:
            start = occ.start
            col = ((start.date() if isinstance(start, datetime) else start) - first).days
            if not 0 <= col < 7:
                continue
            if occ.all_day or not isinstance(start, datetime) or not isinstance(occ.end, datetime):
                cells.setdefault((ALL_DAY_ROW, col), []).append(occ)
                continue
            row = 1 + start.hour - FIRST_HOUR
            hours = max(1, -(-int((occ.end - start).total_seconds()) // 3600))
            cells.setdefault((row, col), []).append(occ)
            spans[(row, col)] = max(spans.get((row, col), 1), min(hours, HOURS + 1 - row))
        taken: set[tuple[int, int]] = set()
        for (row, col), found in sorted(cells.items()):
            if (row, col) in taken:
                continue
            table.setItem(row, col, self._entry(found))
            span = spans.get((row, col), 1)
            if span > 1 and all((r, col) not in cells for r in range(row + 1, row + span)):
                table.setSpan(row, col, span, 1)
                taken.update((r, col) for r in range(row, row + span))
        table.scrollTo(
            table.model().index(1 + WORK_START, 0), QAbstractItemView.ScrollHint.PositionAtTop
        )

    def _fill_month(self, first: date) -> None:
        table = self.month
        table.clearContents()
        by_day: dict[date, list[Occurrence]] = {}
        for occ in self.shown:
            start = occ.start.date() if isinstance(occ.start, datetime) else occ.start
            by_day.setdefault(start, []).append(occ)
        for n in range(42):
            day = first + timedelta(days=n)
            entry = self._entry(by_day.get(day, []), header=f"{day.day}")
            if day.month != self.day.month:
                entry.setForeground(QBrush(QColor("#8a8f98")))
            table.setItem(n // 7, n % 7, entry)

    def _entry(self, found: list[Occurrence], header: str | None = None) -> QTableWidgetItem:
        lines = [header] if header else []
        for occ in found:
            when = "" if occ.all_day else f"{occ.start:%H:%M} "
            mark = " ↻" if occ.recurring else ""
            lines.append(f"{when}{occ.item.title}{mark}")
        entry = QTableWidgetItem("\n".join(lines))
        entry.setData(KEYS_ROLE, [o.item.key for o in found])
        if found:
            entry.setBackground(QBrush(ENTRY))
            entry.setIcon(state_icon(item_state(found[0].item)))
            entry.setToolTip("\n".join(lines))
        return entry

    def texts(self) -> list[str]:
        """Every non-empty cell's text of the page shown (tests, screenshots)."""
        table = self.week if self.mode == "week" else self.month
        out = []
        for r in range(table.rowCount()):
            for c in range(table.columnCount()):
                cell = table.item(r, c)
                if cell is not None and cell.data(KEYS_ROLE):
                    out.append(cell.text())
        return out

    def select_key(self, key: str) -> None:
        table = self.week if self.mode == "week" else self.month
        for r in range(table.rowCount()):
            for c in range(table.columnCount()):
                cell = table.item(r, c)
                if cell is not None and key in (cell.data(KEYS_ROLE) or []):
                    table.setCurrentCell(r, c)
                    self.selected_changed(next((i for i in self.items if i.key == key), None))
                    return

    def _picked(self, table: QTableWidget, row: int, col: int) -> None:
        cell = table.item(row, col)
        keys = cell.data(KEYS_ROLE) if cell is not None else None
        key = keys[0] if keys else None
        self.selected_changed(next((i for i in self.items if i.key == key), None))

    def show_details(self, item: PimItem | None) -> None:
        self.details.setHtml(details_html(item))
