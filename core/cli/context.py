"""Opening a profile's workspace for a headless command, the exit codes, and the guard that
turns a user error into one (:func:`main_guard`).

Exit codes: 0 done; 1 the CRM or mail server refused an operation (parked in the queue);
2 a usage error (unknown profile or message, bad argument); 3 offline (work queued, it runs on
the next sync); 4 credentials (no keyring, no secret stored, sign-in refused, signed out);
5 nothing is set up yet (no profile at all: the message says how to add an account);
141 the reader of the output went away (``trackbox list --json | head``): 128 + SIGPIPE, what
the shell reports for a Unix tool stopped by a closed pipe, so ``set -o pipefail`` scripts
see it as they would for ``cat``; nothing is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from core.cli.sign_in import (
    crm_auth_for,
    crm_client_for,
    microsoft_sign_in,
    open_mail,
    sign_in_again,
    sign_in_of,
)
from core.config import logs
from core.config.credentials import ENV_VARS, CredentialsError, SecretKind, get_secret
from core.config.profiles import (
    Profile,
    ProfileError,
    ProfileNotFound,
    Profiles,
    account_name,
    graph_options,
    insecure_urls,
    needs_mail_password,
)
from core.crm import CrmAuth, CrmAuthError
from core.crm.errors import SignInRequired
from core.domain.model import Address
from core.mail import MailBackend
from core.workspace.facade import Workspace

OK, FAILED, USAGE, OFFLINE, CREDENTIALS, NOT_SET_UP = 0, 1, 2, 3, 4, 5
#: What to do when there is no profile at all (a fresh install, or a data directory left
#: without its profile): the first thing a new user sees from any command.
NO_ACCOUNT = (
    "No account is set up. Run `trackbox account add --microsoft365 --email you@example.com` "
    "(Microsoft 365), or `trackbox account add --help` for IMAP, Exchange and other servers, "
    "or start the app (`trackbox`) to run the setup wizard."
)
PIPE_CLOSED = 141  # 128 + SIGPIPE


class CliError(Exception):
    """A user-facing failure: printed without a traceback, exits with ``code``."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def main_guard(
    func: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Run a handler; user errors print one line and exit with their code, no traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            code = int(func(args))
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            return code
        except BrokenPipeError:
            return _pipe_closed()
        except CliError as exc:
            print(f"trackbox: {exc.message}", file=sys.stderr)
            return exc.code
        except SignInRequired as exc:
            # A renewal refused outside the sync's own error handling: still no traceback.
            profile = getattr(args, "profile", None) or "default"
            print(f"trackbox: {exc}: {sign_in_again(profile)}", file=sys.stderr)
            return CREDENTIALS
        except KeyboardInterrupt:
            return USAGE

    run.__name__ = getattr(func, "__name__", "command")
    return run


def _pipe_closed() -> int:
    """The reader stopped reading: exit quietly, as Unix tools do. Standard output is pointed
    at the null device so that the interpreter's final flush cannot fail again (the
    ``signal`` documentation's recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (embedded, replaced in tests)
        pass
    return PIPE_CLOSED


def load_profile(name: str | None) -> tuple[Profiles, Profile]:
    profiles = Profiles()
    try:
        profile = profiles.load(name)
    except ProfileNotFound as exc:
        if not exc.known:  # no profile at all: say how to make one, not "unknown profile"
            raise CliError(NO_ACCOUNT, NOT_SET_UP) from None
        raise CliError(str(exc)) from None
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    logs.setup(profile.log_path)
    return profiles, profile


def _secret(profile: Profile, kind: SecretKind, user: str) -> str:
    try:
        secret = get_secret(profile.name, kind, user)
    except CredentialsError as exc:
        raise CliError(str(exc), CREDENTIALS) from None
    if not secret:
        raise CliError(
            f"No {kind.value} password stored for {user!r} in profile "
            f"{profile.name!r}: run 'trackbox account add' again or set "
            f"{ENV_VARS[kind.value]}.",
            CREDENTIALS,
        )
    logs.register_secret(secret)
    return secret


def owner_of(profile: Profile) -> Address:
    cfg = profile.config
    email = cfg.crm_user if "@" in cfg.crm_user else cfg.mail_user
    return Address(email or cfg.crm_user)


def mailbox_name(profile: Profile) -> str:
    """What the folder tree's root is called: the shared mailbox of ``graph:?mailbox=…``,
    else the owner's address."""
    cfg = profile.config
    shared = graph_options(cfg.mail_url).get("mailbox") if cfg.uses_graph_mail else None
    return shared or owner_of(profile).email


@dataclass
class Opened:
    profiles: Profiles
    profile: Profile
    workspace: Workspace


def open_workspace(name: str | None, *, need_mail: bool = True) -> Opened:
    """The workspace of profile ``name`` with its secrets from the environment or keyring."""
    profiles, profile = load_profile(name)
    return workspace_of(profiles, profile, need_mail=need_mail)


def workspace_of(profiles: Profiles, profile: Profile, *, need_mail: bool = True) -> Opened:
    """The workspace of a loaded ``profile`` (see :func:`open_workspace`). A Graph mailbox
    takes its tokens from the CRM's sign-in (one account, one cache, one lock)."""
    cfg = profile.config
    crm_auth = _crm_auth(profile)
    mail_secret = ""
    if need_mail and needs_mail_password(cfg.mail_url):
        mail_secret = _secret(profile, SecretKind.MAIL, account_name(cfg, "mail"))
    sign_in = sign_in_of(crm_auth)

    def open_mailbox() -> MailBackend:
        return open_mail(cfg, profile.name, password=mail_secret, sign_in=sign_in)

    try:
        crm = crm_client_for(cfg, crm_auth, timeout=30)
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    owner = owner_of(profile)
    ws = Workspace(
        store_path=profile.store_path,
        open_mailbox=open_mailbox,
        crm=crm,
        owner=owner,
        mailbox_name=mailbox_name(profile),
        profile=profile,
        profiles=profiles,
    )
    return Opened(profiles, profile, ws)


def _crm_auth(profile: Profile) -> CrmAuth:
    """The profile's CRM auth; a Microsoft / AD FS profile must have someone signed in."""
    cfg = profile.config
    try:
        if not cfg.uses_oauth:
            secret = _secret(profile, SecretKind.CRM, account_name(cfg, "crm"))
            return crm_auth_for(cfg, profile.name, secret)
        sign_in = microsoft_sign_in(cfg, profile.name)
        if sign_in.account() is None:
            raise CliError(
                f"Nobody is signed in to the CRM as {cfg.crm_user!r} in profile "
                f"{profile.name!r}: {sign_in_again(profile.name)}",
                CREDENTIALS,
            )
        return sign_in.bearer_auth()
    except CredentialsError as exc:
        raise CliError(str(exc), CREDENTIALS) from None
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    except CrmAuthError as exc:
        raise CliError(f"{exc}: {sign_in_again(profile.name)}", CREDENTIALS) from None


def warn_insecure(*urls: str) -> None:
    for url in insecure_urls(*urls):
        print(
            f"warning: {url} is not encrypted; use it only for a local test server.",
            file=sys.stderr,
        )


def normalise_message_id(value: str) -> str:
    value = value.strip()
    return value if value.startswith("<") else f"<{value}>"
