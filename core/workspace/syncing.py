"""Synchronisation from the workspace: one full cycle (``core.sync.cycle``), mail only, the
interval scheduler, and the last cycle's report."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.domain.changes import Changes
from core.domain.model import Address
from core.sync.report import SyncProgress, SyncReport
from core.workspace.connection import ConnectionState, Remotes
from core.workspace.replay import Replayer
from core.workspace.settings import SettingsService
from core.workspace.stores import StorePool

if TYPE_CHECKING:
    from core.sync.cycle import CycleServices
    from core.sync.scheduler import SyncScheduler

Progress = Callable[[str], None]


#: The snapshot that keeps the CRM's last 429: when, the wait it asked for, how many 429s.
LAST_THROTTLE = "last_throttle"


class SyncService:
    def __init__(
        self,
        stores: StorePool,
        remotes: Remotes,
        connection: ConnectionState,
        settings: SettingsService,
        replayer: Replayer,
        owner: Address,
    ) -> None:
        self._stores = stores
        self._remotes = remotes
        self._connection = connection
        self._settings = settings
        self._replayer = replayer
        self._owner = owner
        self._cycle_lock = threading.Lock()
        self._last: SyncReport | None = None

    def sync_mail(self, progress: Progress | None = None) -> Changes:
        """Bring the store's folders and headers up to date with the mailbox (no CRM)."""
        from core.sync.cycle import SyncCycle

        cycle = SyncCycle(
            self.cycle_services(),
            (lambda p: progress(f"Synchronising {p.step}…")) if progress else None,
        )
        cycle.mail_online = True
        cycle.mail()
        return Changes(folders=True, messages=True, errors=tuple(cycle.errors))

    def sync_cycle(
        self,
        progress: Callable[[SyncProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> SyncReport:
        """One full cycle (``core.sync.cycle``); never two at once: a call while one runs
        waits for it and returns its report."""
        from core.sync.cycle import SyncCycle

        if not self._cycle_lock.acquire(blocking=False):
            with self._cycle_lock:
                if self._last is not None:
                    return self._last
            self._cycle_lock.acquire()  # the other cycle left no report: run our own
        try:
            report = SyncCycle(self.cycle_services(), progress, cancel).run()
            self._last = report
            self._stores.store().snapshots.save("last_sync", report.to_dict())
            self._note_throttling()
            return report
        finally:
            self._cycle_lock.release()

    def _note_throttling(self) -> None:
        """Keep the CRM's last request to slow down (``trackbox diagnose`` shows it)."""
        state = self._remotes.crm.throttle.state()
        if state.last_throttled_at is None:
            return
        store = self._stores.store()
        kept = store.snapshots.get(LAST_THROTTLE) or {}
        at = state.last_throttled_at.isoformat()
        if kept.get("at") != at:
            store.snapshots.save(
                LAST_THROTTLE,
                {"at": at, "retry_after": state.last_retry_after, "count": state.throttle_count},
            )

    def cycle_services(self) -> CycleServices:
        """What a sync cycle works with, from this workspace."""
        from core.sync.cycle import CycleServices

        settings = self._settings
        return CycleServices(
            store=self._stores.store(),
            crm=self._remotes.crm,
            owner=self._owner,
            work_offline=self._connection.work_offline,
            open_mailbox=self._remotes.open_mailbox,
            org_settings=settings.org_settings,
            user_options=settings.user_options,
            local_options=settings.local_options,
            address_book=settings.address_book,
            user_id=settings.user_id,
            last_sync=self.last_sync,
            replay_now=self._replayer.replay_now,
            note_reachable=self._connection.note_reachable,
        )

    def start_interval_sync(self) -> SyncScheduler:
        """A running scheduler: a cycle now, then every ``sync_interval_minutes``."""
        from core.sync.scheduler import SyncScheduler

        minutes = self._settings.local_options().sync_interval_minutes
        scheduler = SyncScheduler(self.sync_cycle, minutes * 60)
        scheduler.start()
        return scheduler

    def last_sync(self) -> SyncReport | None:
        if self._last is not None:
            return self._last
        data = self._stores.store().snapshots.get("last_sync")
        return SyncReport.from_dict(data) if data else None
