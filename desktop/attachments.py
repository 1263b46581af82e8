"""The reading pane's attachments: a list (icon, safe name, size) with Open, Save… and Save
all…, from the keyboard (Enter opens), the context menu and buttons.

The bytes come from ``MessageView.files`` (``core.workspace.mailbox_reading``); reading them
and writing files happen on a worker. The questions the user answers go through the
module-level functions :func:`ask`, :func:`ask_save_path` and :func:`ask_folder` (tests answer
them by patching), and the system's viewer through :func:`open_url`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import QMimeDatabase, QPoint, QStandardPaths, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from core.mail.attachment_names import is_dangerous
from core.workspace.reading import (
    AttachmentFiles,
    AttachmentInfo,
    ExistingFiles,
    MessageView,
    SavedFiles,
)
from desktop.messages import human_size
from desktop.ops import QueryOp
from desktop.workers import Workers

T = TypeVar("T")

LISTED = 200  # attachments in the list; the rest are counted
SUMMARISED = 50  # names in the one-line summary (the accessible description)
HARMFUL = "This file type can harm your computer. Open it?"


def ask(parent: QWidget, title: str, text: str, buttons: Sequence[str], default: int) -> int:
    """The index of the button the user chose; -1 when the box was closed."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton)
    box.setParent(parent, box.windowFlags())
    made = [box.addButton(b, QMessageBox.ButtonRole.AcceptRole) for b in buttons]
    box.setDefaultButton(made[default])
    box.setEscapeButton(made[-1])
    box.exec()
    clicked = box.clickedButton()
    return next((i for i, b in enumerate(made) if b is clicked), -1)


def ask_save_path(parent: QWidget, suggested: str) -> str | None:
    """A file name chosen by the user; overwriting is asked by the caller, after the worker
    found the file there."""
    start = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DownloadLocation)
    path, _ = QFileDialog.getSaveFileName(
        parent,
        "Save attachment",
        str(Path(start) / suggested) if start else suggested,
        options=QFileDialog.Option.DontConfirmOverwrite,
    )
    return path or None


def ask_folder(parent: QWidget) -> str | None:
    start = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DownloadLocation)
    return QFileDialog.getExistingDirectory(parent, "Save all attachments to", start) or None


def open_url(url: QUrl) -> bool:
    return QDesktopServices.openUrl(url)


_mime = QMimeDatabase()
_icons: dict[str, QIcon] = {}


def icon_for(widget: QWidget, info: AttachmentInfo) -> QIcon:
    """The theme's icon for the file's type (by its safe name's extension, the one the
    system acts on), else the style's file icon."""
    mime = _mime.mimeTypeForFile(info.name, QMimeDatabase.MatchMode.MatchExtension)
    key = mime.name()
    if key not in _icons:
        fallback = widget.style().standardIcon(QStyle.StandardPixmap.SP_FileIcon)
        generic = QIcon.fromTheme(mime.genericIconName(), fallback)
        _icons[key] = QIcon.fromTheme(mime.iconName(), generic)
    return _icons[key]


def summary(view: MessageView) -> str:
    """One line: the first names and sizes, how many more, and parts not read at all."""
    listed = view.attachments[:SUMMARISED]
    names = [f"{a.name} ({human_size(a.size)})" for a in listed]
    if len(view.attachments) > len(listed):
        names.append(f"and {len(view.attachments) - len(listed):,} more")
    line = "📎 " + ", ".join(names) if names else ""
    if view.parts_not_shown:
        line += f" — {view.parts_not_shown:,} more parts of this message are not shown."
    return line.lstrip(" —")


class AttachmentsPanel(QWidget):
    """The attachments of the message shown; ``workers`` gives the pool for file work."""

    def __init__(self, pool: Callable[[], Workers], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._files: AttachmentFiles | None = None
        self._infos: tuple[AttachmentInfo, ...] = ()
        self._row: int | None = None  # the message whose attachments are listed
        self._summary = ""
        self.setObjectName("readingAttachments")
        self.list = QListWidget()
        self.list.setObjectName("attachmentList")
        self.list.setAccessibleName("Attachments")
        self.list.setFlow(QListWidget.Flow.LeftToRight)
        self.list.setWrapping(True)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMaximumHeight(96)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemActivated.connect(lambda _: self.open_current())  # Enter, double-click
        self.list.currentRowChanged.connect(lambda _: self._enable())
        self.open_button = self._button("Open", "Open the attachment", self.open_current)
        self.save_button = self._button("Save…", "Save the attachment as", self.save_current)
        self.save_all_button = self._button("Save all…", "Save all attachments", self.save_all)
        self.more = QLabel()
        self.more.setObjectName("attachmentsMore")
        self.status = QLabel()
        self.status.setObjectName("attachmentsStatus")
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # names and paths
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        for w in (self.open_button, self.save_button, self.save_all_button):
            buttons.addWidget(w)
        buttons.addWidget(self.more, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

    def _button(self, text: str, name: str, slot: Callable[[], None]) -> QPushButton:
        button = QPushButton(text)
        button.setAccessibleName(name)
        button.clicked.connect(slot)
        return button

    # --- showing ---------------------------------------------------------------------------

    def text(self) -> str:
        """The one-line summary (also the list's accessible description)."""
        return self._summary

    def show_view(self, view: MessageView | None) -> None:
        if (
            view is not None
            and view.row_id == self._row
            and view.attachments[:LISTED] == self._infos
            and self._infos
        ):
            # The same message shown again (marked read, tracked…): keep the selection and
            # what the last Save said; only the access to its files is new.
            self._files = view.files
            self._enable()
            return
        self._row = view.row_id if view is not None else None
        self.list.clear()
        self.status.clear()
        self._files = view.files if view is not None else None
        self._infos = view.attachments[:LISTED] if view is not None else ()
        self._summary = summary(view) if view is not None else ""
        self.list.setAccessibleDescription(self._summary)
        for info in self._infos:
            size = human_size(info.size)
            item = QListWidgetItem(icon_for(self, info), f"{info.name} ({size})")
            item.setToolTip(f"{info.filename}\n{info.content_type}, {size}")
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{info.name}, {size}")
            self.list.addItem(item)
        hidden = (len(view.attachments) - len(self._infos)) if view is not None else 0
        notes = [f"{hidden:,} more not shown"] if hidden else []
        if view is not None and view.parts_not_shown:
            notes.append(f"{view.parts_not_shown:,} more parts of this message are not shown")
        self.more.setText("; ".join(notes))
        self.list.setVisible(bool(self._infos))
        if self._infos:
            self.list.setCurrentRow(0)
        self._enable()
        self.setVisible(bool(self._summary))

    def _enable(self) -> None:
        can = self._files is not None
        one = can and self.list.currentRow() >= 0
        self.open_button.setEnabled(one)
        self.save_button.setEnabled(one)
        self.save_all_button.setEnabled(can and bool(self._infos))

    def _current(self) -> AttachmentInfo | None:
        row = self.list.currentRow()
        return self._infos[row] if self._files is not None and 0 <= row < len(self._infos) else None

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is not None:
            self.list.setCurrentItem(item)
        menu = QMenu(self)
        menu.addAction("Open", self.open_current).setEnabled(self.open_button.isEnabled())
        menu.addAction("Save As…", self.save_current).setEnabled(self.save_button.isEnabled())
        menu.addAction("Save All…", self.save_all).setEnabled(self.save_all_button.isEnabled())
        menu.popup(self.list.viewport().mapToGlobal(pos))

    # --- work on a worker -------------------------------------------------------------------

    def _run(self, op: Callable[[], T], done: Callable[[T], None], what: str) -> None:
        def failed(exc: BaseException) -> None:
            self.status.setText(f"The attachment could not be {what}: {exc}")

        QueryOp(op, done, owner=self).failure(failed).run_in_background(self._pool())

    def open_current(self) -> None:
        """Open the current attachment with the system's handler, after a copy was written
        to a private temporary folder; a program or script is opened only if the user says."""
        info, files = self._current(), self._files
        if info is None or files is None:
            return
        if is_dangerous(info.name, info.content_type):
            text = f"{HARMFUL}\n\n{info.name}"
            if ask(self, "Open attachment", text, ["Open", "Cancel"], default=1) != 0:
                return

        def opened(path: Path) -> None:
            if not open_url(QUrl.fromLocalFile(str(path))):
                self.status.setText(f"No application opens {info.name}; save it instead.")

        self._run(lambda: files.open_copy(info.index), opened, "opened")

    def save_current(self) -> None:
        info, files = self._current(), self._files
        if info is None or files is None:
            return
        chosen = ask_save_path(self, info.name)
        if not chosen:
            return
        path = Path(chosen)

        def saved(result: SavedFiles) -> None:
            if result.saved:
                self.status.setText(f"Saved {path.name} to {path.parent}")
                return
            text = f"{path.name} already exists in {path.parent}. Replace it?"
            if ask(self, "Save attachment", text, ["Replace", "Cancel"], default=1) == 0:
                self._run(lambda: files.save(info.index, path, replace=True), saved, "saved")

        self._run(lambda: files.save(info.index, path), saved, "saved")

    def save_all(self) -> None:
        files, infos = self._files, self._infos
        if files is None or not infos:
            return
        chosen = ask_folder(self)
        if not chosen:
            return
        folder = Path(chosen)
        indexes = tuple(i.index for i in infos)
        self.status.setText(f"Saving {len(indexes):,} attachments…")

        def first(result: SavedFiles) -> None:
            if not result.existing:
                self._report(folder, len(result.saved), 0)
                return
            names = ", ".join(p.name for _, p in result.existing[:5])
            more = len(result.existing) - 5
            text = (
                f"{len(result.existing):,} of the files already exist in {folder}: {names}"
                + (f" and {more:,} more" if more > 0 else "")
                + ".\nReplace them, keep both (save with a new name), or skip them?"
            )
            choice = ask(self, "Save all attachments", text, ["Replace", "Keep both", "Skip"], 2)
            if choice not in (0, 1):
                self._report(folder, len(result.saved), len(result.existing))
                return
            left = tuple(i for i, _ in result.existing)
            mode: ExistingFiles = "replace" if choice == 0 else "keep_both"

            def second(again: SavedFiles) -> None:
                self._report(folder, len(result.saved) + len(again.saved), len(again.existing))

            self._run(lambda: files.save_all(folder, left, mode), second, "saved")

        self._run(lambda: files.save_all(folder, indexes), first, "saved")

    def _report(self, folder: Path, saved: int, skipped: int) -> None:
        text = f"Saved {saved:,} attachment{'s' if saved != 1 else ''} to {folder}"
        if skipped:
            text += f"; {skipped:,} not saved (already there)"
        self.status.setText(text)
