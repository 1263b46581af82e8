"""Human wording for errors raised by ``core`` (the one ``except`` ladder of the GUI).

Core errors carry fields, not sentences (after vdirsyncer's ``cli/utils.py`` and anki's
``errors.py``): here each class becomes what happened and what to do.
"""

from __future__ import annotations

from core.crm import CrmError
from core.crm.errors import CrmAuthError, CrmPermanentError, CrmUnavailable
from core.mail.base import MailAuthError, MailError, MailNotFound, MailUnavailable


def describe(exc: BaseException) -> str:
    """One or two sentences a user can act on."""
    if isinstance(exc, CrmUnavailable):
        wait = f" (the server asked to wait {exc.retry_after:.0f} s)" if exc.retry_after else ""
        return (
            "The CRM cannot be reached right now" + wait + ". Your changes are kept and "
            "will be sent when it is back."
        )
    if isinstance(exc, CrmAuthError):
        return (
            "The CRM refused your sign-in. Check the account in Options › Accounts "
            "and enter the password again."
        )
    if isinstance(exc, CrmPermanentError):
        detail = exc.message or str(exc)
        code = f" [{exc.code}]" if exc.code else ""
        return f"The CRM refused this request: {detail}{code}"
    if isinstance(exc, CrmError):
        return f"The CRM answered with an error: {exc}"
    if isinstance(exc, MailAuthError):
        return "The mail server refused your sign-in. Check the mail account in Options › Accounts."
    if isinstance(exc, MailUnavailable):
        return "The mail server cannot be reached right now; Trackbox will try again."
    if isinstance(exc, MailNotFound):
        return "This message is no longer on the mail server (moved or deleted elsewhere)."
    if isinstance(exc, MailError):
        return f"The mail server reported a problem: {exc}"
    if isinstance(exc, LookupError):
        return f"Not found: {exc}"
    if isinstance(exc, OSError):
        return f"A file or network operation failed: {exc}"
    return f"Something went wrong: {exc.__class__.__name__}: {exc}"


def server_words(exc: BaseException) -> str:
    """What the server itself answered (IMAP response text, SOAP fault, the CRM's error
    message and HTTP status), to be shown verbatim beside our own sentence."""
    if isinstance(exc, MailError):
        return exc.server_says
    if isinstance(exc, CrmError):
        status = f" (HTTP {exc.status})" if exc.status is not None else ""
        return f"{exc.message}{status}" if exc.message else status.strip(" ()")
    return ""
