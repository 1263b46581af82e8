"""``trackbox diagnose``: what a user attaches to a bug report — versions, the profile (never a
secret), how the CRM sign-in stands (kind, account, authority, when the access token expires —
never a token), reachability and sign-in checks against the mail server and the CRM, the last
sync's result and the state of the queue. Every check catches its own failure: a diagnosis
never crashes on the problem it is diagnosing."""

from __future__ import annotations

import platform
import socket
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from core.cli.context import NOT_SET_UP, CliError, load_profile, workspace_of
from core.cli.sign_in import MailSignInRequired, mail_scopes, microsoft_sign_in, sign_in_again
from core.config.credentials import CredentialsError, describe_backend
from core.config.profiles import Profile, ProfileError
from core.crm import CrmAuthError, CrmError, CrmUnavailable
from core.crm.errors import SignInRequired
from core.mail import MailAuthError, MailError, MailUnavailable
from core.outbox.queue import Outbox
from core.store import Store
from core.workspace.syncing import LAST_THROTTLE


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DiagnosticReport:
    versions: dict[str, str] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    sign_in: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    last_sync: dict[str, Any] | None = None
    throttling: dict[str, Any] | None = None
    queue: dict[str, Any] = field(default_factory=dict)
    #: No account at all: what to do first (empty when a profile exists).
    next_step: str = ""

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def set_up(self) -> bool:
        """False when there is no profile to diagnose (``trackbox diagnose`` exits 5)."""
        return not self.next_step

    def to_dict(self) -> dict[str, Any]:
        return {
            "versions": self.versions,
            "profile": self.profile,
            "sign_in": self.sign_in,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "last_sync": self.last_sync,
            "throttling": self.throttling,
            "queue": self.queue,
            "healthy": self.healthy,
            "set_up": self.set_up,
            "next_step": self.next_step,
        }

    def text(self) -> str:
        if self.next_step:  # nothing else to diagnose: say what to do, then the versions
            return "\n".join([self.next_step, "", "Versions:"] + _pairs(self.versions))
        lines = ["Trackbox diagnostics", "", "Versions:"]
        lines += [f"  {k}: {v}" for k, v in self.versions.items()]
        lines += ["", "Profile:"]
        lines += [f"  {k}: {v}" for k, v in self.profile.items()]
        if self.sign_in:
            lines += ["", "CRM sign-in:"]
            lines += [f"  {k}: {v}" for k, v in self.sign_in.items()]
        lines += ["", "Checks:"]
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        lines += ["", "Last sync:"]
        if self.last_sync:
            lines += [f"  {k}: {v}" for k, v in self.last_sync.items()]
        else:
            lines.append("  never")
        lines += ["", "CRM throttling:", f"  {_throttling_text(self.throttling)}"]
        lines += ["", "Queue:"]
        lines += [f"  {k}: {v}" for k, v in self.queue.items()]
        return "\n".join(lines)


def _pairs(values: dict[str, Any]) -> list[str]:
    return [f"  {k}: {v}" for k, v in values.items()]


def _throttling_text(last: dict[str, Any] | None) -> str:
    """The CRM's last request to slow down, in words."""
    if not last:
        return "never asked to slow down"
    wait = last.get("retry_after")
    waited = f", asked to wait {wait:g} s" if isinstance(wait, int | float) else ""
    count = last.get("count")
    return f"last asked to slow down at {last.get('at')}{waited} ({count} times that session)"


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    return {
        "trackbox": _version("trackbox"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "httpx": _version("httpx"),
        "imapclient": _version("imapclient"),
        "exchangelib": _version("exchangelib"),
        "msal": _version("msal"),
        "pyspnego": _version("pyspnego"),
        "keyring": describe_backend(),
    }


def strip_userinfo(url: str) -> str:
    """A URL without any ``user:password@`` part."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def _port_open(url: str, default: int) -> Check:
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or default
    try:
        with socket.create_connection((host, port), timeout=5):
            return Check("smtp reachable", True, f"{host}:{port} accepts connections")
    except OSError as exc:
        return Check("smtp reachable", False, f"{host}:{port}: {exc.strerror or exc}")


def run_diagnostics(profile_name: str | None) -> DiagnosticReport:
    report = DiagnosticReport(versions=versions())
    try:
        profiles, profile = load_profile(profile_name)
    except CliError as exc:
        report.checks.append(Check("profile", False, exc.message))
        if exc.code == NOT_SET_UP:
            report.next_step = exc.message
        return report
    cfg = profile.config.to_dict()
    for key in ("mail_url", "smtp_url", "crm_url"):
        if cfg.get(key):
            cfg[key] = strip_userinfo(cfg[key])
    report.profile = {
        "name": profile.name,
        "config": str(profile.config_path),
        "data": str(profile.data_dir),
        "log": str(profile.log_path),
        **cfg,
    }
    report.checks.append(Check("profile", True, "loaded and valid"))
    report.sign_in = sign_in_state(profile)
    try:
        opened = workspace_of(profiles, profile)
    except CliError as exc:
        report.checks.append(Check("credentials", False, exc.message))
        _local_state(report, profile.store_path)
        return report
    ws = opened.workspace
    try:
        report.checks.append(Check("credentials", True, "found (values not shown)"))
        try:
            me = ws.crm.who_am_i()
            report.checks.append(Check("crm sign-in", True, f"WhoAmI user {me.user_id}"))
        except SignInRequired as exc:
            report.checks.append(
                Check("crm sign-in", False, f"{exc}: {sign_in_again(profile.name)}")
            )
        except CrmAuthError as exc:
            report.checks.append(Check("crm sign-in", False, f"credentials refused ({exc})"))
        except CrmUnavailable as exc:
            report.checks.append(Check("crm reachable", False, str(exc)))
        except CrmError as exc:
            report.checks.append(Check("crm", False, str(exc)))
        try:
            with ws.open_mailbox() as backend:
                count = len(backend.folders())
            report.checks.append(Check("mail sign-in", True, f"{count} folders"))
        except MailSignInRequired as exc:
            report.checks.append(
                Check("mail sign-in", False, f"{exc}: {sign_in_again(profile.name)}")
            )
        except MailAuthError as exc:
            report.checks.append(Check("mail sign-in", False, f"credentials refused ({exc})"))
        except MailUnavailable as exc:
            report.checks.append(Check("mail reachable", False, str(exc)))
        except MailError as exc:
            report.checks.append(Check("mail", False, str(exc)))
        smtp = profile.config.smtp_url
        if smtp:
            report.checks.append(_port_open(smtp, 465 if smtp.startswith("smtps") else 587))
    finally:
        ws.close()
    _local_state(report, profile.store_path)
    return report


def sign_in_state(profile: Profile, now: datetime | None = None) -> dict[str, str]:
    """How the profile signs in to the CRM, from the profile and the token cache alone (no
    network): the kind, the user or signed-in account, the authority and when the access
    token expires (and the Graph token's, for a Microsoft 365 mailbox). Never a token or a
    password."""
    cfg = profile.config
    state = {"kind": cfg.crm_auth}
    if not cfg.uses_oauth:
        state["user"] = cfg.crm_user
        return state
    state["authority"] = cfg.crm_authority
    state["client id"] = cfg.crm_client_id
    try:
        sign_in = microsoft_sign_in(cfg, profile.name)
        account = sign_in.account()
        expires = sign_in.expires_at() if account is not None else None
    except (CredentialsError, ProfileError, CrmError) as exc:
        state["account"] = f"unknown ({exc})"
        return state
    state["account"] = account.username if account is not None else "nobody signed in"
    now = now or datetime.now(UTC)
    state["access token"] = _expiry(expires, now)
    scopes = mail_scopes(cfg)
    if scopes:
        state["mail"] = (
            "Microsoft Graph, the same sign-in ("
            + ", ".join(s.rsplit("/", 1)[1] for s in scopes)
            + ")"
        )
        try:
            graph = sign_in.expires_at(scopes) if account is not None else None
        except CrmError as exc:
            state["graph token"] = f"unknown ({exc})"
        else:
            state["graph token"] = _expiry(graph, now)
    return state


def _expiry(expires: datetime | None, now: datetime) -> str:
    if expires is None:
        return "none cached"
    when = expires.astimezone().isoformat(timespec="seconds")
    return f"expires {when}" if expires > now else f"expired {when} (renewed on next use)"


def _local_state(report: DiagnosticReport, store_path: Any) -> None:
    if not store_path.exists():
        report.queue = {"store": "not created yet (no sync has run)"}
        return
    with Store.open(store_path) as store:
        report.last_sync = store.snapshots.get("last_sync")
        report.throttling = store.snapshots.get(LAST_THROTTLE)
        outbox = Outbox(store)
        report.queue = dict(outbox.counts())
        parked = [op for op in outbox.pending() if op.state.value == "parked"]
        for op in parked[:20]:
            report.queue[f"parked #{op.id}"] = f"{op.kind.value} {op.message_id}: {op.last_error}"
        if parked:
            report.checks.append(
                Check(
                    "queue", False, f"{len(parked)} operation(s) parked: see 'trackbox queue list'"
                )
            )


__all__ = [
    "Check",
    "DiagnosticReport",
    "run_diagnostics",
    "sign_in_state",
    "strip_userinfo",
    "versions",
]
