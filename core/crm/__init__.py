"""Client of the Dataverse / Dynamics 365 Web API (and of the trackbox-crm emulator).

``CrmClient(base_url, auth)`` is the entry point; errors are in ``core.crm.errors``.
"""

from __future__ import annotations

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
