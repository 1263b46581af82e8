"""Human wording for errors raised by ``core`` (the one ``except`` ladder of the GUI).

Core errors carry fields, not sentences (after vdirsyncer's ``cli/utils.py`` and anki's
``errors.py``): here each class becomes what happened and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.crm import CrmError
from core.crm.errors import (
    AccountChoiceRequired,
    AuthorityError,
    CrmAuthError,
    CrmCertificateError,
    CrmPermanentError,
    CrmUnavailable,
    SignInFailed,
    SignInRequired,
)
from core.crm.signin import is_adfs
from core.domain.problems import Problem, SyncProblem
from core.mail.base import MailAuthError, MailError, MailNotFound, MailUnavailable
from core.workspace.signin import WrongAccount, WrongSignInKind

#: The status bar's words while a Microsoft / AD FS sign-in waits for the user.
SIGN_IN_AGAIN = "Sign in again"
#: The sign-in kinds (``crm_auth``) as a person reads them.
SIGN_IN_KINDS = {
    "microsoft": "Microsoft account (Dynamics 365 online)",
    "adfs": "AD FS (on-premises, claims-based)",
    "windows": "Windows sign-in (on-premises, user and password)",
    "password": "Password (trackbox-crm emulator, HTTP Basic)",
}


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
    if isinstance(exc, (CrmAuthError, WrongSignInKind, WrongAccount)):
        return _sign_in_words(exc)
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


def _sign_in_words(exc: BaseException) -> str:
    """The sign-in errors: expired, failed, refused, or the wrong kind or account."""
    if isinstance(exc, SignInRequired):
        who = f" as {exc.username}" if exc.username else ""
        return f"Your sign-in{who} to the CRM has expired or was revoked. {SIGN_IN_AGAIN}."
    if isinstance(exc, SignInFailed):
        if exc.error == "timeout":
            return "The sign-in in the browser was not finished in time. Try again."
        said = f" ({exc.message})" if exc.message else ""
        return f"The sign-in did not succeed{said}. Try again."
    if isinstance(exc, AccountChoiceRequired):
        return "Several accounts are signed in: " + ", ".join(exc.usernames) + ". Sign in again."
    if isinstance(exc, AuthorityError):
        return f"The sign-in authority {exc.authority} cannot be used; check its address."
    if isinstance(exc, WrongSignInKind):
        instead = SIGN_IN_KINDS.get(exc.offered)
        advice = f" Choose “{instead}” instead." if instead else ""
        return f"{exc.org_url} does not say where to sign in this way.{advice}"
    if isinstance(exc, WrongAccount):
        return (
            f"You signed in as {exc.signed_in}, but this profile is {exc.expected}'s: "
            f"signed out again. Sign in as {exc.expected}."
        )
    return (
        "The CRM refused your sign-in. Check the account in Options › Accounts "
        "and enter the password again."
    )


def sign_in_expired(crm: str) -> str:
    """The banner's words: ``crm`` is the organisation's address."""
    return f"Your sign-in to {crm} has expired — {SIGN_IN_AGAIN}"


def kind_of(authority: str, crm_auth: str) -> str:
    """The sign-in kind a person reads, for Options › Accounts."""
    if crm_auth in ("microsoft", "adfs"):
        return SIGN_IN_KINDS["adfs" if is_adfs(authority) else "microsoft"]
    return SIGN_IN_KINDS.get(crm_auth, crm_auth)


#: What each kind of problem means for the user and what to do; ``describe_problem`` adds
#: what was being done and what the server said.
_PROBLEM_WORDS: dict[Problem, str] = {
    Problem.CRM_SIGN_IN: (
        "The CRM refused your sign-in. Check the account in Options › Accounts and enter "
        "the password again."
    ),
    Problem.CRM_SIGN_IN_EXPIRED: (
        f"Your sign-in to the CRM has expired or was revoked. {SIGN_IN_AGAIN}: your "
        "queued changes wait for it."
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
    Problem.CRM_FAILED: (
        "The CRM answered with a server error; Trackbox tries again at the next synchronisation."
    ),
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
    Problem.SYNC_TIMED_OUT: (
        "The synchronisation took too long and was stopped; what it did is kept and the next "
        "synchronisation goes on from there."
    ),
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
