"""The window's layout remembered between folders and runs: the window's geometry, and per
folder (or CRM view) the splitter sizes and the message list's column widths, in QSettings
(the application's settings location, named by ``desktop.app``).

Outside the application (a test's window, an application not named Trackbox) the layout is
kept in memory only: a test never reads a layout another run left in the user's settings."""

from __future__ import annotations

import json

from PySide6.QtCore import QByteArray, QCoreApplication, QObject, QSettings
from PySide6.QtWidgets import QHeaderView, QMainWindow, QSplitter

GEOMETRY_KEY = "window/geometry"
FOLDER_GROUP = "folderLayout"
APP_NAME = "Trackbox"  # desktop.app names the application and organisation so


def app_settings() -> QSettings | None:
    """The application's own settings, or None when this is not the Trackbox application."""
    app = QCoreApplication.instance()
    if app is None or (app.applicationName(), app.organizationName()) != (APP_NAME, APP_NAME):
        return None
    return QSettings()


def _folder_key(key: str) -> str:
    """A QSettings key for a folder path: hex, since a path's ``/`` and ``\\`` would make
    groups (and an INI file mangles other characters)."""
    return f"{FOLDER_GROUP}/{key.encode('utf-8').hex()}"


class LayoutMemory(QObject):
    """Saves a folder's layout as the user changes it and restores it when the folder is
    shown again. ``stretch`` is the column that takes the spare width (never saved)."""

    def __init__(
        self,
        window: QMainWindow,
        header: QHeaderView,
        splitters: tuple[QSplitter, ...],
        settings: QSettings | None,
        stretch: int,
    ) -> None:
        super().__init__(window)
        self._window, self._header, self._splitters = window, header, splitters
        self.settings, self._stretch = settings, stretch
        self._memory: dict[str, object] = {}  # without settings
        self._key: str | None = None
        self._restoring = False
        header.sectionResized.connect(self._column_resized)
        for splitter in splitters:
            splitter.splitterMoved.connect(lambda *_: self.save())

    # --- the window -----------------------------------------------------------------------
    def restore_window(self) -> bool:
        """The last run's geometry, if any; True when restored."""
        value = self._value(GEOMETRY_KEY)
        return isinstance(value, QByteArray) and self._window.restoreGeometry(value)

    def save_window(self) -> None:
        self.save()
        self._set_value(GEOMETRY_KEY, self._window.saveGeometry())
        if self.settings is not None:
            self.settings.sync()

    # --- per folder -----------------------------------------------------------------------
    def show(self, key: str) -> None:
        """The folder or view ``key`` is now shown: its saved layout comes back."""
        self._key = key
        columns, splitters = self._load(key)
        self._restoring = True
        try:
            for column, width in columns.items():
                if column != self._stretch and not self._header.isSectionHidden(column):
                    self._header.resizeSection(column, width)
            for splitter, sizes in zip(self._splitters, splitters, strict=False):
                if len(sizes) == splitter.count() and sum(sizes) > 0:
                    splitter.setSizes(sizes)
        finally:
            self._restoring = False

    def save(self) -> None:
        """Record the shown folder's layout (hidden columns keep their last width)."""
        if self._key is None or self._restoring:
            return
        columns, _splitters = self._load(self._key)
        for col in range(self._header.count()):
            if col != self._stretch and not self._header.isSectionHidden(col):
                columns[col] = self._header.sectionSize(col)
        state = {"columns": columns, "splitters": [s.sizes() for s in self._splitters]}
        self._set_value(_folder_key(self._key), json.dumps(state))

    def _column_resized(self, column: int, _old: int, _new: int) -> None:
        if column != self._stretch:
            self.save()

    def _load(self, key: str) -> tuple[dict[int, int], list[list[int]]]:
        """The saved column widths and splitter sizes of ``key``; nothing when there are
        none or the file was damaged (the defaults then)."""
        raw = self._value(_folder_key(key))
        try:
            value = json.loads(raw) if isinstance(raw, str) else {}
            columns = {int(c): int(w) for c, w in dict(value.get("columns", {})).items()}
            splitters = [[int(s) for s in sizes] for sizes in value.get("splitters", [])]
        except (ValueError, TypeError, AttributeError):
            return {}, []
        return columns, splitters

    def _value(self, key: str) -> object:
        return self._memory.get(key) if self.settings is None else self.settings.value(key)

    def _set_value(self, key: str, value: object) -> None:
        if self.settings is None:
            self._memory[key] = value
        else:
            self.settings.setValue(key, value)
