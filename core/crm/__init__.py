"""Client of the Dataverse / Dynamics 365 Web API (and of the trackbox-crm emulator).

``CrmClient(base_url, auth)`` is the entry point; errors are in ``core.crm.errors``.

The names below are loaded when first used: importing an error class must not pull in the
HTTP, MSAL and Negotiate stacks the client needs (the window's first paint waits for imports).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.crm.auth import BasicAuth, BearerAuth, CrmAuth
    from core.crm.client import API_PATH, CrmClient
    from core.crm.errors import (
        CrmAmbiguousResponse,
        CrmAuthError,
        CrmCertificateError,
        CrmError,
        CrmPermanentError,
        CrmProtocolError,
        CrmRequestFailed,
        CrmUnavailable,
    )
    from core.crm.types import (
        Attachment,
        BatchRequest,
        BatchResponse,
        DeltaPage,
        DeltaResult,
        EmailInfo,
        WhoAmI,
    )
    from core.crm.wire import entity_id_from_url, lookup_ref, odata_string

#: Each public name and the module that defines it.
_HOMES = {
    "BasicAuth": "core.crm.auth",
    "BearerAuth": "core.crm.auth",
    "CrmAuth": "core.crm.auth",
    "API_PATH": "core.crm.client",
    "CrmClient": "core.crm.client",
    "CrmAmbiguousResponse": "core.crm.errors",
    "CrmAuthError": "core.crm.errors",
    "CrmCertificateError": "core.crm.errors",
    "CrmError": "core.crm.errors",
    "CrmPermanentError": "core.crm.errors",
    "CrmProtocolError": "core.crm.errors",
    "CrmRequestFailed": "core.crm.errors",
    "CrmUnavailable": "core.crm.errors",
    "Attachment": "core.crm.types",
    "BatchRequest": "core.crm.types",
    "BatchResponse": "core.crm.types",
    "DeltaPage": "core.crm.types",
    "DeltaResult": "core.crm.types",
    "EmailInfo": "core.crm.types",
    "WhoAmI": "core.crm.types",
    "entity_id_from_url": "core.crm.wire",
    "lookup_ref": "core.crm.wire",
    "odata_string": "core.crm.wire",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'core.crm' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once loaded, a plain module attribute
    return value


__all__ = [
    "API_PATH",
    "CrmAmbiguousResponse",
    "CrmRequestFailed",
    "Attachment",
    "BasicAuth",
    "BatchRequest",
    "BatchResponse",
    "BearerAuth",
    "CrmAuth",
    "CrmAuthError",
    "CrmCertificateError",
    "CrmClient",
    "CrmError",
    "CrmPermanentError",
    "CrmProtocolError",
    "CrmUnavailable",
    "DeltaPage",
    "DeltaResult",
    "EmailInfo",
    "WhoAmI",
    "entity_id_from_url",
    "lookup_ref",
    "odata_string",
]
