"""Typed errors of the CRM Web API client, classified once, at the wire.

Callers decide on the class, never on text: ``CrmUnavailable`` means "try again later" (the
outbox backs off, the sync engine goes offline); of its kinds, a plain ``CrmUnavailable`` says
the CRM cannot be reached at all (connection refused, DNS, connect timeout), while
``CrmRequestFailed`` says one request failed on its way (5xx, reset, an unreadable answer) and
the next one may well succeed — the outbox then defers that operation only and goes on with
the others. ``CrmAmbiguousResponse`` is the kind of it where a write reached the CRM and it may
or may not have done it. ``CrmAuthError`` means "ask the user for a new
secret", ``CrmPermanentError`` means "this request will never succeed as is" and carries the
CRM's own ``code`` and ``message`` for the user. Human wording lives in the UI layer.
"""

from __future__ import annotations


class CrmError(Exception):
    """Root of every error raised by ``core.crm``."""

    def __init__(
        self,
        message: str = "",
        *,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.status = status

    def __str__(self) -> str:
        where = f"{self.method} {self.url}" if self.method and self.url else (self.url or "")
        status = f"HTTP {self.status}" if self.status is not None else ""
        return ": ".join(p for p in (where, status, self.message) if p)


class CrmUnavailable(CrmError):
    """Transient: try again later. As such (no subclass) the CRM could not be reached at all:
    connection refused, DNS, connect timeout. Subclasses: ``CrmRequestFailed`` (one request
    failed: 5xx, reset, unreadable answer), ``CrmThrottled`` (429), ``CrmCertificateError``.
    ``retry_after`` is the server's Retry-After in seconds, when it sent one."""

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url, status=status)
        self.retry_after = retry_after


class CrmRequestFailed(CrmUnavailable):
    """One request failed transiently although the CRM (or what stands in front of it) was
    reached: a 5xx, a connection reset or read timeout mid-answer, a 2xx answer that is
    truncated or not JSON. Another request may well succeed at once: not "offline"."""


class CrmAmbiguousResponse(CrmRequestFailed):
    """A write was sent but its answer was lost or unreadable (reset or timeout after sending,
    a 5xx from a gateway, a truncated or non-JSON 2xx): the CRM may or may not have done it.
    Retry only what is idempotent (every outbox operation is)."""


class CrmCertificateError(CrmUnavailable):
    """The server's TLS certificate is not trusted. Not simply "away": the user must act (a
    wrong URL, an intercepting proxy, a missing CA); retried like any unavailability."""


class CrmAuthError(CrmError):
    """401: the credentials were rejected or the token expired."""


class SignInRequired(CrmAuthError):
    """A Microsoft / AD FS sign-in cannot be renewed without the user: no account is signed
    in, or the authority refused the refresh token (revoked, expired, password changed,
    ``interaction_required``). ``reason`` is the authority's error code (``invalid_grant`` …)
    or ``no_account``; ``username`` the account concerned, when known. The remedy is always
    the same: sign in again (``trackbox account sign-in``)."""

    def __init__(
        self,
        message: str = "",
        *,
        reason: str = "",
        username: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, url=url)
        self.reason = reason
        self.username = username


class SignInFailed(CrmAuthError):
    """An interactive sign-in (browser, device code, auth code) did not give a token:
    ``error`` is the authority's OAuth error code (``access_denied``, ``expired_token`` …),
    ``message`` its description."""

    def __init__(self, message: str = "", *, error: str = "", url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.error = error


class AccountChoiceRequired(CrmAuthError):
    """Several accounts are signed in and none was named: ``usernames`` lists them."""

    def __init__(self, usernames: tuple[str, ...]) -> None:
        super().__init__("several accounts are signed in: " + ", ".join(usernames) + "; name one")
        self.usernames = usernames


class AuthorityError(CrmAuthError):
    """The sign-in authority cannot be used: its OpenID configuration is missing or
    malformed (a wrong ``crm_authority`` or tenant). ``authority`` names it."""

    def __init__(self, message: str = "", *, authority: str = "") -> None:
        super().__init__(message, url=authority or None)
        self.authority = authority


class CrmPermanentError(CrmError):
    """400/403/404/405/409/412/501…: the request itself is wrong or not allowed. ``code`` is
    the CRM's error code (``0x80040217`` …, may be empty)."""

    def __init__(
        self,
        message: str = "",
        *,
        code: str = "",
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url, status=status)
        self.code = code

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def precondition_failed(self) -> bool:
        return self.status == 412


class CrmProtocolError(CrmPermanentError):
    """The server answered readable JSON that is not what the Web API sends (not an object,
    a missing id or link): asking again cannot help. An answer that cannot be read at all
    (truncated, not JSON) is a :class:`CrmRequestFailed` instead: in practice a proxy or a
    broken connection garbled it, and the next answer is fine."""


class CrmForeignOrigin(CrmPermanentError):
    """The CRM pointed the client elsewhere (an ``@odata.nextLink``, ``@odata.deltaLink`` or
    redirect to another scheme, host or port). Never followed: the request would carry the
    CRM's credentials to that origin. ``origin`` names it (``https://host:port``)."""

    def __init__(self, origin: str, *, what: str, method: str | None = None) -> None:
        super().__init__(
            f"{what} points to another origin ({origin}); not followed, so that the CRM's "
            "credentials are not sent there",
            method=method,
        )
        self.origin = origin
        self.what = what


class AuthChallengeError(CrmError):
    """The CRM's answer to an unauthenticated request does not say where to sign in:
    ``reason`` says what was wrong (no 401, no ``Bearer`` challenge, a malformed or hostile
    ``WWW-Authenticate``), ``schemes`` lists the schemes it did offer (``NTLM``, ``Negotiate``
    and ``Basic`` mean an on-premises CRM: Windows sign-in, or a password)."""

    def __init__(
        self,
        reason: str,
        *,
        schemes: tuple[str, ...] = (),
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(reason, method="GET", url=url, status=status)
        self.reason = reason
        self.schemes = schemes


class DiscoveryError(CrmProtocolError):
    """The Global Discovery Service answered something that is not a list of instances."""


__all__ = [
    "AccountChoiceRequired",
    "AuthChallengeError",
    "AuthorityError",
    "CrmAmbiguousResponse",
    "CrmAuthError",
    "CrmCertificateError",
    "CrmError",
    "CrmForeignOrigin",
    "CrmPermanentError",
    "CrmProtocolError",
    "CrmRequestFailed",
    "CrmUnavailable",
    "DiscoveryError",
    "SignInFailed",
    "SignInRequired",
]
