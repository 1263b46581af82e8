"""The per-request windows of :mod:`router.limits`, asked on the wire before every request of
the router's CRM client and of its Graph mailboxes.

The hook sits at the HTTP layer, below the clients' own retries, so every request that
reaches a server is counted — a GET the CRM client sends again after a 429, each page of a
query, each Graph ``$batch`` — and nothing in ``core`` needs to know about the router:

- **CRM** (:func:`limited_crm_transport`): a transport wrapping the client's own
  ``DeadlineTransport``, passed to ``CrmClient(transport=…)``. Before a request it waits
  while the identity is paused (another worker's 429) and for
  :meth:`~router.limits.Limiter.crm_request`; after a 429 it pauses the identity for every
  worker for the ``Retry-After`` (the client's own gate then waits it out in this process).
- **Graph** (:func:`limit_graph`): request hooks on the backend's ``httpx.Client``:
  :meth:`~router.limits.Limiter.graph_request` for every request of the mailbox, and
  :meth:`~router.limits.Limiter.graph_send` as well for ``sendMail``.

A wait is slept while the job holds the mailbox lock (its renewal runs in another thread);
one longer than the policy's ``max_wait_s`` — a third of the lock's TTL by default — raises
:class:`~router.limits.RequestWindowFull` instead, which ends the pass and defers its job, so
no job sits on a mailbox and a job slot through a long wait. The limiter and the CRM
identity are those :func:`router.actors.install` gave the process, looked up per request;
outside a worker (the CLI's ``status``, tests without a runtime) nothing is limited.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable

import httpx

from core.crm.client import API_PATH
from core.crm.deadline import DeadlineTransport, environment_proxy
from core.crm.wire import retry_after
from core.mail.graph import GraphBackend
from router import actors
from router.limits import RequestWindowFull

log = logging.getLogger("trackbox.router")

Sleep = Callable[[float], None]
#: The pause after a 429 that does not say how long (the CRM always says; a proxy may not).
DEFAULT_PAUSE_S = 5.0


def _wait_for(
    ask: Callable[[], float],
    what: str,
    policy: actors.RequestPolicy,
    sleep: Sleep,
    identity: str | None = None,
) -> None:
    """Ask until admitted (0), sleeping each answered wait; a wait that would take the total
    beyond ``policy.max_wait_s`` raises :class:`RequestWindowFull`."""
    waited = 0.0
    while (wait := ask()) > 0:
        if waited + wait > policy.max_wait_s:
            raise RequestWindowFull(what, wait, identity)
        log.debug("router request window %s: waiting %.2f s", what, wait)
        sleep(wait)
        waited += wait


class CrmGate:
    """Before and after each CRM request: the identity's pause and request window."""

    def __init__(self, sleep: Sleep = time.sleep) -> None:
        self.sleep = sleep

    def before(self, request: httpx.Request) -> None:
        policy = actors.current_policy()
        if policy is None:
            return
        lim, who = policy.limiter, policy.crm_identity
        _wait_for(lambda: lim.paused_for(who), f"CRM paused for {who}", policy, self.sleep, who)
        _wait_for(lambda: lim.crm_request(who), f"CRM requests of {who}", policy, self.sleep, who)

    def after(self, response: httpx.Response) -> None:
        """A 429: every worker waits (the shared pause), not only this client's gate."""
        policy = actors.current_policy()
        if policy is None or response.status_code != 429:
            return
        wait = retry_after(response)
        policy.limiter.pause(policy.crm_identity, DEFAULT_PAUSE_S if wait is None else wait)


class LimitedTransport(httpx.BaseTransport):
    """``inner`` with :class:`CrmGate` around every request."""

    def __init__(self, inner: httpx.BaseTransport, gate: CrmGate) -> None:
        self.inner = inner
        self.gate = gate

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.gate.before(request)
        response = self.inner.handle_request(request)
        self.gate.after(response)
        return response

    def close(self) -> None:
        self.inner.close()


def limited_crm_transport(
    base_url: str, verify: ssl.SSLContext | bool, *, gate: CrmGate | None = None
) -> LimitedTransport:
    """What ``CrmClient`` would build for itself (its deadline transport, the environment's
    proxy), wrapped in the CRM gate."""
    proxy = environment_proxy(base_url.rstrip("/") + API_PATH)
    inner = DeadlineTransport(verify=verify, proxy=proxy)
    return LimitedTransport(inner, gate or CrmGate())


class GraphGate:
    """Before each Graph request of one mailbox: its request window, and its send window for
    ``sendMail``."""

    def __init__(self, mailbox: str, sleep: Sleep = time.sleep) -> None:
        self.mailbox = mailbox.casefold()
        self.sleep = sleep

    def before(self, request: httpx.Request) -> None:
        policy = actors.current_policy()
        if policy is None:
            return
        lim, box = policy.limiter, self.mailbox
        if is_send(request):
            _wait_for(lambda: lim.graph_send(box), f"Graph sends of {box}", policy, self.sleep)
        _wait_for(lambda: lim.graph_request(box), f"Graph requests of {box}", policy, self.sleep)


def is_send(request: httpx.Request) -> bool:
    """``POST …/sendMail`` (a message sent; its draft's ``…/send`` too)."""
    path = request.url.path.rstrip("/").casefold()
    return request.method == "POST" and path.endswith(("/sendmail", "/send"))


def limit_graph(backend: GraphBackend, mailbox: str, gate: GraphGate | None = None) -> None:
    """Put the mailbox's :class:`GraphGate` on the backend's HTTP client (a request hook).

    ``GraphBackend`` takes no transport or hooks, so this reaches its ``httpx.Client``
    (``backend.http._client``); the smallest change in ``core`` that would make it public: a
    ``transport``/``event_hooks`` parameter passed from ``GraphBackend`` to ``GraphHttp`` to
    its ``httpx.Client``."""
    client: httpx.Client = backend.http._client
    hooks = client.event_hooks
    hooks["request"] = [*hooks.get("request", []), (gate or GraphGate(mailbox)).before]
    client.event_hooks = hooks


__all__ = [
    "CrmGate",
    "GraphGate",
    "LimitedTransport",
    "is_send",
    "limit_graph",
    "limited_crm_transport",
]
