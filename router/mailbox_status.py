"""What the administrator sees of the router in the CRM: each mailbox's processing state,
its last successful synchronisation and the last run's result, and alerts (``tracelog``) on a
mailbox whose passes fail.

Written in one place, at the end of :func:`router.processing.run_mailbox` (the one layer that
holds the CRM and the pass's outcome; :mod:`router.state` is the execution layer's own record
store, kept CRM-free so it runs under any processing). One PATCH per pass.

Alerts: a mailbox that keeps failing would otherwise get the same alert every few minutes.
An error gets an alert once per *failure streak*: its ``tracecode`` carries a digest of the
error text, and no alert is written while an alert with that code exists on the mailbox since
its last successful pass. A new error, or the same one after a success, is a new alert.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime

from core.crm import CrmClient, CrmError
from core.domain.mailbox_delivery import MailboxDelivery
from router.state import RunOutcome

log = logging.getLogger("trackbox.router.status")

#: ``mailbox.processingstatecode``: the router left the mailbox idle (0) after a pass.
IDLE = 0
#: ``tracelog.level``: 3 is an error.
ALERT_ERROR = 3
#: The ``tracecode`` prefix of the router's alerts.
CODE_PREFIX = "trackbox-router:"
MACHINE = "trackbox-router"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: object) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def last_success(crm: CrmClient, box: MailboxDelivery) -> datetime | None:
    """When the mailbox last finished a pass without errors, as the CRM has it."""
    row = crm.get("mailboxes", box.mailbox_id, select=["lastsuccessfulsynccompletedon"])
    return _parse(row.get("lastsuccessfulsynccompletedon"))


def result_text(run: RunOutcome) -> str:
    counts = f"promoted {run.promoted}, queued {run.queued}, cases {run.cases}, sent {run.sent}"
    if not run.errors:
        return f"OK: {counts}"
    return f"{len(run.errors)} error(s): {run.errors[0]} ({counts})"[:2000]


def alert_code(error: str) -> str:
    """The alert's ``tracecode``: the same error text, the same code."""
    digest = hashlib.sha256(error.strip().lower().encode()).hexdigest()[:20]
    return f"{CODE_PREFIX}{digest}"


def record(
    crm: CrmClient, box: MailboxDelivery, run: RunOutcome, *, since: datetime | None
) -> None:
    """The pass's status on the mailbox, and an alert for each error not alerted since
    ``since`` (the last success). Never raises: the run's own record has it anyway."""
    values: dict[str, object] = {"processingstatecode": IDLE, "tbx_lastrunresult": result_text(run)}
    if not run.errors:
        values["lastsuccessfulsynccompletedon"] = _iso(run.finished)
    try:
        crm.update("mailboxes", box.mailbox_id, values)
        for error in dict.fromkeys(run.errors):
            _alert_once(crm, box, error, since)
    except CrmError as exc:
        log.warning("router status of mailbox %s not recorded: %s", box.mailbox_id, exc)


def _alert_once(crm: CrmClient, box: MailboxDelivery, error: str, since: datetime | None) -> None:
    code = alert_code(error)
    query = f"_regardingobjectid_value eq {box.mailbox_id} and tracecode eq '{code}'"
    if since is not None:
        query += f" and createdon ge {_iso(since)}"
    if next(iter(crm.query("tracelogs", select=["tracelogid"], filter=query, top=1)), None):
        return
    crm.create(
        "tracelogs",
        {
            "regardingobjectid_mailbox@odata.bind": f"/mailboxes({box.mailbox_id})",
            "level": ALERT_ERROR,
            "text": error[:4000],
            "tracecode": code,
            "machinename": MACHINE,
        },
    )


def alert_counts(crm: CrmClient) -> dict[str, int]:
    """Error alerts per mailbox id (what ``trackbox-router status`` shows)."""
    counts: dict[str, int] = {}
    rows = crm.query(
        "tracelogs",
        select=["_regardingobjectid_value"],
        filter=f"level eq {ALERT_ERROR}",
    )
    for row in rows:
        regarding = str(row.get("_regardingobjectid_value") or "").lower()
        if regarding:
            counts[regarding] = counts.get(regarding, 0) + 1
    return counts


__all__ = ["alert_code", "alert_counts", "last_success", "record", "result_text"]
