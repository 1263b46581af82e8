"""The per-request windows on the wire (``router.request_limits``): with a tiny window, a pass
over a real mailbox against the emulator never sends the CRM more than the window admits and
still completes; Graph sends are counted in their own window beside the mailbox's requests; a
window too full to wait out under the mailbox lock defers the job (pausing the CRM identity only
for a CRM window); a 429 inside a job pauses the identity for every worker. Each runs with the
embedded mode's limiter and with the distributed mode's on a real Redis."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from crmserver import RunningServer, Settings, TlsFiles, run_in_thread
from crmserver.limits import Limits, ProtectionStats, ServiceProtection
from router import actors
from router.context import RouterContext
from router.limits import Limiter, LocalLimiter, RedisLimiter, ServiceLimits
from router.locks import LocalLocks, RedisLocks
from router.processing import MailboxRun, list_mailboxes, run_mailbox
from router.state import RedisState, SqliteState
from tests.fakes.graph_server import FakeGraphServer
from tests.plugins.graph import GraphTokens
from tests.plugins.mailservers import DovecotServer, SmtpServer

from .processing_env import SAM, RouterEnv, mime
from .test_processing_graph import exchange_online_profile, register_graph_app
from .test_processing_outgoing import email, send_from_crm

IDENTITY = actors.JobSettings().crm_identity
HANG_GUARD_S = 180.0


class ServiceOnly:
    """Dataverse's limits, and a count of arrivals, for the router's service (its Bearer
    requests to the Web API) only: the tests' own Basic requests pass by uncounted."""

    def __init__(
        self, app: ASGIApp, limits: Limits, stats: ProtectionStats, seen: list[str]
    ) -> None:
        self.app = app
        self.limited = ServiceProtection(app, limits, stats=stats)
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope["path"]).startswith("/api/data"):
            auth = dict(scope["headers"]).get(b"authorization", b"")
            if auth.lower().startswith(b"bearer "):
                self.seen.append(str(scope["path"]))
                await self.limited(scope, receive, send)
                return
        await self.app(scope, receive, send)


@dataclass
class LimitedCrm:
    server: RunningServer
    stats: ProtectionStats
    seen: list[str]


def limited_crm(tmp_path: Path, tls: TlsFiles, limits: Limits) -> Iterator[LimitedCrm]:
    stats, seen = ProtectionStats(), list[str]()
    middleware = [Middleware(ServiceOnly, limits=limits, stats=stats, seen=seen)]
    settings = Settings(db_path=tmp_path / "limited-org.db", seed="demo")
    with run_in_thread(settings, tls=tls, middleware=middleware) as server:
        yield LimitedCrm(server, stats, seen)


class Counting:
    """A limiter that counts what it admitted, refused and paused (the hook's side)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.limits = inner.limits
        self.admitted: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.pauses: list[tuple[str, float]] = []
        self._mutex = threading.Lock()

    def _count(self, kind: str, wait: float) -> float:
        with self._mutex:
            (self.admitted if wait == 0 else self.refused)[kind] += 1
        return wait

    def crm_request(self, identity: str) -> float:
        return self._count("crm", self.inner.crm_request(identity))

    def graph_request(self, mailbox: str) -> float:
        return self._count("graph", self.inner.graph_request(mailbox))

    def graph_send(self, mailbox: str) -> float:
        return self._count("send", self.inner.graph_send(mailbox))

    def pause(self, identity: str, seconds: float) -> None:
        with self._mutex:
            self.pauses.append((identity, seconds))
        self.inner.pause(identity, seconds)

    def paused_for(self, identity: str) -> float:
        return float(self.inner.paused_for(identity))

    def take(self, key: str, limit: int, window_s: float) -> float:
        return float(self.inner.take(key, limit, window_s))

    def acquire_slot(self, identity: str, ttl_s: float) -> str | None:
        token: str | None = self.inner.acquire_slot(identity, ttl_s)
        return token

    def renew_slot(self, identity: str, token: str, ttl_s: float) -> None:
        self.inner.renew_slot(identity, token, ttl_s)

    def release_slot(self, identity: str, token: str) -> None:
        self.inner.release_slot(identity, token)


@dataclass
class Recording:
    """``router.processing`` on a context, keeping each pass's outcome."""

    ctx: RouterContext
    runs: list[MailboxRun] = field(default_factory=list)

    def list_mailboxes(self) -> list[Any]:
        return list(list_mailboxes(self.ctx))

    def run_mailbox(self, mailbox_id: str) -> MailboxRun:
        run = run_mailbox(self.ctx, mailbox_id)
        self.runs.append(run)
        return run


@dataclass
class Stores:
    """Locks, state and limiters of one mode: in process, or on a real Redis."""

    locks: Any
    state: Any
    make_limiter: Callable[[ServiceLimits], Any]
    #: Another worker's view of the same limiter store.
    other: Callable[[], Any]

    def runtime(
        self, ctx: RouterContext, limiter: Limiter, **settings: Any
    ) -> tuple[actors.RouterRuntime, Recording]:
        processor = Recording(ctx)
        job = actors.JobSettings(**settings)
        rt = actors.RouterRuntime(processor, self.locks, self.state, limiter, job)
        actors.install(rt)
        return rt, processor


@pytest.fixture(autouse=True)
def _no_runtime_left_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime these tests install (tiny windows) must not limit later tests."""
    monkeypatch.setattr(actors, "_runtime", None)


@pytest.fixture(params=["embedded", "redis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "embedded":
        local: list[LocalLimiter] = []

        def make_local(limits: ServiceLimits) -> LocalLimiter:
            local.append(LocalLimiter(limits))
            return local[-1]

        state = SqliteState(tmp_path / "state.sqlite3")
        yield Stores(LocalLocks(), state, make_local, lambda: local[-1])
        return
    server = request.getfixturevalue("fresh_redis")
    client, other = server.client(), server.client()
    try:
        yield Stores(
            RedisLocks(client),
            RedisState(client),
            lambda limits: RedisLimiter(client, limits),
            lambda: RedisLimiter(other),
        )
    finally:
        client.close()
        other.close()


def run_guarded(rt: actors.RouterRuntime, mailbox_id: str) -> BaseException | None:
    """``actors.run_job`` in a thread of its own (a hang fails the test); what it raised."""
    raised: list[BaseException] = []

    def job() -> None:
        try:
            actors.run_job(rt, mailbox_id)
        except BaseException as exc:  # the test looks at it
            raised.append(exc)

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    if thread.is_alive():
        pytest.fail(f"the job did not finish within {HANG_GUARD_S:.0f} s", pytrace=False)
    return raised[0] if raised else None


def user_env(crm: RunningServer, dovecot: DovecotServer, smtp: SmtpServer, tmp: Path) -> RouterEnv:
    env = RouterEnv(crm, dovecot, smtp, tmp)
    env.register_service()
    env.mailbox_for(SAM.email)
    return env


# -- the CRM window ---------------------------------------------------------------------------


@pytest.fixture
def crm_5_per_s(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[LimitedCrm]:
    """The emulator answering 429 past 5 requests of the service in any second."""
    yield from limited_crm(tmp_path, crm_tls, Limits(requests=5, window=1.0))


def test_a_pass_never_exceeds_the_crm_window_and_completes(
    crm_5_per_s: LimitedCrm,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    tmp_path: Path,
    stores: Stores,
) -> None:
    env = user_env(crm_5_per_s.server, dovecot, smtp_server, tmp_path)
    ctx, box = env.context(), env.mailbox_id(SAM.email)
    env.set_filter(SAM.email, 0)  # all incoming e-mail
    # The router's window is 5 per 2 s: stricter than the server's 5 per 1 s, so the server's
    # count holds whatever the latency between the hook and the server.
    limiter = Counting(stores.make_limiter(ServiceLimits(crm_requests=5, crm_window_s=2.0)))
    rt, processor = stores.runtime(ctx, limiter)
    assert run_guarded(rt, box) is None  # the baseline
    mids = []
    for n in (1, 2):
        mid, raw = mime(f"customer{n}@fabrikam.example", SAM.email, f"Question {n}")
        env.deliver(SAM.email, raw)
        mids.append(mid)
    assert run_guarded(rt, box) is None

    baseline, run = processor.runs
    assert baseline.errors == () and run.errors == () and run.promoted == 2
    assert all(len(env.emails(mid)) == 1 for mid in mids)
    assert crm_5_per_s.stats.throttled == 0  # the server never saw the window exceeded
    # Every request the server got was admitted by the window first, and there were enough
    # of them for the window to fill several times over.
    assert len(crm_5_per_s.seen) == limiter.admitted["crm"] > 3 * 5


def test_a_crm_window_too_full_to_wait_defers_the_job_and_pauses_the_identity(
    fresh_crm_https: RunningServer,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    tmp_path: Path,
    stores: Stores,
) -> None:
    env = user_env(fresh_crm_https, dovecot, smtp_server, tmp_path)
    ctx, box = env.context(), env.mailbox_id(SAM.email)
    limiter = Counting(stores.make_limiter(ServiceLimits(crm_requests=3, crm_window_s=600)))
    rt, processor = stores.runtime(ctx, limiter, max_request_wait_s=0.5)
    raised = run_guarded(rt, box)
    assert isinstance(raised, actors.Deferred), raised  # not a failure: a wait
    assert processor.runs == []  # the pass ended at the fourth request
    assert limiter.admitted["crm"] == 3 and limiter.refused["crm"] == 1
    assert stores.other().paused_for(IDENTITY) > 0  # every worker holds off


@pytest.fixture
def crm_3_per_minute(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[LimitedCrm]:
    yield from limited_crm(tmp_path, crm_tls, Limits(requests=3, window=60.0))


def test_a_429_inside_a_job_pauses_the_identity_for_every_worker(
    crm_3_per_minute: LimitedCrm,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    tmp_path: Path,
    stores: Stores,
) -> None:
    env = user_env(crm_3_per_minute.server, dovecot, smtp_server, tmp_path)
    ctx, box = env.context(), env.mailbox_id(SAM.email)
    limiter = Counting(stores.make_limiter(ServiceLimits()))  # the router's own: far away
    rt, _ = stores.runtime(ctx, limiter)
    raised = run_guarded(rt, box)
    # Deferred when a step met the 429; a 429 on the last status write ends the pass as done.
    assert raised is None or isinstance(raised, actors.Deferred), raised
    assert crm_3_per_minute.stats.throttled == 1  # one 429, and no request inside its wait
    assert crm_3_per_minute.stats.violations == 0
    assert limiter.pauses and all(who == IDENTITY and s >= 1 for who, s in limiter.pauses)
    assert stores.other().paused_for(IDENTITY) > 0  # another worker's view


# -- Graph --------------------------------------------------------------------------------------


@pytest.fixture
def graph_env(
    fresh_crm_https: RunningServer,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    tmp_path: Path,
    graph_authority: GraphTokens,
    graph_server: FakeGraphServer,
    graph_tls: TlsFiles,
) -> RouterEnv:
    """Sam's mailbox on Exchange Online (the fake Graph), as in ``test_processing_graph``."""
    env = RouterEnv(fresh_crm_https, dovecot, smtp_server, tmp_path)
    env.register_service()
    client_id = register_graph_app(graph_authority)
    env.extra = [
        "[graph]",
        f'client_id = "{client_id}"',
        f'token_url = "{graph_authority.authority}/oauth2/v2.0/token"',
        f'base_url = "{graph_server.url}"',
        f'ca_file = "{graph_tls.ca}"',
    ]
    graph_server.add_mailbox(SAM.email)
    exchange_online_profile(env, SAM.email)
    return env


def _direct(graph_server: FakeGraphServer) -> list[str]:
    """The HTTP requests the fake got (a ``$batch``'s members are logged apart)."""
    return [r for r in graph_server.requests if not r.endswith("(batch)")]


def test_graph_sends_are_counted_in_their_own_window(
    graph_env: RouterEnv, graph_server: FakeGraphServer, stores: Stores
) -> None:
    ctx, box = graph_env.context(), graph_env.mailbox_id(SAM.email)
    limits = ServiceLimits(graph_sends=1, graph_send_window_s=1.0)
    limiter = Counting(stores.make_limiter(limits))
    rt, processor = stores.runtime(ctx, limiter)
    assert run_guarded(rt, box) is None  # the baseline
    activities = [send_from_crm(graph_env, f"Quote {n} through Graph") for n in (1, 2)]
    assert run_guarded(rt, box) is None

    assert processor.runs[-1].errors == () and processor.runs[-1].sent == 2
    assert all(email(graph_env, a)["statuscode"] == 3 for a in activities)  # Sent
    sends = [r for r in _direct(graph_server) if r.startswith("POST ") and "/sendMail" in r]
    assert len(graph_server.sent) == len(sends) == limiter.admitted["send"] == 2
    # Every Graph request of the mailbox passed its request window, sends included.
    assert limiter.admitted["graph"] == len(_direct(graph_server)) > 2
    assert graph_server.unknown_requests == []


def test_a_send_window_too_full_to_wait_defers_the_job_without_pausing_the_crm(
    graph_env: RouterEnv, graph_server: FakeGraphServer, stores: Stores
) -> None:
    ctx, box = graph_env.context(), graph_env.mailbox_id(SAM.email)
    limiter = Counting(stores.make_limiter(ServiceLimits(graph_sends=1, graph_send_window_s=600)))
    rt, _ = stores.runtime(ctx, limiter, max_request_wait_s=0.5)
    assert run_guarded(rt, box) is None  # the baseline
    activities = [send_from_crm(graph_env, f"Quote {n} through Graph") for n in (1, 2)]
    raised = run_guarded(rt, box)
    assert isinstance(raised, actors.Deferred), raised
    assert len(graph_server.sent) == 1 and limiter.refused["send"] == 1
    assert stores.other().paused_for(IDENTITY) == 0  # one mailbox's window: the CRM goes on

    # The deferred job, run again once the window has room, sends the other mail, once.
    again, _ = stores.runtime(ctx, Counting(stores.make_limiter(ServiceLimits())))
    assert run_guarded(again, box) is None
    assert len(graph_server.sent) == 2
    assert all(email(graph_env, a)["statuscode"] == 3 for a in activities)
