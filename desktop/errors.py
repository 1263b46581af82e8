"""Human wording for errors raised by ``core`` (the one ``except`` ladder of the GUI).

Core errors carry fields, not sentences (after vdirsyncer's ``cli/utils.py`` and anki's
``errors.py``): here each class becomes what happened and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.crm import CrmError
from core.crm.errors import CrmAuthError, CrmCertificateError, CrmPermanentError, CrmUnavailable
from core.domain.problems import Problem, SyncProblem
from core.mail.base import MailAuthError, MailError, MailNotFound, MailUnavailable


def describe(exc: BaseException) -> str:
    """One or two sentences a user can act on."""
    if isinstance(exc, CrmCertificateError):
        return _PROBLEM_WORDS[Problem.CRM_CERTIFICATE]
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


#: What each kind of problem means for the user and what to do; ``describe_problem`` adds
#: what was being done and what the server said.
_PROBLEM_WORDS: dict[Problem, str] = {
    Problem.CRM_SIGN_IN: (
        "The CRM refused your sign-in. Check the account in Options › Accounts and enter "
        "the password again."
    ),
    Problem.CRM_CERTIFICATE: (
        "The CRM's security certificate is not trusted, so Trackbox did not connect. Check "
        "the CRM address in Options › Accounts; if it is right, your administrator must "
        "install the certificate authority on this computer."
    ),
    Problem.CRM_UNAVAILABLE: (
        "The CRM cannot be reached right now. Your changes are kept and will be sent when "
        "it is back."
    ),
    Problem.CRM_REFUSED: "The CRM refused a request.",
    Problem.CRM_SETTINGS: (
        "The CRM's settings could not be read; Trackbox uses the defaults until they can."
    ),
    Problem.MAIL_SIGN_IN: (
        "The mail server refused your sign-in. Check the mail account in Options › Accounts."
    ),
    Problem.MAIL_UNAVAILABLE: (
        "The mail server cannot be reached right now; Trackbox will try again."
    ),
    Problem.MAIL_FAILED: "The mail server reported a problem.",
    Problem.OPERATION_PARKED: (
        "A queued operation failed; see Queued operations to retry or discard it."
    ),
    Problem.STEP_FAILED: "Part of the synchronisation failed; the rest was done.",
    Problem.UNKNOWN: "A problem was reported.",
}


def describe_problem(problem: SyncProblem) -> str:
    """One problem for the status bar: what it means, then what was being done and what the
    server said."""
    said = ": ".join(p for p in (problem.what, problem.detail) if p)
    return (
        f"{_PROBLEM_WORDS[problem.problem]} ({said})" if said else _PROBLEM_WORDS[problem.problem]
    )


def describe_problems(problems: Iterable[SyncProblem]) -> str:
    return " ".join(describe_problem(p) for p in problems)


def server_words(exc: BaseException) -> str:
    """What the server itself answered (IMAP response text, SOAP fault, the CRM's error
    message and HTTP status), to be shown verbatim beside our own sentence."""
    if isinstance(exc, MailError):
        return exc.server_says
    if isinstance(exc, CrmError):
        status = f" (HTTP {exc.status})" if exc.status is not None else ""
        return f"{exc.message}{status}" if exc.message else status.strip(" ()")
    return ""
