"""A fake Microsoft Graph (v1.0 mail) server over HTTPS on loopback, the test double of the
Graph mail backend (no Microsoft 365 can run here), in the manner of the fake EWS server.

It speaks Graph's JSON for mail folders, per-folder message delta, messages (``$value`` MIME,
PATCH, move, copy, delete, create from MIME), ``sendMail`` and ``$batch``
(:mod:`tests.fakes.graph_routes`, :mod:`tests.fakes.graph_delta`), over mailboxes that hold
real MIME (:mod:`tests.fakes.graph_store`). Every request needs a bearer token from the
emulator's authority, checked against its JWKS (:mod:`tests.fakes.graph_auth`).

Anything it does not know — path, method, query option, ``$select`` field, preference, body —
is answered 400/501 in Graph's error shape *and* recorded in :attr:`unknown_requests`, which
the ``graph_server`` fixture turns into a test failure: a fake that guesses lets tests pass
for the wrong reason. Limits: at most :attr:`max_concurrency` requests in flight per mailbox
(429 ``ApplicationThrottled``). Faults: :meth:`inject` (status, Retry-After, delay),
:meth:`hold` (requests wait until released), :meth:`expire_delta_links` (410).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crmserver.runner import listen, root_url
from crmserver.tls import TlsFiles
from tests.fakes.graph_auth import Caller, TokenVerifier, access_denied
from tests.fakes.graph_delta import DeltaRounds
from tests.fakes.graph_json import error_body, message_fields
from tests.fakes.graph_routes import Answer, Call, route
from tests.fakes.graph_store import Folder, GraphError, Mailbox, Message

HOLD_GUARD = 60.0  # a held request gives up after this long (a hang-guard, not a timing)


@dataclass
class Fault:
    """An injected answer for the next ``times`` requests whose path and query contain
    ``path_contains``: ``status`` (None: answer normally) after ``delay`` seconds."""

    status: int | None
    times: int
    retry_after: int | None
    path_contains: str
    delay: float
    code: str | None


class Gate:
    """Requests matching a :meth:`FakeGraphServer.hold` wait here (in flight) until
    :meth:`release`; :meth:`wait_for` waits until ``n`` of them are waiting."""

    def __init__(self, path_contains: str) -> None:
        self.path_contains = path_contains
        self.arrived = 0
        self._released = threading.Event()
        self._changed = threading.Condition()

    def enter(self) -> None:
        with self._changed:
            self.arrived += 1
            self._changed.notify_all()
        self._released.wait(HOLD_GUARD)

    def wait_for(self, n: int, timeout: float = 30.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.arrived >= n, timeout):
                raise TimeoutError(f"only {self.arrived} of {n} requests arrived at the gate")

    def release(self) -> None:
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()


@dataclass(frozen=True)
class SentMail:
    """A message ``sendMail`` sent: the MIME as sent, its envelope recipients, and the id of
    its copy in Sent Items (None when not saved)."""

    mailbox: str
    mime: bytes
    recipients: list[str]
    saved_id: str | None


@dataclass
class _Incoming:
    method: str
    target: str  # path below /v1.0 with its query
    headers: dict[str, str]
    body: bytes
    log: list[str] = field(default_factory=list)


class FakeGraphServer:
    """Start with :meth:`start`; :attr:`url` is ``https://127.0.0.1:PORT/v1.0``; clients
    verify it with :attr:`ca_file`. ``authority``: the tenant authority whose tokens are
    accepted (``https://host:port/<tenant-id>``), ``authority_ca``: the CA to reach it."""

    def __init__(self, authority: str, tls: TlsFiles, authority_ca: str | None = None) -> None:
        self.verifier = TokenVerifier(authority, authority_ca)
        self.tls = tls
        self.ca_file = tls.ca
        self.max_concurrency = 4
        self.concurrency_retry_after = 1
        self.unknown_requests: list[str] = []
        self.requests: list[str] = []  # "GET /v1.0/me/mailFolders -> 200", every request
        self.sent: list[SentMail] = []
        self._boxes: dict[str, Mailbox] = {}
        self._grants: set[tuple[str, str]] = set()
        self._faults: list[Fault] = []
        self._gates: list[Gate] = []
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()
        self._delta = DeltaRounds()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeGraphServer:
        app = Starlette(routes=[Route("/{path:path}", self._asgi, methods=_METHODS)])
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=self.tls.cert,
            ssl_keyfile=self.tls.key,
        )
        self._sock = listen("127.0.0.1", 0)
        self._server = uvicorn.Server(config)
        server, sock = self._server, self._sock
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name="fake-graph", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Graph server did not start")
            time.sleep(0.01)
        self.url = root_url("127.0.0.1", int(sock.getsockname()[1]), "https") + "/v1.0"
        return self

    def stop(self) -> None:
        for gate in self._gates:
            gate.release()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()

    # -- seeding and inspection ----------------------------------------------------------

    def add_mailbox(self, address: str, *, outbox: bool = False) -> Mailbox:
        """The mailbox of ``address`` (made when new, with an Outbox if ``outbox``)."""
        with self._lock:
            key = address.lower()
            if key not in self._boxes:
                self._boxes[key] = Mailbox(key, ("outbox",) if outbox else ())
            return self._boxes[key]

    def mailbox(self, address: str) -> Mailbox:
        return self._boxes[address.lower()]

    def grant(self, mailbox: str, user: str) -> None:
        """Let ``user`` reach ``mailbox`` through ``/users/{mailbox}`` (full access or a
        delegate: the token still needs the ``*.Shared`` scopes)."""
        self.add_mailbox(mailbox)
        self._grants.add((mailbox.lower(), user.lower()))

    def add_message(
        self,
        mailbox: str,
        folder_path: str,
        mime: bytes,
        is_read: bool = False,
        flagged: bool = False,
        categories: Iterable[str] = (),
    ) -> str:
        """Deliver ``mime`` into a folder (a well-known name or a display-name path such as
        ``Inbox/Projects``, created as needed); returns the message's Graph id."""
        box = self.add_mailbox(mailbox)
        with box.lock:
            made = box.add(
                box.path_folder(folder_path),
                mime,
                is_read=is_read,
                flag="flagged" if flagged else "notFlagged",
                categories=list(categories),
            )
        # Exchange works out a message's properties on delivery; the fake too (its MIME
        # parse is slow), so a read soon after does not pay for it.
        message_fields(box, made)
        return made.id

    def add_messages(self, mailbox: str, folder_path: str, mimes: Iterable[bytes]) -> list[str]:
        """Deliver many unread messages into one folder under one lock (seeding a large
        mailbox for a benchmark); returns their Graph ids in order."""
        box = self.add_mailbox(mailbox)
        with box.lock:
            folder = box.path_folder(folder_path)
            return [box.add(folder, mime, is_read=False).id for mime in mimes]

    def folder(self, mailbox: str, ref: str) -> Folder:
        """A folder by id, well-known name or display-name path (created as needed)."""
        box = self.mailbox(mailbox)
        with box.lock:
            return box.path_folder(ref)

    def message(self, mailbox: str, message_id: str) -> Message:
        return self.mailbox(mailbox).message(message_id)

    def messages(self, mailbox: str, folder_ref: str) -> list[Message]:
        box = self.mailbox(mailbox)
        with box.lock:
            return box.in_folder(box.path_folder(folder_ref).id)

    def change_message(
        self,
        mailbox: str,
        message_id: str,
        *,
        is_read: bool | None = None,
        flagged: bool | None = None,
        categories: Iterable[str] | None = None,
    ) -> None:
        """A change made elsewhere (Outlook, another device): the next delta round shows it."""
        box = self.mailbox(mailbox)
        with box.lock:
            message = box.message(message_id)
            if is_read is not None:
                message.is_read = is_read
            if flagged is not None:
                message.flag = "flagged" if flagged else "notFlagged"
            if categories is not None:
                message.categories = list(categories)
            box.touch(message)

    def move_message(self, mailbox: str, message_id: str, folder_ref: str) -> str:
        """Move a message elsewhere; returns its new id (Graph ids change on a move)."""
        box = self.mailbox(mailbox)
        with box.lock:
            return box.move(box.message(message_id), box.path_folder(folder_ref)).id

    def delete_message(self, mailbox: str, message_id: str) -> None:
        box = self.mailbox(mailbox)
        with box.lock:
            box.remove(box.message(message_id), "deleted")

    def record_sent(
        self, mailbox: str, mime: bytes, recipients: list[str], saved: str | None
    ) -> None:
        with self._lock:
            self.sent.append(SentMail(mailbox, mime, recipients, saved))

    # -- faults -----------------------------------------------------------------------------

    def inject(
        self,
        status: int | None = None,
        *,
        times: int = 1,
        retry_after: int | None = None,
        path_contains: str = "",
        delay: float = 0.0,
        code: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (429, 503, 410, …; None:
        normally) after ``delay`` seconds, with ``Retry-After`` when given."""
        with self._lock:
            self._faults.append(Fault(status, times, retry_after, path_contains, delay, code))

    def hold(self, path_contains: str = "") -> Gate:
        """Matching requests wait, in flight, until the returned gate is released."""
        gate = Gate(path_contains)
        with self._lock:
            self._gates.append(gate)
        return gate

    def expire_delta_links(self, mailbox: str | None = None) -> int:
        """Forget the sync states (of ``mailbox``): their links answer 410 Gone."""
        return self._delta.expire(mailbox.lower() if mailbox else None)

    def in_flight(self, mailbox: str) -> int:
        with self._lock:
            return self._in_flight.get(mailbox.lower(), 0)

    def delta(self, call: Call) -> Answer:
        return self._delta.answer(call)

    # -- requests ---------------------------------------------------------------------------

    async def _asgi(self, request: Request) -> Response:
        body = await request.body()
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        headers = {k.lower(): v for k, v in request.headers.items()}
        incoming = _Incoming(request.method, target, headers, body)
        answer = await run_in_threadpool(self._handle, incoming)
        return _response(answer)

    def _handle(self, incoming: _Incoming) -> Answer:
        try:
            answer = self._authenticated(incoming)
        except GraphError as exc:
            answer = self._error(incoming, exc)
        except Exception:  # a bug in the fake: fail the test, say where
            self.unknown_requests.append(
                f"{incoming.method} {incoming.target}: fake crashed: {traceback.format_exc()}"
            )
            answer = Answer(500, error_body("InternalServerError", "The fake crashed."))
        with self._lock:
            self.requests.append(f"{incoming.method} {incoming.target} -> {answer.status}")
        return answer

    def _error(self, incoming: _Incoming, exc: GraphError) -> Answer:
        if exc.unknown:
            with self._lock:
                self.unknown_requests.append(f"{incoming.method} {incoming.target}: {exc}")
        return Answer(exc.status, error_body(exc.code, exc.message, exc.inner), headers=exc.headers)

    def _authenticated(self, incoming: _Incoming) -> Answer:
        path = urlsplit(incoming.target).path
        if not path.startswith("/v1.0/"):
            raise GraphError(400, "BadRequest", f"Invalid version or path: {path}", unknown=True)
        caller = self.verifier.caller(incoming.headers.get("authorization"))
        if path == "/v1.0/$batch":
            if incoming.method != "POST":
                raise GraphError(501, "NotImplemented", "$batch takes POST.", unknown=True)
            return self._batch(caller, incoming)
        return self._dispatch(caller, incoming)

    def _dispatch(self, caller: Caller, incoming: _Incoming) -> Answer:
        """One request below ``/v1.0`` (a batch's too): faults, the mailbox, its concurrency
        limit, the handler."""
        parts = urlsplit(incoming.target)
        segments = [unquote(s) for s in parts.path.split("/")[2:] if s]
        box, shared, prefix, rest = self._mailbox_of(caller, segments)
        handler, args = route(incoming.method, rest)
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in query:
                raise GraphError(400, "BadRequest", f"Query option {key} twice.", unknown=True)
            query[key] = value
        faulted = self._fault(incoming.target)
        if faulted is not None:
            return faulted
        call = Call(self, caller, box, shared, prefix, incoming.method, args, query,
                    incoming.headers, incoming.body)  # fmt: skip
        with self._concurrency(box.address):
            self._wait_at_gates(incoming.target)
            with box.lock:
                return handler(call)

    def _mailbox_of(
        self, caller: Caller, segments: list[str]
    ) -> tuple[Mailbox, bool, str, list[str]]:
        if segments[:1] == ["me"] and caller.app:
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        if segments[:1] == ["me"]:
            address, prefix, rest = caller.user, "/me", segments[1:]
        elif len(segments) >= 2 and segments[0].lower() == "users":
            address, prefix, rest = segments[1].lower(), f"/users/{segments[1]}", segments[2:]
        else:
            raise GraphError(
                400, "BadRequest", f"Resource not found for the segment '{segments[:1]}'.",
                unknown=True,
            )  # fmt: skip
        box = self._boxes.get(address)
        if box is None:
            if address == caller.user:
                raise GraphError(
                    404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, "
                    "soft-deleted, or is hosted on-premise.",
                )  # fmt: skip
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{address}' is invalid.")
        if caller.app:  # application permissions: every mailbox, no delegation needed
            return box, False, prefix, rest
        shared = address != caller.user
        if shared and (address, caller.user) not in self._grants:
            raise access_denied()
        return box, shared, prefix, rest

    def _fault(self, target: str) -> Answer | None:
        with self._lock:
            fault = next((f for f in self._faults if f.path_contains in target), None)
            if fault is None:
                return None
            fault.times -= 1
            if fault.times <= 0:
                self._faults.remove(fault)
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status is None:
            return None
        return _fault_answer(fault)

    def _wait_at_gates(self, target: str) -> None:
        with self._lock:
            gates = [g for g in self._gates if not g.released and g.path_contains in target]
        for gate in gates:
            gate.enter()

    def _concurrency(self, address: str) -> _InFlight:
        return _InFlight(self, address)

    def _enter(self, address: str) -> None:
        with self._lock:
            count = self._in_flight.get(address, 0)
            if count >= self.max_concurrency:
                raise GraphError(
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                    headers={"Retry-After": str(self.concurrency_retry_after)},
                    inner="MailboxConcurrency",
                )
            self._in_flight[address] = count + 1

    def _leave(self, address: str) -> None:
        with self._lock:
            self._in_flight[address] -= 1

    # -- $batch -----------------------------------------------------------------------------

    def _batch(self, caller: Caller, incoming: _Incoming) -> Answer:
        from tests.fakes.graph_batch import run_batch

        return run_batch(self, caller, incoming.headers, incoming.body)

    def sub_request(self, caller: Caller, method: str, url: str, headers: dict[str, str],
                    body: bytes) -> Answer:  # fmt: skip
        """One request of a batch, answered as if it came alone (``url`` below /v1.0)."""
        incoming = _Incoming(method, "/v1.0" + url, headers, body)
        try:
            answer = self._dispatch(caller, incoming)
        except GraphError as exc:
            answer = self._error(incoming, exc)
        with self._lock:
            self.requests.append(f"{method} {incoming.target} -> {answer.status} (batch)")
        return answer


class _InFlight:
    def __init__(self, server: FakeGraphServer, address: str) -> None:
        self.server = server
        self.address = address

    def __enter__(self) -> None:
        self.server._enter(self.address)

    def __exit__(self, *exc: object) -> None:
        self.server._leave(self.address)


_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"]
_FAULT_CODES = {
    429: ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    503: ("ServiceNotAvailable", "The service is temporarily unavailable."),
    410: ("SyncStateNotFound", "The sync state is not found or has expired: resync required."),
    504: ("GatewayTimeout", "The gateway timed out."),
}


def _fault_answer(fault: Fault) -> Answer:
    assert fault.status is not None
    code, message = _FAULT_CODES.get(fault.status, ("InjectedFault", "An injected fault."))
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    return Answer(fault.status, error_body(fault.code or code, message), headers=headers)


def _response(answer: Answer) -> Response:
    headers = dict(answer.headers)
    if answer.raw is not None:
        return Response(answer.raw, answer.status, headers, media_type=answer.content_type)
    if answer.json is None:
        return Response(b"", answer.status, headers)
    content = json.dumps(answer.json).encode()
    return Response(content, answer.status, headers, media_type="application/json")


def batch_body(answer: Answer) -> Any:
    """A sub-response's body as ``$batch`` carries it: JSON as is, anything else base64."""
    if answer.raw is not None:
        return base64.b64encode(answer.raw).decode()
    return answer.json
