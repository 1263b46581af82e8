"""The sync engine: one cycle (``cycle.SyncCycle``, run through ``Workspace.sync_cycle``),
the interval scheduler (``scheduler``), what each outbox operation does (``operations``), the
pure refresh plan (``plan``) and the values handed back (``report``)."""

from __future__ import annotations

from core.domain.changes import Changes
from core.sync.report import QueuedOperation, SyncProgress, SyncReport

__all__ = ["Changes", "QueuedOperation", "SyncProgress", "SyncReport"]
