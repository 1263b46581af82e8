"""Errors classified by type into the problems a person is told about
(``core.domain.problems``): nothing decides on an exception's text."""

from __future__ import annotations

from core.crm.errors import (
    CrmAuthError,
    CrmCertificateError,
    CrmPermanentError,
    CrmRequestFailed,
    CrmUnavailable,
    SignInRequired,
)
from core.domain.crm_settings import SettingsError
from core.domain.problems import Problem, SyncProblem
from core.mail.base import MailAuthError, MailError, MailUnavailable
from core.outbox.queue import Outbox, ReplayResult


def problem_of(error: BaseException, what: str = "") -> SyncProblem:
    """``error`` as the problem a person is told about, ``what`` being what was being done."""
    return SyncProblem(_classify(error), what, _detail(error))


def _classify(error: BaseException) -> Problem:
    if isinstance(error, CrmCertificateError):
        return Problem.CRM_CERTIFICATE
    if isinstance(error, CrmRequestFailed) and error.status is not None:
        return Problem.CRM_FAILED
    if isinstance(error, CrmUnavailable):
        return Problem.CRM_UNAVAILABLE
    if isinstance(error, SignInRequired):  # before its base: only signing in again helps
        return Problem.CRM_SIGN_IN_EXPIRED
    if isinstance(error, CrmAuthError):
        return Problem.CRM_SIGN_IN
    if isinstance(error, CrmPermanentError):
        return Problem.CRM_REFUSED
    if isinstance(error, SettingsError):
        return Problem.CRM_SETTINGS
    if isinstance(error, MailAuthError):
        return Problem.MAIL_SIGN_IN
    if isinstance(error, MailUnavailable):
        return Problem.MAIL_UNAVAILABLE
    if isinstance(error, MailError):
        return Problem.MAIL_FAILED
    return Problem.STEP_FAILED


def _detail(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, (CrmPermanentError, CrmAuthError, CrmUnavailable)) and error.message:
        text = error.message
    return (
        text if _classify(error) is not Problem.STEP_FAILED else f"{type(error).__name__}: {text}"
    )


def queue_sign_in_problem(result: ReplayResult) -> SyncProblem:
    """The problem of a replay stopped by a refused sign-in (``stopped == "auth"``): the
    CRM's or the mailbox's, expired or refused, by the error's type."""
    if result.auth_error is not None:
        return problem_of(result.auth_error, "running the queue")
    return SyncProblem(Problem.CRM_SIGN_IN, "running the queue", result.error or "")


def deadline_problem(seconds: float, step: str) -> SyncProblem:
    """The problem of a cycle stopped by its deadline (``core.sync.cycle``) while in
    ``step``: not a cancel (nobody asked), so the sync's result and exit code say it failed.
    What was left resumes on the next cycle."""
    minutes = seconds / 60
    within = (
        f"{minutes:g} minute{'s' if minutes != 1 else ''}" if seconds >= 60 else f"{seconds:g} s"
    )
    return SyncProblem(
        Problem.SYNC_TIMED_OUT,
        f"the sync did not finish within {within}",
        f"stopped during the {step or 'first'} step; the rest is done on the next sync",
    )


def parked_problems(outbox: Outbox, op_ids: list[int]) -> list[SyncProblem]:
    """One problem per operation a replay parked (it failed for good: see the queue), so
    that the sync's result, its exit code and the window say so."""
    problems = []
    for op_id in op_ids:
        op = outbox.get(op_id)
        if op is not None:
            what = op.payload.subject or op.message_id or op.payload.describe()
            problems.append(SyncProblem(Problem.OPERATION_PARKED, what, op.last_error or ""))
    return problems


__all__ = ["deadline_problem", "parked_problems", "problem_of", "queue_sign_in_problem"]
