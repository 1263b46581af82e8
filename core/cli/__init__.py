"""Headless commands of ``trackbox`` (account, sync, track, untrack, queue, list, diagnose).

``add_commands(subparsers)`` registers each command on the launcher's argparse parser; each
sub-parser sets ``func(args) -> int`` (the exit code, see ``core.cli.context``). No Qt here.
Every command takes ``--profile NAME``; ``TRACKBOX_HOME`` moves profiles and data.
"""

from __future__ import annotations

from core.cli import parsers


def add_commands(subparsers: parsers.Subparsers) -> None:
    """Register the headless commands on the launcher's parser."""
    common = parsers.common_options()
    parsers.add_account(subparsers, common)
    parsers.add_sync(subparsers, common)
    parsers.add_track(subparsers, common)
    parsers.add_queue(subparsers, common)
    parsers.add_list(subparsers, common)
    parsers.add_diagnose(subparsers, common)
