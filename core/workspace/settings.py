"""The options the workspace works by: the organisation's settings and the user's CRM options
(snapshots in the store), the options kept on this computer (the profile, or the store when
there is none), and the address book they configure."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from core.config.local_options import (
    LocalOptions,
    local_user_options,
    user_options_from,
    usersettings_data,
)
from core.config.profiles import Profile, Profiles
from core.domain.changes import Changes
from core.domain.crm_settings import OrgSettings, SettingsError, UserOptions
from core.domain.model import Address
from core.outbox.kinds import UpdateUserSettings
from core.store import Store
from core.sync.address_books import AddressBook
from core.workspace.stores import StorePool

if TYPE_CHECKING:
    from core.workspace.replay import Replayer

log = logging.getLogger(__name__)


def read_org_settings(store: Store) -> OrgSettings:
    """From the snapshot; the CRM's defaults when there is none or it cannot be read
    (the sync report says so)."""
    row = store.snapshots.get("organization")
    try:
        return OrgSettings.from_crm(row) if row else OrgSettings()
    except SettingsError:
        log.warning("organization settings unreadable; using the defaults")
        return OrgSettings()


class SettingsService:
    """``profile`` may be replaced while the workspace lives (the accounts dialog does)."""

    def __init__(
        self,
        stores: StorePool,
        owner: Address,
        replayer: Replayer,
        profile: Profile | None = None,
        profiles: Profiles | None = None,
    ) -> None:
        self._stores = stores
        self._owner = owner
        self._replayer = replayer
        self.profile = profile
        self.profiles = profiles

    def user_id(self) -> str | None:
        who = self._stores.store().snapshots.get("whoami")
        return str(who["UserId"]) if who else None

    def org_settings(self) -> OrgSettings:
        return read_org_settings(self._stores.store())

    def user_options(self) -> UserOptions:
        store = self._stores.store()
        local = store.snapshots.get("local_user_options")
        try:
            return user_options_from(store.snapshots.get("usersettings"), local, self._owner.email)
        except SettingsError:
            log.warning("user settings unreadable; using the defaults")
            return user_options_from({}, local, self._owner.email)

    def save_user_options(self, options: UserOptions) -> Changes:
        """CRM per-user settings go to ``usersettingscollection`` through the outbox;
        Trackbox-only ones stay in the store."""
        data = usersettings_data(options)
        store = self._stores.store()
        with store.transaction():
            row = dict(store.snapshots.get("usersettings") or {})
            row.update(data)
            store.snapshots.save("usersettings", row)
            store.snapshots.save("local_user_options", local_user_options(options))
            self._stores.outbox().enqueue(UpdateUserSettings(data, user_id=self.user_id()))
        return self._replayer.replay_outbox().merge(Changes(settings=True, queue=True))

    def local_options(self) -> LocalOptions:
        if self.profile is not None:
            return LocalOptions.from_profile(self.profile.config)
        data = self._stores.store().snapshots.get("local_options")
        return LocalOptions.from_dict(data) if data else LocalOptions()

    def save_local_options(self, options: LocalOptions) -> Changes:
        if self.profile is not None:
            profiles = self.profiles or Profiles()
            self.profile = profiles.save(self.profile.name, options.apply_to(self.profile.config))
        else:
            self._stores.store().snapshots.save("local_options", options.to_dict())
        return Changes(settings=True)

    def address_book(self, store: Store | None = None) -> AddressBook:
        opts = self.local_options()
        return AddressBook(
            store or self._stores.store(),
            contacts_scope=opts.contacts_scope,
            entities=opts.address_books,
            user_id=self.user_id(),
            internal_domains=(self._owner.email.rpartition("@")[2],),
        )
