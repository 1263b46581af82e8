"""Headless commands of ``trackbox`` (account, sync, track, untrack, queue, list, diagnose).

``add_commands(subparsers)`` registers each command on the launcher's argparse parser; each
sub-parser sets ``func(args) -> int`` (the exit code, see ``core.cli.context``). No Qt here.
Every command takes ``--profile NAME``; ``TRACKBOX_HOME`` moves profiles and data.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """The command ``core.cli.commands.<name>``, imported only when it runs: registering the
    parsers must stay cheap, because every start of the GUI builds them too (importing the
    implementations cost 0.4 s of start-up)."""

    def run(args: argparse.Namespace) -> int:
        from core.cli import commands

        command: Callable[[argparse.Namespace], int] = getattr(commands, name)
        return int(commands.main_guard(command)(args))

    return run


def _sign_in_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device-code",
        action="store_true",
        help="sign in on another device with a code (terminals, no browser here)",
    )


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the headless commands on the launcher's parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--profile",
        metavar="NAME",
        default=None,
        help="the profile to use (default: the default profile)",
    )

    account = subparsers.add_parser("account", help="set up mail and CRM accounts")
    account_sub = account.add_subparsers(dest="account_command", metavar="ACTION", required=True)
    add = account_sub.add_parser(
        "add",
        parents=[common],
        help="create a profile for a mailbox and a CRM user",
        description="Create a profile. Mail URLs: imaps://host[:port], imap://host[:port] "
        "(STARTTLS required), ews://host[:port]/EWS/Exchange.asmx, ews+autodiscover:user@domain, "
        "maildir:/path; local test servers only: imap+insecure://, smtp+insecure://, ews+http://. "
        "Passwords are asked for and kept in the system keyring; with TRACKBOX_CRM_PASSWORD / "
        "TRACKBOX_MAIL_PASSWORD set, nothing is stored and every command uses them.",
    )
    add.add_argument("--mail-url", required=True, metavar="URL")
    add.add_argument("--mail-user", metavar="USER", default="")
    add.add_argument(
        "--smtp-url",
        metavar="URL",
        default="",
        help="smtps://host[:port] or smtp://host[:port] (STARTTLS) for IMAP",
    )
    add.add_argument(
        "--crm-url",
        "--org-url",
        dest="crm_url",
        metavar="URL",
        default="",
        help="the CRM's address, e.g. https://contoso.crm.dynamics.com (with --sign-in "
        "microsoft, an e-mail address in --crm-user can find it instead)",
    )
    add.add_argument(
        "--crm-user",
        metavar="USER",
        default="",
        help="the CRM user: an e-mail address, DOMAIN\\user for Windows sign-in",
    )
    add.add_argument(
        "--sign-in",
        choices=("password", "microsoft", "adfs", "windows"),
        default="password",
        help="how to sign in to the CRM: a password (HTTP Basic, default), a Microsoft work "
        "account (Dynamics 365 online), AD FS or Windows sign-in (on-premises)",
    )
    _sign_in_options(add)
    add.add_argument(
        "--environment",
        metavar="NAME",
        default=None,
        help="with an e-mail address: the environment to use (unique or friendly name, or URL)",
    )
    add.add_argument(
        "--authority",
        metavar="URL",
        default="",
        help="the sign-in authority (default: from the CRM, or "
        "https://login.microsoftonline.com/organizations); AD FS: https://<host>/adfs",
    )
    add.add_argument(
        "--client-id",
        metavar="ID",
        default="",
        help="your organisation's app registration (default: Microsoft's sample client)",
    )
    add.add_argument(
        "--ca-file",
        metavar="PEM",
        default="",
        help="certificate authorities to trust for the CRM and the authority (on-premises)",
    )
    add.add_argument(
        "--discovery-url",
        metavar="URL",
        default="",
        help="the Global Discovery Service (default: https://globaldisco.crm.dynamics.com)",
    )
    add.add_argument(
        "--folder",
        action="append",
        metavar="PATH",
        help="a folder to synchronise (repeatable; default: all)",
    )
    add.add_argument("--replace", action="store_true", help="overwrite an existing profile")
    add.set_defaults(func=_command("account_add"))

    sign_in = account_sub.add_parser(
        "sign-in",
        parents=[common],
        help="sign in to the CRM again (Microsoft / AD FS profiles)",
        description="Sign in in the system browser, or with a device code on another device.",
    )
    _sign_in_options(sign_in)
    sign_in.set_defaults(func=_command("account_sign_in"))
    sign_out = account_sub.add_parser(
        "sign-out",
        parents=[common],
        help="forget the CRM sign-in (tokens or the stored password); the queue is kept",
    )
    sign_out.set_defaults(func=_command("account_sign_out"))

    sync = subparsers.add_parser("sync", parents=[common], help="synchronise with the CRM")
    sync.add_argument("--once", action="store_true", help="run one cycle and exit")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.set_defaults(func=_command("sync"))

    track = subparsers.add_parser("track", parents=[common], help="track a message in the CRM")
    track.add_argument("message_id", metavar="MESSAGE-ID")
    track.add_argument(
        "--regarding",
        metavar="ENTITY:ID",
        help="file it regarding this record, e.g. account:<guid>",
    )
    track.set_defaults(func=_command("track"))

    untrack = subparsers.add_parser(
        "untrack", parents=[common], help="delete a message's copy in the CRM"
    )
    untrack.add_argument("message_id", metavar="MESSAGE-ID")
    untrack.set_defaults(func=_command("untrack"))

    queue = subparsers.add_parser(
        "queue", parents=[common], help="list, retry or discard queued CRM operations"
    )
    queue.add_argument("action", choices=("list", "retry", "discard"))
    queue.add_argument("id", nargs="?", type=int, help="operation id (retry, discard)")
    queue.add_argument("--json", action="store_true")
    queue.set_defaults(func=_command("queue"))

    lst = subparsers.add_parser(
        "list", parents=[common], help="a folder's messages with their tracked state"
    )
    lst.add_argument("--folder", metavar="PATH", default=None, help="default: Inbox")
    lst.add_argument("--limit", type=int, default=200)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_command("list_messages"))

    diagnose = subparsers.add_parser(
        "diagnose",
        parents=[common],
        help="versions, profile, reachability and sign-in checks, last sync, queue",
    )
    diagnose.add_argument("--json", action="store_true")
    diagnose.set_defaults(func=_command("diagnose"))
