"""The typed interface the main window's parts (the CRM verbs, the dialog openers, the views'
controllers) have to the window that composes them — instead of mixins that reach into the
window's attributes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.config.local_options import LocalOptions
    from core.workspace.facade import Workspace


class WindowHost(Protocol):
    """What the window offers its parts. ``workspace`` is None before one is attached and
    after it was detached: late results then find it gone and are dropped."""

    workspace: Workspace | None
    local_options: LocalOptions | None

    def say(self, text: str, msecs: int = 0) -> None:
        """A message in the status bar (``msecs`` 0: until the next one)."""
        ...

    def sync_now(self) -> None:
        """Start a sync cycle unless one runs."""
        ...

    def update_actions(self) -> None:
        """Enable or disable the actions for the selection and the reading pane."""
        ...

    def apply_local_options(self, options: LocalOptions) -> None:
        """Interval, colour coding and banner from freshly saved local options."""
        ...

    def connection_saved(self, profile: str) -> None:
        """Options › Accounts saved a new connection for ``profile``: reconnect."""
        ...

    def sign_in_changed(self, signed_in: bool) -> None:
        """Options › Accounts signed in (True) or out (False) of the CRM."""
        ...
