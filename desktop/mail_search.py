"""The search bar's glue to the message list (issue 17): what the bar's words, scope and
filters ask for (a :class:`SearchRequest` in the list's order), and the results put in the
list instead of the folder's rows.

Results replace the folder's rows as a narrower source (the selection stays on messages
still listed), and clearing the bar brings the folder back the same way. Results are listed
flat, even in a folder grouped by conversation. The searching itself (on a worker, newest
wins) is ``desktop.search``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt

from core.store.search import index_backlog
from desktop.errors import describe
from desktop.messages import SORT_KEYS, Column, RowSource
from desktop.search import SearchRequest, SearchRunner, SearchSource, results_text

if TYPE_CHECKING:
    from core.store import Store
    from desktop.host import WindowHost
    from desktop.mailview import MailView
    from desktop.workers import Workers

log = logging.getLogger(__name__)


class SearchResults(SearchSource):
    """Search results; those of all folders (or of a CRM view) come from every folder, so
    the list shows the Folder column for them."""

    @property
    def shows_folder(self) -> bool:
        return self.request.folder is None


class ListSearch(QObject):
    """Connects ``view.search_bar`` to the list of ``view``: searches on the bar's changes
    and the list's order changes, shows the results, and gives the folder back."""

    def __init__(self, view: MailView, host: WindowHost, workers: Workers) -> None:
        super().__init__(view)
        self._view = view
        self._host = host
        self.base: RowSource | None = None  # the folder or CRM view the search narrows
        self.results: SearchSource | None = None  # the search results shown, if any
        self.runner = SearchRunner(workers, self._worker_store, self)
        self.runner.found.connect(self._show_results)
        self.runner.failed.connect(lambda exc: host.say(f"Search failed. {describe(exc)}"))

    def _worker_store(self) -> Store:
        """The calling worker thread's connection (searches run there)."""
        ws = self._host.workspace
        if ws is None:
            raise RuntimeError("no workspace")
        return ws.store()

    def searching(self) -> bool:
        """Whether the list shows search results."""
        return self.results is not None

    def leave(self, base: RowSource | None) -> None:
        """No search: nothing running, the bar empty, ``base`` the rows a search narrows."""
        self.runner.request(None)
        self._view.search_bar.clear(emit=False)
        self.base, self.results = base, None

    def request(self) -> SearchRequest:
        """What the bar asks for, in the list's order."""
        view = self._view
        folder, states = view.scope
        if view.search_bar.all_folders():
            folder, states = None, None
        header = view.list.horizontalHeader()
        section = header.sortIndicatorSection()
        order_by = SORT_KEYS.get(Column(section), "date") if 0 <= section < len(Column) else "date"
        return SearchRequest(
            text=view.search_bar.text(),
            folder=folder,
            states=states,
            filters=view.search_bar.filters(),
            order_by=order_by,
            descending=header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder,
        )

    def changed(self) -> None:
        """New words, scope or filters: search on a worker, or (none left) show the folder
        again with the selection on the same messages."""
        view = self._view
        if self._host.workspace is None:
            return
        if view.search_bar.active():
            self.runner.request(self.request())
            return
        self.runner.request(None)
        view.search_bar.show_count(None)
        if self.results is not None:
            self.results = None
            view.flat_model.replace_source(self.base)  # its layoutChanged: selection_changed
            view.list.setColumnHidden(Column.FOLDER, not view.flat_model.shows_folder)
            view.conversation_glue.search_left()

    def order_changed(self, *_: object) -> None:
        if self._view.search_bar.active():  # the results were ordered by the search: ask again
            self.changed()

    def _show_results(self, request: SearchRequest, row_ids: Sequence[int], complete: bool) -> None:
        """A search's first page (``complete`` False: the whole list follows) or its whole
        list. The same rows again are left as they are (no re-layout, no repaint: while typing
        a word, its first page often stays the same); the count waits for the whole list."""
        view = self._view
        store = view.read_store()
        if store is None or not view.search_bar.active():
            return
        # Results are listed flat, even in a grouped folder.
        switched = view.list.model() is not view.flat_model
        view.use_model(view.flat_model, select=False)
        if self.results is None or not self.results.same_ids(row_ids):
            self.results = SearchResults(store, request, row_ids)
            view.flat_model.replace_source(self.results)  # its layoutChanged: selection_changed
        if switched:
            view.clear_pane()
            view.select_first()
            view.selection_changed.emit()
        # All-folders results come from every folder: the Folder column says which.
        view.list.setColumnHidden(Column.FOLDER, not view.flat_model.shows_folder)
        if complete:
            view.search_bar.show_count(len(row_ids))
            self._host.say(results_text(len(row_ids)))
        else:
            view.search_bar.show_searching()
        view.results_shown.emit(request, complete)


def index_backlog_in_background(host: WindowHost, workers: Workers) -> None:
    """Bodies cached before the search index existed go into it in the background, one
    short write at a time behind the other writers (the first search may miss them)."""
    ws = host.workspace
    if ws is None:
        return

    def more(indexed: int) -> None:
        if indexed and host.workspace is ws:
            index_backlog_in_background(host, workers)

    def failed(exc: BaseException) -> None:
        log.warning("indexing cached bodies for search stopped: %r", exc)

    workers.run(lambda: index_backlog(ws.store()), more, failed, serial=True)
