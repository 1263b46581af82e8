"""The message list's widgets (issue 17): the table itself, the panel that puts the search bar
over it, and moving that panel into the place the window gave the bare list.

The window's layout is built around ``MailView.list``; the panel (search bar over list) takes
its place once that layout exists, so the window need not know about the search bar.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLayout,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop.messages import Column, MessageDelegate, MessageListModel

COLUMN_WIDTHS = (
    (Column.STATE, 28),
    (Column.ATTACHMENT, 24),
    (Column.FROM, 170),
    (Column.RECEIVED, 136),
    (Column.SIZE, 64),
    (Column.REGARDING, 150),
)


def message_list(model: MessageListModel) -> QTableView:
    """The list: whole rows selected, sorted in the store (newest first), Subject stretched."""
    view = QTableView()
    view.setObjectName("messageList")
    view.setAccessibleName("Messages")
    view.setModel(model)
    view.setItemDelegate(MessageDelegate(view))  # paints from one tuple per row: cheaper repaints
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setSortingEnabled(True)
    view.sortByColumn(Column.RECEIVED, Qt.SortOrder.DescendingOrder)
    view.setShowGrid(False)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(22)
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(False)
    header.setSectionResizeMode(Column.SUBJECT, QHeaderView.ResizeMode.Stretch)
    for col, width in COLUMN_WIDTHS:
        view.setColumnWidth(col, width)
    return view


def list_panel(bar: QWidget, view: QTableView) -> QWidget:
    """The search bar over the message list."""
    panel = QWidget()
    panel.setObjectName("messagePanel")
    column = QVBoxLayout(panel)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(0)
    column.addWidget(bar)
    column.addWidget(view, 1)
    return panel


def adopt_list_slot(view: QTableView, panel: QWidget) -> None:
    """Put ``panel`` where the window put the bare ``view`` (a splitter keeps its sizes),
    and the view back into the panel."""
    holder = view.parentWidget()
    if holder is None or holder is panel:
        return
    if isinstance(holder, QSplitter):
        sizes = holder.sizes()
        holder.replaceWidget(holder.indexOf(view), panel)
        holder.setSizes(sizes)
    elif (layout := holder.layout()) is not None:
        layout.replaceWidget(view, panel)
    else:
        return
    panel_layout = panel.layout()
    assert isinstance(panel_layout, QLayout)
    panel_layout.addWidget(view)
    panel.show()
    view.show()
