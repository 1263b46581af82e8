"""The argparse tree of the headless commands, one builder per command group.

Nothing here imports a command's implementation: every start of the GUI builds these parsers
too, and importing the implementations cost 0.4 s of start-up (see :func:`_command`).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import TypeAlias

#: What ``add_subparsers`` returns (argparse has no public name for it).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _command(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """The command ``core.cli.<module>.<name>``, imported only when it runs."""

    def run(args: argparse.Namespace) -> int:
        from core.cli.context import main_guard

        command: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(f"core.cli.{module}"), name
        )
        return int(main_guard(command)(args))

    return run


def common_options() -> argparse.ArgumentParser:
    """The parent parser of every command: ``--profile NAME``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--profile",
        metavar="NAME",
        default=None,
        help="the profile to use (default: the default profile)",
    )
    return common


# -- account ------------------------------------------------------------------------------


def add_account(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    account = subparsers.add_parser("account", help="set up mail and CRM accounts")
    account_sub = account.add_subparsers(dest="account_command", metavar="ACTION", required=True)
    _add_account_add(account_sub, common)
    sign_in = account_sub.add_parser(
        "sign-in",
        parents=[common],
        help="sign in to the CRM again (Microsoft / AD FS profiles)",
        description="Sign in in the system browser, or with a device code on another device.",
    )
    _device_code_option(sign_in)
    sign_in.set_defaults(func=_command("account", "account_sign_in"))
    mailboxes = account_sub.add_parser(
        "mailboxes",
        parents=[common],
        help="list, add or remove the shared mailboxes shown besides your own (Microsoft 365)",
        description="The shared or delegated mailboxes of a Microsoft 365 profile, each under "
        "a folder named by its address. Adding the first one asks for the shared-mailbox "
        "permissions: sign in again if the command says so. A removed mailbox's mail is "
        "forgotten locally (what is tracked in the CRM stays).",
    )
    mailboxes.add_argument(
        "--add", action="append", metavar="ADDRESS", default=None, help="repeatable"
    )
    mailboxes.add_argument(
        "--remove", action="append", metavar="ADDRESS", default=None, help="repeatable"
    )
    mailboxes.set_defaults(func=_command("account", "account_mailboxes"))
    sign_out = account_sub.add_parser(
        "sign-out",
        parents=[common],
        help="forget the CRM sign-in (tokens or the stored password); the queue is kept",
    )
    sign_out.set_defaults(func=_command("account", "account_sign_out"))


def _add_account_add(account_sub: Subparsers, common: argparse.ArgumentParser) -> None:
    add = account_sub.add_parser(
        "add",
        parents=[common],
        help="create a profile for a mailbox and a CRM user",
        description="Create a profile. Microsoft 365 (Outlook mail and Dynamics 365, one "
        "sign-in): --microsoft365 --email you@contoso.com. Other mail URLs: imaps://host[:port], "
        "imap://host[:port] (STARTTLS required), ews://host[:port]/EWS/Exchange.asmx "
        "(Exchange Server), ews+autodiscover:user@domain, graph: (Microsoft 365 through "
        "Microsoft Graph; needs --sign-in microsoft), maildir:/path; local test servers only: "
        "imap+insecure://, smtp+insecure://, ews+http://. Passwords are asked for and kept in "
        "the system keyring; with TRACKBOX_CRM_PASSWORD / TRACKBOX_MAIL_PASSWORD set, nothing "
        "is stored and every command uses them.",
    )
    _microsoft365_options(add)
    _connection_options(add)
    _dav_options(add)
    _sign_in_options(add)
    add.add_argument(
        "--folder",
        action="append",
        metavar="PATH",
        help="a folder to synchronise (repeatable; default: all)",
    )
    add.add_argument("--replace", action="store_true", help="overwrite an existing profile")
    add.set_defaults(func=_command("account", "account_add"))


def _microsoft365_options(add: argparse.ArgumentParser) -> None:
    """Microsoft 365: the mailbox through Graph and the CRM with one Microsoft sign-in."""
    add.add_argument(
        "--microsoft365",
        action="store_true",
        help="Outlook mail (Microsoft Graph) and Dynamics 365 with one Microsoft sign-in: "
        "give your address with --email; the environment is found from it (--environment "
        "chooses one) or given with --org-url",
    )
    add.add_argument(
        "--shared-mailbox",
        action="append",
        metavar="ADDRESS",
        default=None,
        help="with Microsoft 365: a shared or delegated mailbox to show besides your own, "
        "under a folder named by its address (repeatable; asks for the Mail.ReadWrite.Shared "
        "and Mail.Send.Shared permissions). Only a shared mailbox, without your own: "
        "--mail-url graph:?mailbox=ADDRESS",
    )


def _dav_options(add: argparse.ArgumentParser) -> None:
    """Contacts, calendar and tasks of an IMAP mailbox: its CardDAV/CalDAV collections."""
    add.add_argument(
        "--carddav-url",
        metavar="URL",
        default="",
        help="with IMAP: the CardDAV address book that CRM contacts sync with "
        "(https://…/addressbook/; http:// only on this machine)",
    )
    add.add_argument(
        "--caldav-url",
        metavar="URL",
        default="",
        help="with IMAP: the CalDAV calendar that CRM appointments sync with",
    )
    add.add_argument(
        "--caldav-tasks-url",
        metavar="URL",
        default="",
        help="with IMAP: the CalDAV task list that CRM tasks sync with",
    )
    add.add_argument(
        "--dav-user",
        metavar="NAME",
        default="",
        help="the CalDAV/CardDAV user name (default: the mail user); its password is asked "
        "for and kept in the system keyring, or taken from TRACKBOX_DAV_PASSWORD",
    )


def _connection_options(add: argparse.ArgumentParser) -> None:
    """Where the mailbox and the CRM are, and who signs in."""
    add.add_argument(
        "--mail-url",
        metavar="URL",
        default="",
        help="the mailbox (required unless --microsoft365; with it, a graph:// endpoint)",
    )
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
        "--email",
        dest="crm_user",
        metavar="USER",
        default="",
        help="the CRM user: an e-mail address, DOMAIN\\user for Windows sign-in",
    )


def _sign_in_options(add: argparse.ArgumentParser) -> None:
    """How a new profile signs in to the CRM."""
    add.add_argument(
        "--sign-in",
        choices=("password", "microsoft", "adfs", "windows"),
        default=None,
        help="how to sign in to the CRM: a password (HTTP Basic, the default), a Microsoft "
        "work account (Dynamics 365 online; the default for a graph: mailbox), AD FS or "
        "Windows sign-in (on-premises)",
    )
    _device_code_option(add)
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
        help="certificate authorities to trust for the CRM, the authority and the Graph "
        "endpoint (on-premises, a TLS-inspecting proxy)",
    )
    add.add_argument(
        "--discovery-url",
        metavar="URL",
        default="",
        help="the Global Discovery Service (default: https://globaldisco.crm.dynamics.com)",
    )


def _device_code_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device-code",
        action="store_true",
        help="sign in on another device with a code (terminals, no browser here)",
    )


# -- the mailbox and the queue ------------------------------------------------------------


def add_sync(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    sync = subparsers.add_parser("sync", parents=[common], help="synchronise with the CRM")
    sync.add_argument("--once", action="store_true", help="run one cycle and exit")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.set_defaults(func=_command("commands", "sync"))


def add_track(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    """``track`` and ``untrack``."""
    track = subparsers.add_parser("track", parents=[common], help="track a message in the CRM")
    track.add_argument("message_id", metavar="MESSAGE-ID")
    track.add_argument(
        "--regarding",
        metavar="ENTITY:ID",
        help="file it regarding this record, e.g. account:<guid>",
    )
    track.set_defaults(func=_command("commands", "track"))

    untrack = subparsers.add_parser(
        "untrack", parents=[common], help="delete a message's copy in the CRM"
    )
    untrack.add_argument("message_id", metavar="MESSAGE-ID")
    untrack.set_defaults(func=_command("commands", "untrack"))


def add_queue(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    queue = subparsers.add_parser(
        "queue", parents=[common], help="list, retry or discard queued CRM operations"
    )
    queue.add_argument("action", choices=("list", "retry", "discard"))
    queue.add_argument("id", nargs="?", type=int, help="operation id (retry, discard)")
    queue.add_argument("--json", action="store_true")
    queue.set_defaults(func=_command("commands", "queue"))


def add_list(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    lst = subparsers.add_parser(
        "list", parents=[common], help="a folder's messages with their tracked state"
    )
    lst.add_argument("--folder", metavar="PATH", default=None, help="default: Inbox")
    lst.add_argument("--limit", type=int, default=200)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_command("commands", "list_messages"))


def add_diagnose(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    diagnose = subparsers.add_parser(
        "diagnose",
        parents=[common],
        help="versions, profile, reachability and sign-in checks, last sync, queue",
    )
    diagnose.add_argument("--json", action="store_true")
    diagnose.set_defaults(func=_command("commands", "diagnose"))
