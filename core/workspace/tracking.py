"""Track in CRM, Untrack, Set Regarding: each verb queues one typed operation per message and
shows the message *pending* (``enqueue_*``, no network); ``track``/``untrack``/``set_regarding``
then replay the queue."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from core.domain.changes import Changes
from core.domain.model import (
    UNTRACKABLE_STATES,
    Address,
    Decision,
    Reason,
    RecordRef,
    TrackState,
)
from core.outbox.kinds import Promote, SetRegarding, Untrack
from core.outbox.operations import new_records
from core.outbox.promotion import queue_promotion
from core.workspace.replay import Replayer
from core.workspace.settings import SettingsService
from core.workspace.stores import StorePool


class TrackingVerbs:
    def __init__(
        self, stores: StorePool, settings: SettingsService, replayer: Replayer, owner: Address
    ) -> None:
        self._stores = stores
        self._settings = settings
        self._replayer = replayer
        self._owner = owner

    def mark_pending(self, row_ids: Iterable[int]) -> Changes:
        store = self._stores.store()
        ids = frozenset(row_ids)
        for rid in ids:
            row = store.message(rid)
            if row is not None and row.track_state != TrackState.TRACKED:
                store.tracking.set_state(
                    row.header.message_id,
                    TrackState.PENDING,
                    reason=Reason("manual-pending", "Waiting for the CRM"),
                )
        return Changes(messages=True, row_ids=ids)

    def enqueue_track(self, row_ids: Sequence[int], regarding: RecordRef | None = None) -> Changes:
        """Queue "Track in CRM" for each message and show it pending (no network)."""
        store, outbox = self._stores.store(), self._stores.outbox()
        reason = Reason("manual", f"Tracked manually by {self._owner.name or 'you'}")
        options, book = self._settings.user_options(), self._settings.address_book(store)
        attachment_limit = self._settings.org_settings().max_upload_bytes
        for rid in row_ids:
            row = store.message(rid)
            if row is None:
                continue
            # Tracked by someone else: tracking it too links the same activity (one per
            # Message-ID in the CRM) and shows it as mine.
            if row.track_state is TrackState.TRACKED:
                if regarding is not None:
                    self.enqueue_set_regarding([rid], regarding)
                continue
            queue_promotion(
                store,
                outbox,
                Promote(
                    row.header,
                    reason,
                    regarding=regarding,
                    source="user",
                    attachment_limit=attachment_limit,
                ),
                decision=Decision(True, reason, regarding),
                new_records=new_records(row.header, options.auto_create, book),
                pending=Reason("manual-pending", "Waiting for the CRM"),
            )
        return Changes(messages=True, row_ids=frozenset(row_ids), queue=True)

    def enqueue_untrack(self, row_ids: Sequence[int]) -> Changes:
        """Queue Untrack for those of ``row_ids`` the CRM has (or is about to have); mail
        that is not tracked is left alone."""
        store, outbox = self._stores.store(), self._stores.outbox()
        done = []
        for rid in row_ids:
            row = store.message(rid)
            if row is None or row.track_state not in UNTRACKABLE_STATES:
                continue
            done.append(rid)
            mid = row.header.message_id
            with store.transaction():
                outbox.enqueue(Untrack(mid, row.activity_id))
                store.tracking.record_decision(
                    mid, Decision(False, Reason("untracked", "Untracked by you")), source="user"
                )
                store.tracking.set_state(
                    mid,
                    TrackState.PENDING,
                    activity_id=row.activity_id,
                    reason=Reason("untrack-pending", "Waiting for the CRM to untrack"),
                )
        return Changes(messages=True, row_ids=frozenset(done), queue=bool(done))

    def enqueue_set_regarding(self, row_ids: Sequence[int], regarding: RecordRef) -> Changes:
        store, outbox = self._stores.store(), self._stores.outbox()
        for rid in row_ids:
            row = store.message(rid)
            if row is None:
                continue
            mid = row.header.message_id
            with store.transaction():
                if row.track_state not in UNTRACKABLE_STATES:
                    # Setting regarding on an untracked mail tracks it, as in Outlook.
                    self.enqueue_track([rid], regarding)
                    continue
                outbox.enqueue(SetRegarding(mid, regarding))
                store.tracking.set_state(
                    mid,
                    TrackState.PENDING,
                    activity_id=row.activity_id,
                    regarding=regarding,
                    reason=Reason("regarding-pending", "Waiting for the CRM"),
                )
        return Changes(messages=True, row_ids=frozenset(row_ids), queue=True)

    def track(self, row_ids: Sequence[int], regarding: RecordRef | None = None) -> Changes:
        """Promote each message to an e-mail activity in the CRM (Track in CRM)."""
        self.enqueue_track(row_ids, regarding)
        return self._with_replay(row_ids)

    def untrack(self, row_ids: Sequence[int]) -> Changes:
        """Delete the CRM's copy of each tracked message and mark it not tracked."""
        self.enqueue_untrack(row_ids)
        return self._with_replay(row_ids)

    def set_regarding(self, row_ids: Sequence[int], regarding: RecordRef) -> Changes:
        self.enqueue_set_regarding(row_ids, regarding)
        return self._with_replay(row_ids)

    def _with_replay(self, row_ids: Sequence[int]) -> Changes:
        replayed = self._replayer.replay_outbox()
        return Changes(
            messages=True,
            row_ids=frozenset(row_ids) | replayed.row_ids,
            errors=replayed.errors,
            queue=True,
        )
