"""The handlers of the mailbox and queue commands (sync, track, untrack, queue, list,
diagnose); each returns an exit code (``core.cli.context``), problems mapped to one here."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.cli.context import (
    CREDENTIALS,
    FAILED,
    NOT_SET_UP,
    OFFLINE,
    OK,
    CliError,
    load_profile,
    normalise_message_id,
    open_workspace,
)
from core.cli.sign_in import sign_in_again
from core.domain.model import RecordRef, TrackState
from core.domain.problems import SIGN_IN_PROBLEMS, Problem, SyncProblem
from core.sync.report import QueuedOperation, SyncReport
from core.workspace.facade import Workspace


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


# -- sync ---------------------------------------------------------------------------------


def _problems_code(problems: tuple[SyncProblem, ...]) -> int:
    """The exit code for problems: a sign-in to fix, else a failure."""
    return CREDENTIALS if any(p.problem in SIGN_IN_PROBLEMS for p in problems) else FAILED


#: The CRM refused the sign-in, or it expired: ``trackbox account sign-in`` is the remedy.
CRM_SIGN_IN_PROBLEMS = (Problem.CRM_SIGN_IN, Problem.CRM_SIGN_IN_EXPIRED)


def _sign_in_hint(ws: Workspace, problems: tuple[SyncProblem, ...]) -> None:
    """After a refused Microsoft / AD FS sign-in: what to do about it."""
    profile = ws.profile
    if profile is None or not profile.config.uses_oauth:
        return
    if any(p.problem in CRM_SIGN_IN_PROBLEMS for p in problems):
        print(f"trackbox: {sign_in_again(profile.name)}", file=sys.stderr)


def _report_code(report: SyncReport) -> int:
    if report.ok:
        return OK
    if any(p.problem in SIGN_IN_PROBLEMS for p in report.errors):
        return CREDENTIALS
    if not report.online or not report.mail_online:
        return OFFLINE
    return FAILED


def sync(args: argparse.Namespace) -> int:
    opened = open_workspace(args.profile)
    ws = opened.workspace
    try:
        if not args.once:
            return _sync_forever(ws)
        report = ws.sync_cycle()
        if args.json:
            _print_json({**report.to_dict(), "queue": len(ws.queue())})
        else:
            _print_report(report, len(ws.queue()))
        _sign_in_hint(ws, tuple(report.errors))
        return _report_code(report)
    finally:
        ws.close()


def _print_report(report: SyncReport, queued: int) -> None:
    state = "online" if report.online else "offline (CRM not reachable)"
    if not report.mail_online:
        state += ", mail server not reachable"
    print(
        f"Sync {'done' if report.ok else 'finished with problems'}: {state}; "
        f"{queued} operation(s) queued."
    )
    for key, value in sorted(report.counts.items()):
        print(f"  {key}: {value}")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)


def _sync_forever(ws: Workspace) -> int:
    scheduler = ws.start_interval_sync()
    print(f"Synchronising every {ws.local_options().sync_interval_minutes} min; Ctrl+C to stop.")
    try:
        while True:
            done = scheduler.cycles
            scheduler.wait_for_cycles(done + 1)
            if scheduler.last is not None:
                _print_report(scheduler.last, len(ws.queue()))
    except KeyboardInterrupt:
        scheduler.stop()
        return OK


# -- track / untrack ----------------------------------------------------------------------


def _rows(ws: Workspace, message_id: str) -> list[int]:
    rows = ws.store().messages_by_message_id(normalise_message_id(message_id))
    if not rows:
        raise CliError(
            f"No message {normalise_message_id(message_id)} in the local store; "
            "run 'trackbox sync --once' first."
        )
    return [r.id for r in rows]


def _parse_regarding(value: str | None) -> RecordRef | None:
    if not value:
        return None
    entity, sep, record_id = value.partition(":")
    if not sep or not entity or not record_id:
        raise CliError(f"--regarding expects ENTITY:ID (e.g. account:<guid>), not {value!r}.")
    return RecordRef(entity.strip().lower(), record_id.strip().strip("{}").lower())


def _outcome(ws: Workspace, message_id: str, errors: tuple[SyncProblem, ...], verb: str) -> int:
    rows = ws.store().messages_by_message_id(normalise_message_id(message_id))
    state = rows[0].track_state if rows else TrackState.NOT_TRACKED
    if errors:
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        _sign_in_hint(ws, errors)
        return _problems_code(errors)
    if state is TrackState.PENDING:
        print(f"{verb} queued: the CRM is not reachable now; it runs on the next sync.")
        return OFFLINE
    reason = rows[0].reason.text if rows and rows[0].reason else ""
    print(f"{normalise_message_id(message_id)}: {state.value}" + (f" — {reason}" if reason else ""))
    return OK


def track(args: argparse.Namespace) -> int:
    regarding = _parse_regarding(args.regarding)
    ws = open_workspace(args.profile).workspace
    try:
        changes = ws.track(_rows(ws, args.message_id), regarding)
        return _outcome(ws, args.message_id, changes.errors, "Track")
    finally:
        ws.close()


def untrack(args: argparse.Namespace) -> int:
    ws = open_workspace(args.profile).workspace
    try:
        changes = ws.untrack(_rows(ws, args.message_id))
        return _outcome(ws, args.message_id, changes.errors, "Untrack")
    finally:
        ws.close()


# -- queue --------------------------------------------------------------------------------


def queue(args: argparse.Namespace) -> int:
    ws = open_workspace(args.profile, need_mail=args.action != "list").workspace
    try:
        if args.action == "list":
            ops = ws.queue()
            if args.json:
                _print_json([_op_dict(op) for op in ops])
                return OK
            if not ops:
                print("The queue is empty.")
            for op in ops:
                error = f"  {op.last_error}" if op.last_error else ""
                print(
                    f"{op.id:>6}  {op.state:<7} {op.kind:<20} attempts={op.attempts}  "
                    f"{op.message_id or '-'}  {op.summary}{error}"
                )
            return OK
        if args.id is None:
            raise CliError(
                f"'trackbox queue {args.action}' needs an operation id (see 'trackbox queue list')."
            )
        try:
            changes = ws.retry(args.id) if args.action == "retry" else ws.discard(args.id)
        except LookupError as exc:
            raise CliError(str(exc).capitalize() + " (see 'trackbox queue list').") from None
        for problem in changes.errors:
            print(f"error: {problem}", file=sys.stderr)
        _sign_in_hint(ws, changes.errors)
        print(f"Operation {args.id} {'retried' if args.action == 'retry' else 'discarded'}.")
        return _problems_code(changes.errors) if changes.errors else OK
    finally:
        ws.close()


def _op_dict(op: QueuedOperation) -> dict[str, Any]:
    return {
        "id": op.id,
        "kind": op.kind,
        "message_id": op.message_id,
        "subject": op.subject,
        "summary": op.summary,
        "state": op.state,
        "attempts": op.attempts,
        "last_error": op.last_error,
        "created": op.created,
    }


# -- list ---------------------------------------------------------------------------------


def list_messages(args: argparse.Namespace) -> int:
    _, profile = load_profile(args.profile)
    from core.store import Store

    with Store.open(profile.store_path) as store:
        folder = args.folder or "Inbox"
        known = {f.path for f in store.folders()}
        if folder not in known:
            raise CliError(
                f"No folder {folder!r} in the local store. Known: "
                f"{', '.join(sorted(known)) or 'none (run trackbox sync --once)'}."
            )
        rows = store.message_rows(folder, 0, args.limit)
    items: list[dict[str, Any]] = [
        {
            "message_id": r.header.message_id,
            "date": r.header.date,
            "subject": r.header.subject,
            "from": r.header.sender.email if r.header.sender else None,
            "state": r.track_state.value,
            "activity_id": r.activity_id,
            "regarding": (
                {"entity": r.regarding.entity, "id": r.regarding.id, "name": r.regarding.name}
                if r.regarding
                else None
            ),
            "reason": r.reason.text if r.reason else None,
        }
        for r in rows
    ]
    if args.json:
        _print_json(items)
        return OK
    for item in items:
        reg = item["regarding"]
        regarding = f"  re: {reg['name'] or reg['entity'] + ':' + reg['id']}" if reg else ""
        print(
            f"{item['state']:<16} {str(item['date'] or '')[:16]:<16} "
            f"{(item['from'] or '')[:30]:<30} {item['subject']}{regarding}"
            + (f"  ({item['reason']})" if item["reason"] else "")
        )
    return OK


def diagnose(args: argparse.Namespace) -> int:
    from core.workspace.diagnostics import run_diagnostics

    report = run_diagnostics(args.profile)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.text())
    if not report.set_up:
        return NOT_SET_UP
    return OK if report.healthy else FAILED


__all__ = ["diagnose", "list_messages", "queue", "sync", "track", "untrack"]
