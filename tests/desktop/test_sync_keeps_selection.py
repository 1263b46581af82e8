"""A sync leaves the user where they were: the folder tree is not rebuilt when its folders are
unchanged, so the current folder, the selected message and the reading pane survive it."""

from __future__ import annotations

from PySide6.QtCore import QPersistentModelIndex

from core.domain.model import Folder, FolderRole
from desktop.folders import FolderTreeModel
from desktop.roles import FolderPathRole


def settle(qtbot, window, workers) -> None:
    """Let every background job and the callbacks it leads to finish (a folder reload's
    result can start a message load, whose result arrives later still)."""
    for _ in range(4):
        workers.wait()
        qtbot.wait(50)


def test_sync_keeps_the_folder_the_selection_and_the_reading_pane(qtbot, window, workers) -> None:
    settle(qtbot, window, workers)
    folder = window.folder_tree.currentIndex().data(FolderPathRole)
    assert folder and window.message_model.rowCount() > 3
    row = 2  # not the first row: a rebuilt tree reselects row 0
    with qtbot.waitSignal(window.message_shown, timeout=30_000) as shown:
        window.select_rows([row])
    (row_id,) = window.selected_row_ids()
    assert shown.args == [row_id]
    assert window.reading_pane.view is not None and window.reading_pane.view.row_id == row_id

    cleared: list[bool] = []
    window.message_model.modelReset.connect(lambda: cleared.append(True))
    with qtbot.waitSignal(window.mail_synced, timeout=60_000):
        window.sync_now()
    settle(qtbot, window, workers)

    assert window.folder_tree.currentIndex().data(FolderPathRole) == folder
    assert window.selected_row_ids() == [row_id]
    assert window.message_list.selectionModel().currentIndex().row() == row
    assert window.reading_pane.view is not None and window.reading_pane.view.row_id == row_id
    assert cleared == [], "the message list was reset by the sync"


def test_same_folders_relabel_in_place_and_new_folders_rebuild(qtbot) -> None:
    model = FolderTreeModel()
    folders = [Folder("Inbox", "Inbox", FolderRole.INBOX), Folder("Sent", "Sent", FolderRole.SENT)]
    assert model.set_folders(folders, "me@x", sizes={"Inbox": (5, 0)})
    inbox = QPersistentModelIndex(model.index_of_path("Inbox"))
    assert not model.set_folders(list(reversed(folders)), "me@x", sizes={"Inbox": (6, 2)})
    assert inbox.isValid() and inbox.data() == "Inbox (2)"
    assert model.set_folders([*folders, Folder("Archive", "Archive")], "me@x")
    assert not inbox.isValid() and model.index_of_path("Archive") is not None
