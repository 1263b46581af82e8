"""Help › Keyboard shortcuts (generated from the window's menus, so it never goes stale) and
Help › About (version and licence from the installed package's metadata)."""

from __future__ import annotations

from importlib import metadata

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

PACKAGE = "trackbox"
#: Shown when the package carries no Project-URL: the toolkit Trackbox is built on (LGPL).
QT_LINK = ("Qt for Python", "https://www.qt.io/qt-for-python")


def _plain(text: str) -> str:
    """A menu text without its mnemonic ampersand and trailing ellipsis."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def shortcut_rows(window: QMainWindow) -> list[tuple[str, str, str]]:
    """(menu, action, keys) for every action of the window's menus, in menu order; an action
    in two menus is listed under the first."""
    rows: list[tuple[str, str, str]] = []
    seen: set[QAction] = set()
    for top in window.menuBar().actions():
        menu = top.menu()
        if not isinstance(menu, QMenu):
            continue
        for action in menu.actions():
            if action.isSeparator() or action in seen:
                continue
            seen.add(action)
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            rows.append((_plain(top.text()), _plain(action.text()), keys))
    return rows


class ShortcutsDialog(QDialog):
    """Every menu action with its key, grouped by menu, filtered as the user types."""

    def __init__(self, window: QMainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(480, 520)
        self.filter = QLineEdit(self)
        self.filter.setObjectName("shortcutsFilter")
        self.filter.setAccessibleName("Find a shortcut")
        self.filter.setPlaceholderText("Find an action or a key")
        self.filter.setClearButtonEnabled(True)
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("shortcutsTree")
        self.tree.setAccessibleName("Keyboard shortcuts")
        self.tree.setHeaderLabels(["Action", "Shortcut"])
        self.tree.setRootIsDecorated(False)
        self.tree.setColumnWidth(0, 280)
        menus: dict[str, QTreeWidgetItem] = {}
        #: Each menu's item and its rows.
        self.groups: list[tuple[QTreeWidgetItem, list[QTreeWidgetItem]]] = []
        for menu, text, keys in shortcut_rows(window):
            if menu not in menus:
                menus[menu] = QTreeWidgetItem(self.tree, [menu])
                menus[menu].setFirstColumnSpanned(True)
                menus[menu].setFlags(Qt.ItemFlag.ItemIsEnabled)
                self.groups.append((menus[menu], []))
            self.groups[-1][1].append(QTreeWidgetItem(menus[menu], [text, keys]))
        self.tree.expandAll()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)
        self.filter.textChanged.connect(self._filter)

    def _filter(self, text: str) -> None:
        """Hide the rows whose action and key both miss ``text``, and menus left empty."""
        needle = text.strip().casefold()
        for menu, rows in self.groups:
            shown = 0
            for row in rows:
                hit = not needle or any(needle in row.text(c).casefold() for c in (0, 1))
                row.setHidden(not hit)
                shown += hit
            menu.setHidden(shown == 0)

    def visible_rows(self) -> list[tuple[str, str]]:
        """The (action, keys) rows left by the filter (tests)."""
        return [
            (row.text(0), row.text(1))
            for menu, rows in self.groups
            for row in rows
            if not row.isHidden() and not menu.isHidden()
        ]


def about_html() -> str:
    """The About text: name, version and licence from the package metadata, and links."""
    try:
        meta = metadata.metadata(PACKAGE)

        def first(field: str) -> str:
            return next(iter(meta.get_all(field) or []), "")

        version = first("Version")
        licence = first("License-Expression") or first("License") or "see the LICENSE file"
        summary = first("Summary")
        urls = [u.split(",", 1) for u in meta.get_all("Project-URL") or [] if "," in u]
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version, licence, summary, urls = "unknown (not installed)", "see the LICENSE file", "", []
    links = [(label.strip(), url.strip()) for label, url in urls if url.strip()] or [QT_LINK]
    anchors = "<br>".join(f'<a href="{url}">{label}</a>' for label, url in links)
    return f"<h3>Trackbox {version}</h3><p>{summary}</p><p>Licence: {licence}</p><p>{anchors}</p>"


class AboutDialog(QDialog):
    """Help › About Trackbox."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About Trackbox")
        self.text = QLabel(about_html(), self)
        self.text.setObjectName("aboutText")
        self.text.setAccessibleName("About Trackbox")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setOpenExternalLinks(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
