"""The message list's delegate paints from the model's paint tuple exactly what the stock
delegate paints from ``data()``; the model's flags are the stock ones plus dragging."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QStyledItemDelegate, QTableView

from core.domain.model import TrackState
from desktop.messages import MessageDelegate, MessageListModel
from tests.desktop.test_message_model import ListSource


def _source() -> ListSource:
    source = ListSource(60)
    for i, row in enumerate(source.items):
        header = replace(row.header, is_read=bool(i % 3), has_attachments=i % 4 == 0)
        state = TrackState.TRACKED if i % 5 == 0 else TrackState.NOT_TRACKED
        source.items[i] = replace(row, header=header, track_state=state)
    return source


def _grab(view: QTableView) -> QImage:
    view.viewport().repaint()
    QApplication.processEvents()
    return view.viewport().grab().toImage()


def test_delegate_paints_what_the_stock_delegate_paints(qapp: QApplication) -> None:
    model = MessageListModel()
    model.set_source(_source())  # type: ignore[arg-type]
    view = QTableView()
    view.resize(900, 500)
    view.setModel(model)
    view.show()
    selection = view.selectionModel()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for row in (1, 2, 5):
        selection.select(model.index(row, 0), flags)
    stock = _grab(view)
    view.setItemDelegate(MessageDelegate(view))
    ours = _grab(view)
    assert not stock.isNull()
    assert ours == stock
    view.setEnabled(False)  # the disabled icon mode too
    ours_disabled = _grab(view)
    view.setItemDelegate(QStyledItemDelegate(view))
    assert _grab(view) == ours_disabled
    view.close()


def test_delegate_falls_back_for_rows_without_a_message_and_other_models(
    qapp: QApplication,
) -> None:
    class Plain(QAbstractTableModel):
        def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
            return 3

        def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
            return 2

        def data(self, index: QModelIndex, role: int = 0) -> object:
            return f"cell {index.row()}" if role == Qt.ItemDataRole.DisplayRole else None

    view = QTableView()
    view.resize(300, 200)
    view.setModel(Plain())
    view.show()
    stock = _grab(view)
    view.setItemDelegate(MessageDelegate(view))
    assert _grab(view) == stock
    view.close()
    model = MessageListModel()
    assert model.paint_values(0) is None  # no source: nothing to paint from


def test_flags_are_the_stock_flags_plus_dragging(qapp: QApplication) -> None:
    model = MessageListModel()
    model.set_source(_source())  # type: ignore[arg-type]
    index = model.index(3, 2)
    stock = QAbstractTableModel.flags(model, index)
    assert model.flags(index) == stock | Qt.ItemFlag.ItemIsDragEnabled
    assert model.flags(QModelIndex()) == QAbstractTableModel.flags(model, QModelIndex())
