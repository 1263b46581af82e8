"""The queue view's verbs: what waits in the outbox, retry now, discard (undoing its local
effects)."""

from __future__ import annotations

from core.domain.changes import Changes
from core.outbox.kinds import MailKind
from core.outbox.operations import LocalEffects
from core.outbox.queue import OpState
from core.sync.report import QueuedOperation
from core.workspace.replay import Replayer
from core.workspace.settings import SettingsService
from core.workspace.stores import StorePool

_MAIL_KINDS = frozenset(k.value for k in MailKind)


class QueueService:
    def __init__(self, stores: StorePool, settings: SettingsService, replayer: Replayer) -> None:
        self._stores = stores
        self._settings = settings
        self._replayer = replayer

    def queue(self) -> list[QueuedOperation]:
        """The CRM operations waiting or parked, and the mail actions (read, flag, move…)
        that failed for good; a mail action merely waiting for the mailbox is not listed
        (opening mail offline would fill the queue with read marks)."""
        return [
            QueuedOperation.of(op)
            for op in self._stores.outbox().pending()
            if str(op.kind) not in _MAIL_KINDS or op.state is OpState.PARKED
        ]

    def retry(self, op_id: int) -> Changes:
        self._stores.outbox().retry(op_id)
        return self._replayer.replay_outbox()

    def discard(self, op_id: int) -> Changes:
        store = self._stores.store()
        effects = LocalEffects(store, self._settings.org_settings())
        op = self._stores.outbox().discard(op_id, effects.discarded)
        rows = store.messages_by_message_id(op.message_id) if op.message_id else []
        return Changes(messages=True, row_ids=frozenset(r.id for r in rows), queue=True)

    def queued_count(self) -> int:
        counts = self._stores.outbox().counts()
        return counts[OpState.QUEUED.value] + counts[OpState.PARKED.value]
