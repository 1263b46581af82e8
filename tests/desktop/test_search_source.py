"""The search results as the list's row source (issue 17, the search stall): packed ids, a
message placed by a byte search, pages read by primary key in the results' order, and the
list model over it keeps the selection on its messages when the results change."""

from __future__ import annotations

from array import array
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import QTableView

from core.store import Store
from core.store.search import search, search_ids
from desktop.messages import Column, MessageListModel
from desktop.search import SearchRequest, SearchSource
from tests.core_store.conftest import make_header


def _store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "store.sqlite")
    store.upsert_headers(
        [
            make_header("Inbox", i, subject=("report" if i % 2 else "other") + f" {i}")
            for i in range(30)
        ]
    )
    return store


def _request(text: str) -> SearchRequest:
    return SearchRequest(text=text, folder="Inbox", states=None, filters=frozenset())


def test_source_over_packed_ids(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        ids = search_ids(store, "report", folder="Inbox")
        source = SearchSource(store, _request("report"), ids)
        assert source.count() == 15
        assert [r.id for r in source.rows(3, 4, "date", True)] == ids[3:7].tolist()
        assert source.ids("date", True) == ids.tolist()
        outsider = next(r for r in search(store, "other", folder="Inbox"))
        assert source.positions({ids[0], ids[9], outsider}, "date", True) == {ids[0]: 0, ids[9]: 9}
        assert source.message(outsider) is None
        found = source.message(ids[4])
        assert found is not None and found.id == ids[4]
        assert source.same_ids(list(ids)) and source.same_ids(array("q", ids))
        assert not source.same_ids(ids[:5]) and not source.same_ids(ids[::-1])
        listed = SearchSource(store, _request("report"), list(ids))  # a first page's list
        assert listed.row_ids == ids
    finally:
        store.close()


def test_the_selection_follows_its_message_into_new_results(qtbot, tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        model = MessageListModel()
        whole = search_ids(store, "report", folder="Inbox")
        model.set_source(SearchSource(store, _request("report"), whole[:3]))
        view = QTableView()
        qtbot.addWidget(view)
        view.setModel(model)
        flags = (
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows
        )
        view.selectionModel().select(model.index(2, Column.SUBJECT), flags)
        narrower = array("q", [whole[5], whole[2], whole[0]])
        model.replace_source(SearchSource(store, _request("report"), narrower))
        assert [i.row() for i in view.selectionModel().selectedRows()] == [1]
        assert model.row_ids([1]) == [whole[2]]
        model.replace_source(SearchSource(store, _request("report"), whole[:1]))  # it is gone
        assert view.selectionModel().selectedRows() == []
    finally:
        store.close()
