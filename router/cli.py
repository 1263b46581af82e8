"""``trackbox-router``: run the organisation's router, start more workers, show its status.

    trackbox-router run [--config F] [--broker redis://…] [--workers N] [--once]
    trackbox-router worker --broker redis://… [--config F] [--workers N]
    trackbox-router status [--config F] [--broker redis://…]

Without ``--broker`` everything runs in this one process (embedded: an in-process broker and
worker threads, the run records in a SQLite file under the state directory). With ``--broker``
the jobs, locks, limits and run records live in that Redis, ``run`` is the scheduler (leader
elected: start it on two machines for failover) plus workers, and ``worker`` adds workers on
any machine. ``--workers 0`` runs the scheduler alone.

What a pass over a mailbox does comes from ``--processor module:factory`` (default: the
router's mailbox processing, ``router.processing`` on ``router.context.load_context``); the
factory is called with the ``--config`` path and answers a
:class:`router.actors.MailboxProcessor`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
import platformdirs

from core.domain.mailbox_delivery import MailboxDelivery
from router import actors
from router.broker import (
    BrokerSettings,
    QueueDepth,
    make_broker,
    queue_depth,
    redis_client,
    redis_queue_depth,
    start_workers,
)
from router.limits import LocalLimiter, RedisLimiter
from router.locks import LocalLocks, RedisLocks
from router.scheduler import LEADER_LOCK, LeaderElection, Scheduler
from router.state import MailboxStatus, RedisState, RouterState, RunOutcome, SqliteState

log = logging.getLogger("trackbox-router")

DEFAULT_PROCESSOR = "router.cli:context_processor"
STATE_FILE = "router-state.sqlite3"
BROKER_ENV = "TRACKBOX_ROUTER_BROKER"


@dataclass
class BoundProcessor:
    """The mailbox processing's two functions with their context bound."""

    context: Any
    list_fn: Callable[[Any], Sequence[MailboxDelivery]]
    run_fn: Callable[[Any, str], RunOutcome]

    def list_mailboxes(self) -> Sequence[MailboxDelivery]:
        return self.list_fn(self.context)

    def run_mailbox(self, mailbox_id: str) -> RunOutcome:
        return self.run_fn(self.context, mailbox_id)


def context_processor(config: Path | None) -> actors.MailboxProcessor:
    """The router's own processing: ``router.processing`` on ``load_context(config)``."""
    if config is None:
        raise SystemExit("trackbox-router: --config is needed (the router's configuration)")
    context = importlib.import_module("router.context")
    processing = importlib.import_module("router.processing")
    ctx = context.load_context(config)
    return BoundProcessor(ctx, processing.list_mailboxes, processing.run_mailbox)


def load_processor(spec: str, config: Path | None) -> actors.MailboxProcessor:
    module_name, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attr or "make_processor")
    processor: actors.MailboxProcessor = factory(config)
    return processor


def state_dir(arg: Path | None, processor: object = None) -> Path:
    """``--state-dir``; else the processing context's state directory (the config file's
    ``[router] state_dir``); else ``$TRACKBOX_HOME/router`` or the user's state directory."""
    if arg is not None:
        return arg
    configured = getattr(getattr(processor, "context", None), "state_dir", None)
    if isinstance(configured, Path):
        return configured
    home = os.environ.get("TRACKBOX_HOME")
    base = Path(home) if home else Path(platformdirs.user_state_dir("trackbox"))
    return base / "router"


@dataclass
class Router:
    """Everything one process of the router holds."""

    broker: dramatiq.Broker
    actor: dramatiq.Actor[Any, Any]
    runtime: actors.RouterRuntime | None
    state: RouterState
    locks: LocalLocks | RedisLocks


def build(args: argparse.Namespace, *, with_processor: bool = True) -> Router:
    """The broker, the actor, and (for ``run``/``worker``) the runtime it runs with."""
    processor = load_processor(args.processor, args.config) if with_processor else None
    settings = BrokerSettings(args.broker, heartbeat_timeout_s=args.heartbeat_timeout)
    broker = make_broker(settings)
    client = redis_client(broker)
    state: RouterState
    if client is None:
        locks: LocalLocks | RedisLocks = LocalLocks()
        state = SqliteState(state_dir(args.state_dir, processor) / STATE_FILE)
        limiter: LocalLimiter | RedisLimiter = LocalLimiter()
    else:
        locks, state, limiter = RedisLocks(client), RedisState(client), RedisLimiter(client)
    actor = actors.declare(broker)
    runtime = None
    if processor is not None:
        job = actors.JobSettings(
            lock_ttl_s=args.lock_ttl,
            min_backoff_s=args.min_backoff,
            busy_delay_s=args.busy_delay,
            pending_ttl_s=max(900.0, 3 * getattr(args, "interval", 300.0)),
        )
        runtime = actors.RouterRuntime(processor, locks, state, limiter, job)
        actors.install(runtime)
    return Router(broker, actor, runtime, state, locks)


def _planner(actor: dramatiq.Actor[Any, Any]) -> Callable[[str], tuple[str, Callable[[], Any]]]:
    def plan(mailbox_id: str) -> tuple[str, Callable[[], Any]]:
        message = actor.message(mailbox_id)
        return message.message_id, lambda: actor.broker.enqueue(message)

    return plan


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_run(args: argparse.Namespace) -> int:
    if not args.broker and args.workers < 1:
        raise SystemExit("trackbox-router run: embedded (no --broker) needs --workers 1 or more")
    router = build(args)
    assert router.runtime is not None
    embedded = redis_client(router.broker) is None
    if embedded:  # the jobs a previous process held in memory died with it
        router.state.forget_pending()
    election = LeaderElection(router.locks, ttl_s=args.leader_ttl)
    scheduler = Scheduler(
        list_mailboxes=router.runtime.processor.list_mailboxes,
        plan=_planner(router.actor),
        state=router.state,
        election=election,
        interval_s=args.interval,
        refresh_s=args.refresh,
        pending_ttl_s=router.runtime.settings.pending_ttl_s,
    )
    worker = start_workers(router.broker, args.workers) if args.workers > 0 else None
    stop = _stop_on_signals()

    def note_queue() -> None:  # embedded: for `status` in another process
        if embedded:
            router.state.set_meta("queue_depth", str(queue_depth(router.broker)))

    try:
        if args.once:
            return _run_once(router, scheduler, stop, note_queue)
        scheduler.run(stop, args.tick, after_tick=note_queue)
        return 0
    finally:
        election.resign()
        if worker is not None:
            worker.stop()
        note_queue()
        if embedded:
            router.state.set_meta("leader", "")
        router.broker.close()


def _run_once(
    router: Router, scheduler: Scheduler, stop: threading.Event, note_queue: Callable[[], None]
) -> int:
    """Every mailbox once, now; wait until each job has recorded its run (or gave up)."""
    while not scheduler.election.is_leader():
        if stop.wait(1.0):
            return 1
    scheduler.tick(force=True)
    ids = scheduler.mailbox_ids()
    while not stop.is_set() and any(router.state.is_pending(i) for i in ids):
        scheduler.election.is_leader()  # keep the lease
        note_queue()
        stop.wait(0.2)
    failed = [s for s in router.state.snapshot() if s.mailbox_id in ids and s.gave_up]
    return 1 if failed else 0


def cmd_worker(args: argparse.Namespace) -> int:
    if not args.broker:
        raise SystemExit("trackbox-router worker: --broker redis://… is needed")
    router = build(args)
    worker = start_workers(router.broker, args.workers)
    log.info("worker started: %d threads", args.workers)
    stop = _stop_on_signals()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        worker.stop()
        router.broker.close()
    return 0


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _errors(status: MailboxStatus) -> str:
    parts = []
    if status.last_error:
        prefix = "GAVE UP: " if status.gave_up else f"retrying ({status.failures}): "
        parts.append(prefix + status.last_error)
    if status.run_errors:
        parts.append(f"{len(status.run_errors)} in last run: {status.run_errors[0]}")
    return "; ".join(parts) or "-"


def format_status(
    rows: list[MailboxStatus],
    depth: str,
    leader: str | None,
    alerts: dict[str, int] | None = None,
) -> str:
    """The status table; ``alerts``: the CRM's error alerts per mailbox id (None: the CRM was
    not asked, shown as ``-``)."""
    header = ("MAILBOX", "ADDRESS", "LAST RUN", "RESULT", "NEXT RUN", "STATE", "ALERTS", "ERRORS")
    table = [header] + [
        (
            s.mailbox_id,
            s.address or s.name or "-",
            _when(s.last_finished),
            s.last_counts or "-",
            _when(s.next_run),
            "pending" if s.pending else "idle",
            "-" if alerts is None else str(alerts.get(s.mailbox_id.lower(), 0)),
            _errors(s),
        )
        for s in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in table
    ]
    lines.append(f"queue: {depth}")
    lines.append(f"scheduler leader: {leader or '-'}")
    return "\n".join(line.rstrip() for line in lines)


def crm_alerts(processor: object) -> dict[str, int] | None:
    """The CRM's alert counts per mailbox, when the processing has a CRM (the router's own
    does; None otherwise, or when the CRM cannot be asked: status still shows the rest)."""
    crm = getattr(getattr(processor, "context", None), "crm", None)
    if crm is None:
        return None
    counts = importlib.import_module("router.mailbox_status").alert_counts
    try:
        found: dict[str, int] = counts(crm)
    except Exception as exc:  # the CRM away must not hide the router's own records
        print(f"trackbox-router: the CRM's alerts could not be read: {exc}", file=sys.stderr)
        return None
    return found


def cmd_status(args: argparse.Namespace) -> int:
    # The config names the CRM and the state directory (signing in is lazy).
    configured = load_processor(args.processor, args.config) if args.config else None
    if args.broker:
        router = build(args, with_processor=False)
        client = redis_client(router.broker)
        depth: QueueDepth | str = redis_queue_depth(client)
        leader = router.locks.holder(LEADER_LOCK)
    else:
        path = state_dir(args.state_dir, configured) / STATE_FILE
        if not path.exists():
            print(f"trackbox-router: no runs recorded yet ({path})", file=sys.stderr)
            return 1
        state = SqliteState(path)
        router = None
        depth = state.meta("queue_depth") or "unknown (no router running)"
        leader = state.meta("leader")
    rows = (router.state if router else state).snapshot()
    print(format_status(rows, str(depth), leader, crm_alerts(configured)))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="the router's configuration file")
    p.add_argument(
        "--broker",
        default=os.environ.get(BROKER_ENV) or None,
        help=f"redis://host:port/db (or ${BROKER_ENV}: keeps a password off the command line)",
    )
    p.add_argument("--state-dir", type=Path, help="embedded mode: where run records live")
    p.add_argument("--processor", default=DEFAULT_PROCESSOR, help=argparse.SUPPRESS)
    p.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=60.0,
        help="seconds before a silent worker's jobs are delivered again",
    )
    p.add_argument("--lock-ttl", type=float, default=60.0, help=argparse.SUPPRESS)
    p.add_argument("--min-backoff", type=float, default=15.0, help=argparse.SUPPRESS)
    p.add_argument("--busy-delay", type=float, default=5.0, help=argparse.SUPPRESS)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="trackbox-router", description=__doc__.split("\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="scheduler and workers (embedded without --broker)")
    _common(run)
    run.add_argument("--workers", type=int, default=4, help="worker threads in this process")
    run.add_argument("--once", action="store_true", help="every mailbox once, then exit")
    run.add_argument("--interval", type=float, default=300.0, help="seconds between passes")
    run.add_argument("--refresh", type=float, default=300.0, help=argparse.SUPPRESS)
    run.add_argument("--tick", type=float, default=1.0, help=argparse.SUPPRESS)
    run.add_argument("--leader-ttl", type=float, default=15.0, help=argparse.SUPPRESS)
    worker = sub.add_parser("worker", help="only workers, on a shared Redis")
    _common(worker)
    worker.add_argument("--workers", type=int, default=4, help="worker threads")
    status = sub.add_parser("status", help="mailboxes, last and next run, errors, queue")
    _common(status)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    commands = {"run": cmd_run, "worker": cmd_worker, "status": cmd_status}
    started = time.monotonic()
    code = commands[args.command](args)
    log.debug("%s done in %.1f s", args.command, time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
