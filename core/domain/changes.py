"""What a verb or a sync cycle changed, so that each view refreshes only what it shows (every
workspace verb returns one; the GUI publishes it on its change bus)."""

from __future__ import annotations

from dataclasses import dataclass

from core.domain.problems import SyncProblem


@dataclass(frozen=True)
class Changes:
    """What a verb changed, so that each view refreshes only what it shows."""

    folders: bool = False
    messages: bool = False
    row_ids: frozenset[int] = frozenset()
    errors: tuple[SyncProblem, ...] = ()
    queue: bool = False
    settings: bool = False
    #: Only the messages' read state, flag or keywords changed: nothing the reading pane
    #: shows of them (it does not reload, and keeps its place).
    flags_only: bool = False

    def merge(self, other: Changes) -> Changes:
        return Changes(
            folders=self.folders or other.folders,
            messages=self.messages or other.messages,
            row_ids=self.row_ids | other.row_ids,
            errors=self.errors + other.errors,
            queue=self.queue or other.queue,
            settings=self.settings or other.settings,
            flags_only=_flags_only(self, other),
        )


def _flags_only(a: Changes, b: Changes) -> bool:
    """Merged, still flags only when each side is, or names no message at all."""
    return (
        (a.flags_only or not a.messages)
        and (b.flags_only or not b.messages)
        and (a.flags_only or b.flags_only)
    )


__all__ = ["Changes"]
