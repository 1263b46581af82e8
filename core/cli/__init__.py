"""Headless commands of ``trackbox`` (account, sync, track, queue, list, diagnose).

``add_commands(subparsers)`` registers each command on the launcher's argparse parser; each
sub-parser sets ``func(args) -> int`` (the exit code). No Qt here.
"""

from __future__ import annotations

import argparse


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the headless commands (filled in by the sync/outbox work)."""
