"""What a verb did, in the words the status bar shows (issue 17: results say what happened, and
no message contradicts another — never "Synchronised" beside "Offline").

Pure functions: the GUI passes counts and states and shows the text; every count, plural
and the offline wording live here so that every message agrees with the others.
"""

from __future__ import annotations

from enum import StrEnum


class TrackingVerb(StrEnum):
    """The CRM verbs on the selection."""

    TRACK = "track"
    UNTRACK = "untrack"
    SET_REGARDING = "set_regarding"


class MailVerb(StrEnum):
    """The mail actions on the selection (and their undo)."""

    READ = "read"
    UNREAD = "unread"
    FLAG = "flag"
    CLEAR_FLAG = "clear_flag"
    DELETE = "delete"
    DELETE_FOR_GOOD = "delete_for_good"
    MOVE = "move"
    COPY = "copy"
    ARCHIVE = "archive"


#: Why queued CRM work waits, said the same way everywhere.
CRM_OFFLINE = "the CRM is offline"
WORKING_OFFLINE = "working offline"


def counted(count: int, noun: str = "message") -> str:
    """``1 message``, ``3 messages``, ``1 operation``, ``5 operations``."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _wait(count: int) -> str:
    return "waits" if count == 1 else "wait"


def tracking_progress(verb: TrackingVerb, count: int, record: str = "") -> str:
    """While a tracking verb queues: ``Tracking 3 messages…``."""
    what = counted(count)
    if verb is TrackingVerb.SET_REGARDING:
        on = f"{record} on " if record else "on "
        return f"Setting regarding {on}{what}…"
    return f"{'Tracking' if verb is TrackingVerb.TRACK else 'Untracking'} {what}…"


def tracking_done(verb: TrackingVerb, count: int, record: str = "") -> str:
    """The verb reached the CRM: ``Tracked 3 messages``, ``Untracked 1 message``."""
    what = counted(count)
    if verb is TrackingVerb.SET_REGARDING:
        return f"Set regarding {record} on {what}" if record else f"Set regarding on {what}"
    return f"{'Tracked' if verb is TrackingVerb.TRACK else 'Untracked'} {what}"


def tracking_queued(count: int, *, work_offline: bool = False) -> str:
    """Queued, not sent: ``1 queued: the CRM is offline`` (or ``…: working offline``)."""
    return f"{count:,} queued: {WORKING_OFFLINE if work_offline else CRM_OFFLINE}"


def tracking_partly(verb: TrackingVerb, done: int, failed: int, record: str = "") -> str:
    """Some reached the CRM, some did not (their problems are said after this)."""
    return f"{tracking_done(verb, done, record)}; {counted(failed)} could not be"


_MAIL_WORDS: dict[MailVerb, str] = {
    MailVerb.READ: "Marked {what} as read",
    MailVerb.UNREAD: "Marked {what} as unread",
    MailVerb.FLAG: "Flagged {what}",
    MailVerb.CLEAR_FLAG: "Cleared the flag on {what}",
    MailVerb.DELETE: "Deleted {what}",
    MailVerb.DELETE_FOR_GOOD: "Deleted {what} for good",
    MailVerb.MOVE: "Moved {what} to {folder}",
    MailVerb.COPY: "Copied {what} to {folder}",
    MailVerb.ARCHIVE: "Moved {what} to {folder}",
}


def mail_action_done(
    verb: MailVerb, count: int, folder: str = "", *, work_offline: bool = False
) -> str:
    """``Moved 4 messages to Archive``; working offline, the mail server's side waits:
    ``…; queued: working offline``. ``count`` 0: nothing needed doing."""
    if count == 0:
        return "Nothing to do: the selected messages are already so"
    said = _MAIL_WORDS[verb].format(what=counted(count), folder=folder or "Archive")
    return f"{said}; queued: {WORKING_OFFLINE}" if work_offline else said


def undone(label: str, *, work_offline: bool = False) -> str:
    """After Edit › Undo: ``Undone: Move``."""
    said = f"Undone: {label}"
    return f"{said}; queued: {WORKING_OFFLINE}" if work_offline else said


def retry_refused(waiting: int, *, work_offline: bool = False) -> str:
    """ "Retry now" while the CRM cannot be reached: why nothing happened, and what will."""
    why = "You are working offline" if work_offline else "The CRM is offline"
    if waiting <= 0:
        return f"{why}: nothing waits."
    return (
        f"{why}: {counted(waiting, 'operation')} {_wait(waiting)}; "
        f"{'it is' if waiting == 1 else 'they are'} sent when "
        + ("you go online" if work_offline else "it is back")
    )


def retry_done(left: int) -> str:
    """After "Retry now" reached the CRM: what is still waiting."""
    if left <= 0:
        return "Sent: nothing waits for the CRM."
    return f"Retried; {counted(left, 'operation')} still {_wait(left)} for the CRM."


def sync_done(*, crm_online: bool, mail_online: bool = True, work_offline: bool = False) -> str:
    """The status message after a clean cycle; it never says "Synchronised" while the CRM
    or the mailbox was out of reach (the connection label says Offline then)."""
    if work_offline:
        return "Working offline: nothing synchronised; changes wait in the queue"
    if crm_online and mail_online:
        return "Synchronised"
    if mail_online:
        return f"Mail synchronised; {CRM_OFFLINE}: CRM changes wait in the queue"
    if crm_online:
        return "CRM synchronised; the mail server cannot be reached"
    return "Offline: neither the mail server nor the CRM can be reached"


def open_link_failed() -> str:
    """View in CRM when no browser opened the record."""
    return "No web browser opened the CRM record; copy the link to open it yourself."


__all__ = [
    "CRM_OFFLINE",
    "WORKING_OFFLINE",
    "MailVerb",
    "TrackingVerb",
    "counted",
    "mail_action_done",
    "open_link_failed",
    "retry_done",
    "retry_refused",
    "sync_done",
    "tracking_done",
    "tracking_partly",
    "tracking_progress",
    "tracking_queued",
    "undone",
]
