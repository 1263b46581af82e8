"""Who processes a mailbox: the CRM's mailbox record says it, one place says how to read it.

A ``mailbox`` row (reference section 1) carries an incoming and an outgoing delivery method.
"The desktop client" (1) means Trackbox on the user's machine tracks and sends; "server-side
synchronisation" (2) means the organisation's ``trackbox-router`` does, and the desktop only
shows. Never both. Incoming "forward mailbox" (3) means a user's mail reaches the CRM through
the organisation's forward mailbox. Pure data: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class IncomingDelivery(enum.IntEnum):
    """``mailbox.incomingemaildeliverymethod``."""

    NONE = 0
    DESKTOP = 1
    SERVER_SIDE = 2
    FORWARD_MAILBOX = 3


class OutgoingDelivery(enum.IntEnum):
    """``mailbox.outgoingemaildeliverymethod``."""

    NONE = 0
    DESKTOP = 1
    SERVER_SIDE = 2


MAILBOX_COLUMNS = (
    "mailboxid",
    "name",
    "emailaddress",
    "_regardingobjectid_value",
    "incomingemaildeliverymethod",
    "outgoingemaildeliverymethod",
    "isforwardmailbox",
)


def _method(enum_type: type[enum.IntEnum], value: object, default: int) -> Any:
    """An unknown or missing code reads as the default rather than failing the whole list:
    a newer CRM may add methods this client does not know."""
    try:
        return enum_type(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return enum_type(default)


@dataclass(frozen=True, slots=True)
class MailboxDelivery:
    """One mailbox record as the client and the router need it.

    ``owner_id`` is the user or queue the mailbox belongs to (``regardingobjectid``);
    ``owner_type`` is ``"systemuser"`` or ``"queue"`` when the CRM said which.
    """

    mailbox_id: str
    name: str
    address: str
    owner_id: str | None
    owner_type: str | None
    incoming: IncomingDelivery
    outgoing: OutgoingDelivery
    is_forward_mailbox: bool = False

    @property
    def incoming_by_server(self) -> bool:
        """Incoming mail is tracked by the router, so the desktop must not track it itself."""
        return self.incoming in (IncomingDelivery.SERVER_SIDE, IncomingDelivery.FORWARD_MAILBOX)

    @property
    def outgoing_by_server(self) -> bool:
        """CRM e-mail of this owner is sent by the router, so the desktop must not send it."""
        return self.outgoing is OutgoingDelivery.SERVER_SIDE

    @property
    def is_queue(self) -> bool:
        return self.owner_type == "queue"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MailboxDelivery:
        """A ``mailboxes`` row from the Web API (with the lookup's logical-name annotation
        when the CRM sent it)."""
        owner_type = row.get("_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname")
        return cls(
            mailbox_id=str(row.get("mailboxid") or ""),
            name=str(row.get("name") or ""),
            address=str(row.get("emailaddress") or "").strip().lower(),
            owner_id=row.get("_regardingobjectid_value") or None,
            owner_type=str(owner_type) if owner_type else None,
            incoming=_method(IncomingDelivery, row.get("incomingemaildeliverymethod"), 1),
            outgoing=_method(OutgoingDelivery, row.get("outgoingemaildeliverymethod"), 1),
            is_forward_mailbox=bool(row.get("isforwardmailbox")),
        )


#: What the desktop says when the organisation's router tracks the user's mail (issue 19).
INCOMING_BY_SERVER_TEXT = (
    "Incoming mail is tracked by your organisation's server-side synchronisation"
)
#: What the desktop says when the router sends the user's CRM e-mail (Pending Send).
OUTGOING_BY_SERVER_TEXT = (
    "E-mail sent from the CRM is sent by your organisation's server-side synchronisation"
)
