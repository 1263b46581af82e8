"""The window at 800×500: Sync and Work offline stay on the toolbar, Subject takes the spare
width; column widths and splitter sizes are remembered per folder, and across a restart."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QSettings
from PySide6.QtWidgets import QApplication, QToolBar

from desktop.mainwindow import MainWindow
from desktop.messages import Column
from desktop.roles import FolderPathRole


def _open(qtbot, win: MainWindow, path: str) -> None:
    index = win.folder_model.index_of_path(path)
    assert index is not None, path
    win.folder_tree.setCurrentIndex(index)
    qtbot.waitUntil(lambda: getattr(win.mail_view.model.source, "folder", None) == path)


def _two_folders(win: MainWindow) -> tuple[str, str]:
    model, paths, todo = win.folder_model, [], [QModelIndex()]
    while todo:
        parent = todo.pop(0)
        for r in range(model.rowCount(parent)):
            index = model.index(r, 0, parent)
            todo.append(index)
            if index.data(FolderPathRole):
                paths.append(index.data(FolderPathRole))
    assert len(paths) >= 2, paths
    return paths[0], paths[1]


def _window(qtbot, workers, demo, settings: QSettings) -> MainWindow:
    win = MainWindow(workers, settings=settings)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.message_shown, timeout=60_000):
        win.set_workspace(demo.workspace)
    qtbot.waitUntil(lambda: win.window_actions.sync_now.isEnabled(), timeout=60_000)
    return win


def _close(win: MainWindow, workers) -> None:
    win.close()
    win.detach_workspace()
    QApplication.processEvents()
    workers.wait()


def test_800_by_500_keeps_sync_and_offline_and_subject_stretches(qtbot, window) -> None:
    window.resize(800, 500)
    qtbot.waitUntil(lambda: window.width() == 800 and window.height() == 500, timeout=5_000)
    toolbar = window.findChild(QToolBar, "crmToolBar")
    a = window.window_actions
    for action in (a.sync_now, a.work_offline, a.new_mail):
        button = toolbar.widgetForAction(action)
        assert button is not None and button.isVisible(), action.objectName()
        right = button.mapTo(window, button.rect().bottomRight()).x()
        assert right <= window.width(), action.objectName()
    header = window.message_list.horizontalHeader()
    others = sum(
        header.sectionSize(c)
        for c in range(header.count())
        if c != Column.SUBJECT and not header.isSectionHidden(c)
    )
    assert header.sectionSize(Column.SUBJECT) >= 100
    assert header.sectionSize(Column.SUBJECT) + others <= window.message_list.viewport().width()

    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.width() == 1280, timeout=5_000)
    wide = header.sectionSize(Column.SUBJECT)
    assert wide > 300  # the spare width went to Subject


def test_column_widths_and_splitters_persist_per_folder_and_restart(
    qtbot, demo, workers, tmp_path: Path
) -> None:
    settings_file = str(tmp_path / "layout.ini")
    win = _window(qtbot, workers, demo, QSettings(settings_file, QSettings.Format.IniFormat))
    first, second = _two_folders(win)
    _open(qtbot, win, first)
    header = win.message_list.horizontalHeader()
    default_from = header.sectionSize(Column.FROM)
    header.resizeSection(Column.FROM, default_from + 77)
    outer = win.splitters[0]
    outer.setSizes([300, outer.width() - 300])
    outer.splitterMoved.emit(300, 1)  # as the user's drag does

    _open(qtbot, win, second)
    header.resizeSection(Column.FROM, default_from - 40)
    assert header.sectionSize(Column.FROM) == default_from - 40

    _open(qtbot, win, first)
    assert header.sectionSize(Column.FROM) == default_from + 77
    assert abs(outer.sizes()[0] - 300) <= 2
    _open(qtbot, win, second)
    assert header.sectionSize(Column.FROM) == default_from - 40
    _close(win, workers)

    # A new window (a restart) reads the same settings file.
    again = _window(qtbot, workers, demo, QSettings(settings_file, QSettings.Format.IniFormat))
    _open(qtbot, again, first)
    assert again.message_list.horizontalHeader().sectionSize(Column.FROM) == default_from + 77
    _open(qtbot, again, second)
    assert again.message_list.horizontalHeader().sectionSize(Column.FROM) == default_from - 40
    _close(again, workers)
