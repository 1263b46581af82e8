"""The user's exclusions from automatic tracking (issue 17): the never-track list and the
conversations the user stopped tracking, both kept in the local options of this profile.

Neither untracks anything: they only change what the next automatic decisions do (mail
already tracked stays tracked; Untrack is the verb for that). A manual Track always works.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from core.config.local_options import LocalOptions
from core.domain.changes import Changes
from core.domain.model import MessageHeader
from core.domain.never_track import StoppedConversations, normalise_entry
from core.workspace.settings import SettingsService
from core.workspace.stores import StorePool


class UnknownMessage(LookupError):
    """The message is no longer in the store (deleted or moved away since it was shown)."""

    def __init__(self, row_id: int) -> None:
        super().__init__(f"Message {row_id} is no longer in the mailbox")
        self.row_id = row_id


class NeverTrackService:
    """The verbs; each reads and saves the local options (``SettingsService``)."""

    def __init__(self, stores: StorePool, settings: SettingsService) -> None:
        self._stores = stores
        self._settings = settings

    def add_never_track(self, entries: Iterable[str]) -> Changes:
        """Add addresses or domains (normalised; repeats ignored).

        :raises core.domain.never_track.InvalidEntry: one of them is neither; nothing saved.
        """
        added = [normalise_entry(e) for e in entries]
        opts = self._settings.local_options()
        return self._save(dataclasses.replace(opts, never_track=(*opts.never_track, *added)))

    def remove_never_track(self, entries: Iterable[str]) -> Changes:
        """Remove entries (in any accepted spelling); unknown ones are ignored."""
        gone = set()
        for entry in entries:
            try:
                gone.add(normalise_entry(entry))
            except ValueError:
                continue
        opts = self._settings.local_options()
        kept = tuple(e for e in opts.never_track if e not in gone)
        return self._save(dataclasses.replace(opts, never_track=kept))

    def conversation_stopped(self, row_id: int) -> bool:
        """Whether the message's conversation is stopped (the menu says Stop or Resume)."""
        return self._stopped().contains(self._header(row_id))

    def stop_tracking_conversation(self, row_id: int) -> Changes:
        """Later replies in this message's conversation are not tracked automatically."""
        stopped = self._stopped().stop(self._header(row_id))
        return self._save_stopped(stopped, row_id)

    def resume_tracking_conversation(self, row_id: int) -> Changes:
        """Later replies in this conversation follow the automatic rules again."""
        stopped = self._stopped().resume(self._header(row_id))
        return self._save_stopped(stopped, row_id)

    def _header(self, row_id: int) -> MessageHeader:
        row = self._stores.store().message(row_id)
        if row is None:
            raise UnknownMessage(row_id)
        return row.header

    def _stopped(self) -> StoppedConversations:
        return self._settings.local_options().stopped()

    def _save_stopped(self, stopped: StoppedConversations, row_id: int) -> Changes:
        opts = self._settings.local_options()
        changes = self._save(dataclasses.replace(opts, stopped_conversations=stopped.stored()))
        return changes.merge(Changes(row_ids=frozenset({row_id})))

    def _save(self, options: LocalOptions) -> Changes:
        return self._settings.save_local_options(options)


__all__ = ["NeverTrackService", "UnknownMessage"]
