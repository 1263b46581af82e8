"""The ``trackbox`` command: the GUI, the demo, and the headless commands of ``core.cli``.

Nothing here imports Qt at module level, so ``trackbox --version`` and the headless commands
start fast and work where Qt cannot.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.cli.parsers import Subparsers

#: The commands that open a window: parsing them needs none of the headless commands'
#: parsers (importing :mod:`core.cli` for them would delay the window).
GUI_COMMANDS = frozenset({"demo", "open"})


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked: ``core.__version__`` reads the package
    metadata (importlib.metadata), which every start-up would otherwise pay."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from core import __version__

        print(f"trackbox {__version__}")
        parser.exit()


def _command_of(argv: list[str]) -> str | None:
    """The command word of ``argv`` (its first argument that is not an option)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(headless: bool = True) -> argparse.ArgumentParser:
    """The whole command tree; the headless commands come from :mod:`core.cli` (left out
    with ``headless=False``, for a command line that opens a window)."""
    parser = argparse.ArgumentParser(
        prog="trackbox",
        description="A desktop mail client that tracks your e-mail in Dynamics 365 / Dataverse "
        "CRM. Run 'trackbox demo' to try it on an embedded demo CRM and mailbox.",
    )
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo_command(sub)
    _add_open_command(sub)
    if headless:
        from core.cli import add_commands

        add_commands(sub)
    return parser


def _add_demo_command(sub: Subparsers) -> None:
    """``trackbox demo``: the app on the embedded CRM emulator and demo mailbox."""
    demo = sub.add_parser(
        "demo",
        help="open the app on the embedded demo (local CRM emulator + demo mailbox)",
        description="Open Trackbox on the embedded demo: a CRM emulator on loopback with a "
        "demo organisation and a demo mailbox of realistic mail. Without a display it renders "
        "offscreen and saves screenshots.",
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the demo mailbox and CRM database live (default: the user data directory)",
    )
    _add_screenshot_options(demo)
    demo.add_argument("--exit-when-shown", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(func=_run_demo)


def _add_screenshot_options(demo: argparse.ArgumentParser) -> None:
    """The demo's screenshot options, used to refresh the README's pictures."""
    demo.add_argument(
        "--screenshot",
        type=Path,
        metavar="FILE.png",
        help="save a PNG of the main window with a message selected, then exit",
    )
    demo.add_argument(
        "--quit-after",
        type=float,
        metavar="SECONDS",
        help="keep the window at least this long before exiting (with --screenshot)",
    )
    demo.add_argument(
        "--screenshot-dialog",
        metavar="NAME",
        # desktop.screenshots.DIALOGS, not imported here: it would load Qt before the parse.
        choices=(
            "main",
            "regarding",
            "options",
            "compose",
            "addressbook",
            "queue",
            "conversation",
            "never-track",
            "search",
            "calendar",
        ),
        help="with --screenshot: stage the window or a dialog on the demo data "
        "and save a PNG of it: main (tracks three messages first), regarding, "
        "options, compose, addressbook, queue, conversation (grouped by conversation), "
        "never-track, search, calendar",
    )


def _add_open_command(sub: Subparsers) -> None:
    """``trackbox open``: the client on a real profile, the setup wizard on first run."""
    gui = sub.add_parser(
        "open",
        help="open the mail client on a profile (first run: the setup wizard)",
        description="Open Trackbox on a profile's mailbox and CRM. Without any profile, the "
        "setup wizard asks for the mail and CRM accounts first.",
    )
    gui.add_argument(
        "--profile",
        metavar="NAME",
        default=None,
        help="the profile to open (default: the default profile)",
    )
    gui.add_argument(
        "--setup", action="store_true", help="run the setup wizard even when a profile exists"
    )
    gui.set_defaults(func=_run_gui)


def _run_demo(args: argparse.Namespace) -> int:
    from desktop.app import run_demo

    return run_demo(args)


def _run_gui(args: argparse.Namespace) -> int:
    from desktop.app import run_gui

    return run_gui(args)


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(headless=_command_of(words) not in GUI_COMMANDS)
    args = parser.parse_args(words)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
