"""What went wrong, as values: the kinds of problem a person is told about, and one problem
(kind, what was being done, what the server said). The sync cycle and the workspace verbs
hand these on (``core.sync.problems.problem_of`` classifies errors by type); the GUI words
them in one place (``desktop/errors.py``) and the CLI maps them to exit codes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Problem(enum.StrEnum):
    """The kinds of problem a person is told about; each has its own wording and remedy."""

    CRM_SIGN_IN = "crm_sign_in"  # the CRM refused the credentials or the token
    #: A Microsoft / AD FS sign-in that cannot be renewed without the user (expired, revoked,
    #: nobody signed in): not a wrong password, so it has its own remedy — sign in again.
    CRM_SIGN_IN_EXPIRED = "crm_sign_in_expired"
    CRM_CERTIFICATE = "crm_certificate"  # the CRM's TLS certificate is not trusted
    CRM_UNAVAILABLE = "crm_unavailable"  # away for now: retried later
    CRM_REFUSED = "crm_refused"  # a request the CRM will never accept as it is
    CRM_FAILED = "crm_failed"  # the CRM answered a request with a server error: tried again
    CRM_SETTINGS = "crm_settings"  # the CRM's settings could not be read: defaults used
    MAIL_SIGN_IN = "mail_sign_in"  # the mail server refused the credentials
    MAIL_UNAVAILABLE = "mail_unavailable"
    MAIL_FAILED = "mail_failed"  # the mail server reported another problem
    OPERATION_PARKED = "operation_parked"  # a queued operation failed for good: see the queue
    STEP_FAILED = "step_failed"  # a bug or bad data in one step; the other steps ran
    #: The cycle ran out of time (a very slow server, or a very large first sync): what was
    #: done is kept and the rest is done by the next sync.
    SYNC_TIMED_OUT = "sync_timed_out"
    UNKNOWN = "unknown"  # read back from a report written before problems had types


#: Problems only the user can fix by signing in again.
SIGN_IN_PROBLEMS = frozenset(
    {Problem.CRM_SIGN_IN, Problem.CRM_SIGN_IN_EXPIRED, Problem.MAIL_SIGN_IN}
)


@dataclass(frozen=True, slots=True)
class SyncProblem:
    """One problem: its kind, what was being done (``what``) and what the server or the
    error said, verbatim (``detail``, for the details line and the log)."""

    problem: Problem
    what: str = ""
    detail: str = ""

    def __str__(self) -> str:
        """A plain line for logs and ``trackbox sync`` (the GUI words problems itself)."""
        return ": ".join(p for p in (self.what, self.detail) if p) or self.problem.value

    def to_dict(self) -> dict[str, str]:
        return {"problem": self.problem.value, "what": self.what, "detail": self.detail}

    @classmethod
    def from_value(cls, value: Any) -> SyncProblem:
        """Read a stored problem; a plain string (a report written before problems had
        types) is kept as its text."""
        if isinstance(value, dict):
            try:
                problem = Problem(str(value.get("problem", "")))
            except ValueError:
                problem = Problem.UNKNOWN
            return cls(problem, str(value.get("what") or ""), str(value.get("detail") or ""))
        return cls(Problem.UNKNOWN, "", str(value))


__all__ = ["SIGN_IN_PROBLEMS", "Problem", "SyncProblem"]
