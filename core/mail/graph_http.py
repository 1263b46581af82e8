"""The wire of the Microsoft Graph mail backend: one httpx client, a bearer token asked of the
caller's callable for every request (so a token MSAL renewed is used at once), Graph's limits
and its errors mapped to :class:`~core.mail.base.MailError` once, here.

Limits (Outlook resources): at most :data:`MAX_CONCURRENT` requests in flight per mailbox —
a semaphore shared by every backend of this process on the same mailbox; a 429 (or a 503 with
``Retry-After``) is retried after the time the server asks, up to :data:`RETRIES` times and
:data:`MAX_WAIT` seconds. JSON batching (:meth:`GraphHttp.batch`) sends up to 20 requests in
one round trip; Graph may run a batch's members in parallel, so a batch holds as many slots
as it has members (at most all of them).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from core.mail.base import (
    MailAuthError,
    MailError,
    MailNotFound,
    MailProtocolError,
    MailUnavailable,
)

DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"
#: Graph's limit of concurrent requests per mailbox (Outlook resources).
MAX_CONCURRENT = 4
#: Members of one ``$batch`` request (Graph's limit).
BATCH_LIMIT = 20
#: Throttled requests are retried this many times before the mailbox counts as unavailable.
RETRIES = 4
#: Longest ``Retry-After`` waited out; a longer one makes the mailbox unavailable for now.
MAX_WAIT = 120.0

TokenSource = Callable[[], str]
Verify = Any  # what httpx takes: True, a CA bundle path or an ssl.SSLContext

_slots: dict[str, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def mailbox_slots(key: str) -> threading.BoundedSemaphore:
    """The process-wide semaphore of one mailbox (``key``: base URL + ``/me`` or the
    ``/users/{address}`` prefix, case-folded)."""
    with _slots_lock:
        found = _slots.get(key)
        if found is None:
            found = _slots[key] = threading.BoundedSemaphore(MAX_CONCURRENT)
        return found


class DeltaGone(MailProtocolError):
    """410 Gone: the sync state (a delta link) expired; the folder needs a new round."""


@dataclass(frozen=True, slots=True)
class SubResponse:
    """One member's answer in a ``$batch``: status, headers and body (JSON or base64 text)."""

    status: int
    headers: Mapping[str, str]
    body: Any


class GraphHttp:
    """Requests to one mailbox: ``/me`` or, with ``mailbox``, ``/users/{mailbox}``."""

    def __init__(
        self,
        base_url: str,
        mailbox: str | None,
        token: TokenSource,
        *,
        verify: Verify = True,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.prefix = f"/users/{quote(mailbox, safe='@')}" if mailbox else "/me"
        self._token = token
        self._sleep = sleep
        self._client = httpx.Client(
            verify=verify, timeout=timeout, headers={"Accept": "application/json"}
        )
        self._slots = mailbox_slots(f"{self.base}{self.prefix}".casefold())
        self._batch_lock = threading.Lock()

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` below the mailbox (``/mailFolders/inbox``)."""
        return f"{self.base}{self.prefix}{path}"

    def close(self) -> None:
        self._client.close()

    # -- single requests ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        text: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request (absolute ``url``), retried when throttled or when the token source
        gives a new token after a 401. Raises :class:`MailError` for any failure."""
        extra = dict(headers or {})
        content: bytes | None = None
        if json_body is not None:
            content, extra["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif text is not None:
            content, extra["Content-Type"] = text.encode("ascii"), "text/plain"
        renewed = False
        for attempt in range(RETRIES + 1):
            token = self.bearer()
            with self._slots:
                r = self._send(method, url, what, params, content, {**extra, **token})
            if r.status_code == 401 and not renewed and self.bearer() != token:
                renewed = True  # the source had a newer token: one more try with it
                continue
            wait = throttled_wait(r.status_code, r.headers)
            if wait is not None and attempt < RETRIES:
                self._sleep(wait)
                continue
            if r.is_success:
                return r
            raise error_of(r.status_code, _error_body(r), r.headers, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self,
        method: str,
        url: str,
        what: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: dict[str, str],
    ) -> httpx.Response:
        try:
            return self._client.request(
                method, url, params=params, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            raise MailUnavailable(
                f"Graph {what}: server unreachable", server_says=f"{type(exc).__name__}: {exc}"
            ) from exc

    def bearer(self) -> dict[str, str]:
        """The ``Authorization`` header from the token source, whose failures become mail
        errors (the source should raise :class:`MailAuthError` itself when it can)."""
        try:
            token = self._token()
        except MailError:
            raise
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise MailUnavailable(
                "no Graph token: sign-in unreachable", server_says=str(exc)
            ) from exc
        except Exception as exc:
            raise MailAuthError(
                "no Graph token", server_says=f"{type(exc).__name__}: {exc}"
            ) from exc
        if not token:
            raise MailAuthError("no Graph token: sign in again")
        return {"Authorization": f"Bearer {token}"}

    def json(self, method: str, url: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        r = self.request(method, url, what=what, **kwargs)
        try:
            body = r.json()
        except ValueError as exc:
            raise MailProtocolError(f"Graph {what}: not JSON", server_says=r.text[:200]) from exc
        if not isinstance(body, dict):
            raise MailProtocolError(f"Graph {what}: unexpected answer", server_says=r.text[:200])
        return body

    # -- $batch -------------------------------------------------------------------------------

    def batch(self, requests: list[dict[str, Any]], *, what: str) -> list[SubResponse]:
        """Answers to ``requests`` (each ``{"method", "url"`` below the mailbox``, "body"?}``),
        in order, sent ``$batch`` by ``$batch`` (20 each); throttled members are sent again
        after the wait the server asks. Members' errors are left to the caller."""
        out: list[SubResponse] = []
        for start in range(0, len(requests), BATCH_LIMIT):
            out += self._one_batch(requests[start : start + BATCH_LIMIT], what)
        return out

    def _one_batch(self, requests: list[dict[str, Any]], what: str) -> list[SubResponse]:
        answers: dict[int, SubResponse] = {}
        todo = list(range(len(requests)))
        for attempt in range(RETRIES + 1):
            members = [_member(i, requests[i], self.prefix) for i in todo]
            with self._held(len(members)):
                body = self._batch_call(members, what)
            for entry in body.get("responses", []):
                answers[int(entry["id"])] = SubResponse(
                    int(entry.get("status", 0)), entry.get("headers") or {}, entry.get("body")
                )
            waits = [throttled_wait(answers[i].status, answers[i].headers) for i in todo]
            retry = [i for i, w in zip(todo, waits, strict=True) if w is not None]
            if not retry or attempt == RETRIES:
                break
            self._sleep(max(w for w in waits if w is not None))
            todo = retry
        missing = [i for i in range(len(requests)) if i not in answers]
        if missing:
            raise MailProtocolError(f"Graph {what}: the batch left requests unanswered")
        return [answers[i] for i in range(len(requests))]

    def _batch_call(self, members: list[dict[str, Any]], what: str) -> dict[str, Any]:
        """POST ``/$batch`` outside the mailbox semaphore (the caller holds the slots)."""
        renewed = False
        content = json.dumps({"requests": members}).encode()
        for attempt in range(RETRIES + 1):
            token = self.bearer()
            headers = {**token, "Content-Type": "application/json"}
            r = self._send("POST", f"{self.base}/$batch", what, None, content, headers)
            if r.status_code == 401 and not renewed and self.bearer() != token:
                renewed = True
                continue
            wait = throttled_wait(r.status_code, r.headers)
            if wait is not None and attempt < RETRIES:
                self._sleep(wait)
                continue
            if not r.is_success:
                raise error_of(r.status_code, _error_body(r), r.headers, what)
            result: dict[str, Any] = r.json()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _held(self, n: int) -> Iterator[None]:
        """Hold ``n`` (at most all) of the mailbox's slots; one batch takes them at a time,
        so two batches never deadlock each holding half."""
        n = max(1, min(n, MAX_CONCURRENT))
        with self._batch_lock:
            for _ in range(n):
                self._slots.acquire()
        try:
            yield
        finally:
            for _ in range(n):
                self._slots.release()


def _member(index: int, request: dict[str, Any], prefix: str) -> dict[str, Any]:
    member: dict[str, Any] = {
        "id": str(index),
        "method": request["method"],
        "url": prefix + request["url"],
    }
    if "body" in request:
        member["body"] = request["body"]
        member["headers"] = {"Content-Type": "application/json"}
    return member


def throttled_wait(status: int, headers: Mapping[str, str]) -> float | None:
    """Seconds to wait before trying again, or None when the answer is not "busy, retry"
    (429 always is; 503 when it says when). A wait beyond :data:`MAX_WAIT` is not waited."""
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if status != 429 and not (status == 503 and raw is not None):
        return None
    try:
        wait = float(raw) if raw is not None else 1.0
    except ValueError:
        wait = 1.0
    return max(0.0, wait) if wait <= MAX_WAIT else None


def _error_body(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return r.text[:200]


def error_of(status: int, body: Any, headers: Mapping[str, str], what: str) -> MailError:
    """The mail error of a Graph error answer (classified once, here)."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        says = f"{status} {err.get('code', '')}: {err.get('message', '')}"
    else:
        says = f"{status}: {body}"
    if status in (401, 403):
        return MailAuthError(f"Graph {what} refused", server_says=says)
    if status == 404:
        return MailNotFound(f"Graph {what}: not found", server_says=says)
    if status == 410:
        return DeltaGone(f"Graph {what}: sync state expired", server_says=says)
    if status in (429, 503) or status >= 500:
        return MailUnavailable(f"Graph {what}: server busy or down", server_says=says)
    return MailProtocolError(f"Graph {what} failed", server_says=says)
