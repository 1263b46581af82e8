"""Which workspace verbs exist yet.

``core/workspace.py`` grows while the GUI is built against its contract
(``docs/workspace-api.md``). A control whose verb is missing stays disabled with a tooltip
that says why: the GUI never fakes a result.
"""

from __future__ import annotations

from typing import Any


def has(workspace: Any, *names: str) -> bool:
    """True when the workspace offers every one of ``names``."""
    return workspace is not None and all(
        hasattr(type(workspace), n) or hasattr(workspace, n) for n in names
    )


def missing_tip(workspace: Any, what: str, *names: str) -> str | None:
    """None when ``what`` can work; else the tooltip explaining why it is disabled."""
    if workspace is None:
        return f"{what}: not connected to a mailbox yet."
    absent = [n for n in names if not has(workspace, n)]
    if not absent:
        return None
    return (f"{what} is not available yet: this build's workspace has no "
            f"{', '.join(absent)} (arrives with the sync/outbox engine).")
