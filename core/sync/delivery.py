"""The user's own mailbox record (issue 19): who tracks and sends this user's mail, the
desktop or the organisation's server-side synchronisation.

The settings step of each cycle reads it from the CRM and keeps it in the store's settings
snapshots, so the decisions and Pending Send steps honour it offline too. No record (an older
CRM, no read access) means the desktop does both, as before.
"""

from __future__ import annotations

from core.crm import CrmClient
from core.domain.mailbox_delivery import MAILBOX_COLUMNS, MailboxDelivery
from core.store import Store

#: The settings snapshot that holds the row.
SNAPSHOT = "mailbox"


def read_own_mailbox(crm: CrmClient, user_id: str) -> dict[str, object]:
    """The user's mailbox row (``{}`` when the CRM has none for them). Raises ``CrmError``."""
    rows = crm.query(
        "mailboxes",
        select=list(MAILBOX_COLUMNS),
        filter=f"_regardingobjectid_value eq {user_id}",
        top=1,
        annotations=True,
    )
    return dict(next(iter(rows), {}))


def save_own_mailbox(store: Store, row: dict[str, object]) -> None:
    store.snapshots.save(SNAPSHOT, row)


def own_delivery(store: Store) -> MailboxDelivery | None:
    """The cached delivery methods of the user's mailbox; None before the first read or when
    the CRM has no mailbox for the user (the desktop then tracks and sends)."""
    row = store.snapshots.get(SNAPSHOT)
    if not row or not row.get("mailboxid"):
        return None
    return MailboxDelivery.from_row(row)


def tracked_by_server(store: Store) -> bool:
    delivery = own_delivery(store)
    return delivery is not None and delivery.incoming_by_server


def sent_by_server(store: Store) -> bool:
    delivery = own_delivery(store)
    return delivery is not None and delivery.outgoing_by_server


__all__ = [
    "SNAPSHOT",
    "own_delivery",
    "read_own_mailbox",
    "save_own_mailbox",
    "sent_by_server",
    "tracked_by_server",
]
