"""trackbox-crm: a local emulator of the Dataverse / Dynamics 365 Web API subset that
Trackbox uses (entity CRUD, OData queries, paging, change tracking, e-mail actions)."""

from __future__ import annotations

from .app import Settings, create_app
from .forwarded import ForwardedMiddleware, ProxySettingError
from .runner import RunningServer, run_in_thread
from .tls import TlsFiles, TlsFilesError, make_throwaway_ca

__all__ = [
    "ForwardedMiddleware",
    "ProxySettingError",
    "RunningServer",
    "Settings",
    "TlsFiles",
    "TlsFilesError",
    "create_app",
    "make_throwaway_ca",
    "run_in_thread",
]
