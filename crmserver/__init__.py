"""trackbox-crm: a local emulator of the Dataverse / Dynamics 365 Web API subset that
Trackbox uses (entity CRUD, OData queries, paging, change tracking, e-mail actions)."""

from __future__ import annotations

from .app import Settings, create_app
from .runner import RunningServer, run_in_thread

__all__ = ["RunningServer", "Settings", "create_app", "run_in_thread"]
