"""Problems travel as types: classified by the error's type, never by its text; stored
reports round-trip; reports written before problems had types still read."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import httpx
import pytest

from core.crm.client import _untrusted
from core.crm.errors import CrmAuthError, CrmCertificateError, CrmPermanentError, CrmUnavailable
from core.domain.crm_settings import SettingsError
from core.domain.problems import SIGN_IN_PROBLEMS, Problem, SyncProblem
from core.mail.base import MailAuthError, MailError, MailUnavailable
from core.sync.problems import problem_of
from core.sync.report import SyncReport
from desktop.errors import describe_problem


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (CrmCertificateError("x"), Problem.CRM_CERTIFICATE),
        (CrmUnavailable("x"), Problem.CRM_UNAVAILABLE),
        (CrmAuthError("x"), Problem.CRM_SIGN_IN),
        (CrmPermanentError("x", code="0x80040217"), Problem.CRM_REFUSED),
        (SettingsError("hashmaxcount", -1, "Expected 0 or more."), Problem.CRM_SETTINGS),
        (MailAuthError("x"), Problem.MAIL_SIGN_IN),
        (MailUnavailable("x"), Problem.MAIL_UNAVAILABLE),
        (MailError("x"), Problem.MAIL_FAILED),
        (KeyError("x"), Problem.STEP_FAILED),
    ],
)
def test_errors_are_classified_by_type(error: Exception, problem: Problem) -> None:
    found = problem_of(error, "doing it")
    assert found.problem is problem and found.what == "doing it"
    assert describe_problem(found)  # every kind has words in the GUI's one ladder


def test_text_that_looks_like_a_sign_in_problem_is_not_one() -> None:
    """The old CLI read "refused the user name or password" in a string; now only types count."""
    found = problem_of(RuntimeError("The CRM refused the user name or password"), "x")
    assert found.problem is Problem.STEP_FAILED and found.problem not in SIGN_IN_PROBLEMS


def test_a_certificate_error_is_found_by_type_in_the_error_chain() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    try:
        try:
            raise verify
        except ssl.SSLError as inner:
            raise httpx.ConnectError("wrapped") from inner
    except httpx.ConnectError as outer:
        assert _untrusted(outer)
    assert not _untrusted(httpx.ConnectError("CERTIFICATE_VERIFY_FAILED in the text only"))


def test_reports_round_trip_and_old_reports_still_read() -> None:
    now = datetime.now(UTC)
    problem = SyncProblem(Problem.CRM_REFUSED, "address book queue", "Not allowed")
    report = SyncReport(ok=False, online=True, started=now, finished=now, errors=(problem,))
    assert SyncReport.from_dict(report.to_dict()).errors == (problem,)
    old = {**report.to_dict(), "errors": ["mail: something broke"]}
    (read,) = SyncReport.from_dict(old).errors
    assert read == SyncProblem(Problem.UNKNOWN, "", "mail: something broke")
    odd = {**report.to_dict(), "errors": [{"problem": "from_the_future", "what": "w"}]}
    assert SyncReport.from_dict(odd).errors[0].problem is Problem.UNKNOWN
