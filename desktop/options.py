"""The Options dialog (``OptionsDialog``): E-mail tracking (with its "Never track" section),
Address book, Synchronisation, Privacy, Accounts.

It edits the values the workspace returns (``user_options()``: the CRM's per-user settings;
``local_options()``: this profile's own) with ``dataclasses.replace`` and hands them back to
``save_user_options`` / ``save_local_options`` on a worker; where they go (the CRM's
``usersettingscollection``, queued when offline, or the profile) is the workspace's business.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, NamedTuple

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QRadioButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.config.local_options import LocalOptions
from core.config.profiles import Profile
from core.domain.changes import Changes
from core.domain.crm_settings import AutoCreate, IncomingFilter, OrgSettings, UserOptions
from desktop.accounts import AccountsTab, save_edit
from desktop.addressbook import BOOK_LABELS
from desktop.errors import describe
from desktop.never_track import NeverTrackEditor
from desktop.ops import ChangeBus, Op
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.workspace.facade import Workspace

INCOMING_LABELS = {
    IncomingFilter.ALL: "All e-mail messages",
    IncomingFilter.RESPONSES_TO_CRM: "E-mail messages in response to CRM e-mail",
    IncomingFilter.FROM_LEADS_CONTACTS_ACCOUNTS: (
        "E-mail messages from CRM leads, contacts and accounts"
    ),
    IncomingFilter.FROM_EMAIL_ENABLED_RECORDS: (
        "E-mail messages from CRM records that are e-mail enabled"
    ),
    IncomingFilter.NONE: "No e-mail messages (track only what I choose)",
}
AUTO_CREATE_LABELS = {
    AutoCreate.NONE: "Do not create records",
    AutoCreate.CONTACT: "Create contacts for unknown senders",
    AutoCreate.LEAD: "Create leads for unknown senders",
}


def _page(*widgets: QWidget) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    for w in widgets:
        layout.addWidget(w)
    layout.addStretch(1)
    return page


class _Current(NamedTuple):
    """The options as stored, read on a worker."""

    user: UserOptions
    org: OrgSettings
    local: LocalOptions
    folders: list[str]


class _Saved(NamedTuple):
    changes: Changes
    profile: Profile | None  # the profile as written, when the connection changed


class OptionsDialog(QDialog):
    """``loaded`` after the current values are shown; ``saved(LocalOptions)`` after both
    saves succeeded (the main window applies interval, colours, banner; the change notice
    went out on ``bus`` first); ``connection_saved(profile)`` when the Accounts tab changed
    the connection."""

    loaded = Signal()
    saved = Signal(object)
    save_failed = Signal(str)
    connection_saved = Signal(str)  # profile name: its connection changed, reconnect

    def __init__(
        self,
        workspace: Workspace,
        workers: Workers,
        bus: ChangeBus,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("OptionsDialog")
        self.setWindowTitle("Options")
        self.resize(620, 500)
        self.workspace = workspace
        self.workers = workers
        self.bus = bus
        self.user: UserOptions | None = None
        self.local: LocalOptions | None = None
        self.org: OrgSettings | None = None

        self.tabs = QTabWidget()
        self.tabs.setObjectName("optionsTabs")
        self.tabs.setAccessibleName("Option pages")
        self.tabs.tabBar().setAccessibleName("Option pages")
        self.tabs.addTab(self._tracking_tab(), "E-mail tracking")
        self.tabs.addTab(self._address_book_tab(), "Address book")
        self.tabs.addTab(self._sync_tab(), "Synchronisation")
        self.tabs.addTab(self._privacy_tab(), "Privacy")
        self.tabs.addTab(self._accounts_tab(), "Accounts")
        self.status = QLabel("Loading your options…")
        self.status.setObjectName("optionsStatus")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setObjectName("optionsSave")
        self.save_button.setEnabled(False)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.tabs.setEnabled(False)
        self._load()

    # --- tabs ---------------------------------------------------------------------------------
    def _tracking_tab(self) -> QWidget:
        box = QGroupBox("Track these incoming e-mail messages in the CRM")
        inner = QVBoxLayout(box)
        self.incoming = QButtonGroup(self)
        for value, label in INCOMING_LABELS.items():
            radio = QRadioButton(label)
            radio.setObjectName(f"incomingFilter{int(value)}")
            self.incoming.addButton(radio, int(value))
            inner.addWidget(radio)
        self.track_replies = QCheckBox(
            "Track replies to tracked mail, whatever the option above says"
        )
        self.track_replies.setObjectName("trackReplies")
        self.auto_create = QComboBox()
        self.auto_create.setObjectName("autoCreate")
        self.auto_create.setAccessibleName("Create records automatically")
        self.auto_create.view().setAccessibleName("Create records automatically: choices")
        for create, text in AUTO_CREATE_LABELS.items():
            self.auto_create.addItem(text, create)
        self.admin_note = QLabel()
        self.admin_note.setObjectName("automaticTrackingNote")
        self.admin_note.setWordWrap(True)
        self.admin_note.setStyleSheet("color: #a86a00;")
        self.admin_note.setVisible(False)
        self.crm_note = QLabel(
            "These options are saved to your CRM user settings (queued when you are offline)."
        )
        self.crm_note.setWordWrap(True)
        self.crm_note.setStyleSheet("color: #59606a;")
        create_label = QLabel("When tracked mail comes from a sender the CRM does not know:")
        never = QGroupBox("Never track")
        never.setObjectName("neverTrackSection")
        self.never_track = NeverTrackEditor()
        QVBoxLayout(never).addWidget(self.never_track)
        return _page(
            box,
            self.track_replies,
            create_label,
            self.auto_create,
            self.admin_note,
            self.crm_note,
            never,
        )

    def _address_book_tab(self) -> QWidget:
        self.contacts_scope = QComboBox()
        self.contacts_scope.setObjectName("contactsScope")
        self.contacts_scope.view().setAccessibleName("Contacts to synchronise: choices")
        self.contacts_scope.addItem("Only the contacts I own (synchronised contacts)", "owned")
        self.contacts_scope.addItem("All contacts I can see in the CRM", "all")
        self.books: dict[str, QCheckBox] = {}
        box = QGroupBox("Address books kept on this computer")
        inner = QVBoxLayout(box)
        for entity, label in BOOK_LABELS.items():
            check = QCheckBox(label)
            check.setObjectName(f"addressBook_{entity}")
            self.books[entity] = check
            inner.addWidget(check)
        form = QFormLayout()
        holder = QWidget()
        holder.setLayout(form)
        form.addRow("Contacts:", self.contacts_scope)
        return _page(holder, box)

    def _sync_tab(self) -> QWidget:
        self.interval = QSpinBox()
        self.interval.setObjectName("syncInterval")
        self.interval.setRange(1, 24 * 60)
        self.interval.setSuffix(" minutes")
        self.interval.setMaximumWidth(160)
        self.all_folders = QCheckBox("Synchronise every folder")
        self.all_folders.setObjectName("syncAllFolders")
        self.folders = QListWidget()
        self.folders.setObjectName("syncFolders")
        self.folders.setAccessibleName("Folders to synchronise")
        self.all_folders.toggled.connect(lambda on: self.folders.setEnabled(not on))
        self.subfolders = QCheckBox("Include subfolders of the chosen folders")
        self.subfolders.setObjectName("includeSubfolders")
        form = QFormLayout()
        holder = QWidget()
        holder.setLayout(form)
        form.addRow("Synchronise every:", self.interval)
        self.mark_read_after = QSpinBox()
        self.mark_read_after.setObjectName("markReadAfter")
        self.mark_read_after.setAccessibleName("Mark a message read after viewing it for")
        self.mark_read_after.setRange(0, 3600)
        self.mark_read_after.setSuffix(" seconds")
        self.mark_read_after.setMaximumWidth(160)
        form.addRow("Mark read after viewing for:", self.mark_read_after)
        return _page(holder, self.all_folders, self.folders, self.subfolders)

    def _privacy_tab(self) -> QWidget:
        self.show_banner = QCheckBox("Show the tracking banner above every message")
        self.show_banner.setObjectName("showTrackingBanner")
        self.warn_tracked = QCheckBox("Warn me before sending a message that will be tracked")
        self.warn_tracked.setObjectName("warnBeforeSendingTracked")
        self.colour_tracked = QCheckBox("Colour tracked messages in the message list")
        self.colour_tracked.setObjectName("colourTracked")
        self.compose_plain = QCheckBox("Compose in plain text by default")
        self.compose_plain.setObjectName("composePlainTextDefault")
        self.compose_plain.setToolTip(
            "New mail starts in plain text; replies to plain-text mail are plain text anyway"
        )
        return _page(self.show_banner, self.warn_tracked, self.colour_tracked, self.compose_plain)

    def _accounts_tab(self) -> QWidget:
        self.accounts = AccountsTab(self.workspace, self.workers)
        self.accounts.setObjectName("accountsTab")
        return self.accounts

    # --- load ---------------------------------------------------------------------------------
    def _load(self) -> None:
        ws = self.workspace

        def read() -> _Current:
            folders = [f.path for f in ws.store().folders()]
            return _Current(ws.user_options(), ws.org_settings(), ws.local_options(), folders)

        def show(current: _Current) -> None:
            self.user, self.org, self.local = current.user, current.org, current.local
            self._fill(current.user, current.local, current.folders)
            self.tabs.setEnabled(True)
            self.save_button.setEnabled(True)
            self.status.setText("")
            self.loaded.emit()

        def failed(exc: BaseException) -> None:
            self.status.setText(f"Your options could not be read. {describe(exc)}")

        self.workers.run(read, show, failed, owner=self)

    def _fill(self, u: UserOptions, loc: LocalOptions, folders: list[str]) -> None:
        button = self.incoming.button(int(u.incoming_filter))
        if button is not None:
            button.setChecked(True)
        self.track_replies.setChecked(u.track_replies_to_tracked)
        self.auto_create.setCurrentIndex(max(0, self.auto_create.findData(u.auto_create)))
        if not u.automatic_tracking_enabled:
            self.admin_note.setText(
                "Your administrator turned automatic tracking off for you: "
                "only the mail you track yourself goes to the CRM."
            )
            self.admin_note.setVisible(True)
        self.contacts_scope.setCurrentIndex(
            max(0, self.contacts_scope.findData(loc.contacts_scope))
        )
        for entity, check in self.books.items():
            check.setChecked(entity in tuple(loc.address_books))
        self.interval.setValue(int(loc.sync_interval_minutes))
        self.mark_read_after.setValue(int(loc.mark_read_after_seconds))
        chosen = None if loc.folders_to_sync is None else set(loc.folders_to_sync)
        self.folders.clear()
        for path in folders:
            item = QListWidgetItem(path)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked
                if chosen is None or path in chosen
                else Qt.CheckState.Unchecked
            )
            self.folders.addItem(item)
        self.all_folders.setChecked(chosen is None)
        self.folders.setEnabled(chosen is not None)
        self.subfolders.setChecked(loc.include_subfolders)
        self.show_banner.setChecked(loc.show_tracking_banner)
        self.warn_tracked.setChecked(loc.warn_before_sending_tracked)
        self.colour_tracked.setChecked(loc.colour_tracked)
        self.compose_plain.setChecked(loc.compose_plain_text)
        self.never_track.set_entries(loc.never_track)

    # --- save ---------------------------------------------------------------------------------
    def edited(self) -> tuple[UserOptions, LocalOptions]:
        """The options as the dialog now shows them (new values; nothing saved)."""
        assert self.user is not None and self.local is not None, "edited before loaded"
        user = dataclasses.replace(
            self.user,
            incoming_filter=IncomingFilter(self.incoming.checkedId()),
            track_replies_to_tracked=self.track_replies.isChecked(),
            auto_create=AutoCreate(self.auto_create.currentData()),
        )
        folders = None
        if not self.all_folders.isChecked():
            folders = tuple(
                self.folders.item(i).text()
                for i in range(self.folders.count())
                if self.folders.item(i).checkState() == Qt.CheckState.Checked
            )
        local = dataclasses.replace(
            self.local,
            sync_interval_minutes=self.interval.value(),
            mark_read_after_seconds=self.mark_read_after.value(),
            folders_to_sync=folders,
            include_subfolders=self.subfolders.isChecked(),
            show_tracking_banner=self.show_banner.isChecked(),
            warn_before_sending_tracked=self.warn_tracked.isChecked(),
            colour_tracked=self.colour_tracked.isChecked(),
            compose_plain_text=self.compose_plain.isChecked(),
            contacts_scope=self.contacts_scope.currentData(),
            address_books=tuple(e for e, c in self.books.items() if c.isChecked()),
            never_track=self.never_track.entries(),
        )
        return user, local

    def save(self) -> None:
        if self.user is None or self.local is None:
            return
        if not self.accounts.check():
            self.tabs.setCurrentWidget(self.accounts)
            self.status.setText("Nothing was saved: fix the fields marked on the Accounts tab.")
            self.save_failed.emit("accounts")
            return
        user, local = self.edited()
        connection = self.accounts.edit()
        if connection is not None and not connection.changed:
            connection = None
        ws = self.workspace
        user_changed = user != self.user
        self.save_button.setEnabled(False)
        self.status.setText("Saving…")

        def op() -> _Saved:
            changes = ws.save_local_options(local)
            if user_changed:
                changes = changes.merge(ws.save_user_options(user))
            # After the local options: both write the profile, and this one reads it back.
            profile = save_edit(ws, connection) if connection is not None else None
            return _Saved(changes, profile)

        def done(result: _Saved) -> None:
            self.saved.emit(local)
            if result.profile is not None:
                self.accounts.saved(result.profile)
                self.connection_saved.emit(result.profile.name)
            self.accept()

        def failed(exc: BaseException) -> None:
            self.save_button.setEnabled(True)
            self.status.setText(f"Your options could not be saved. {describe(exc)}")
            self.save_failed.emit(describe(exc))

        Op(op, self.bus, changes=lambda result: result.changes, owner=self).success(done).failure(
            failed
        ).run_in_background(self.workers)
