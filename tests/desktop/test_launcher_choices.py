"""The demo's --screenshot-dialog choices are the screenshot module's list (the launcher
cannot import it before parsing: it loads Qt)."""

from __future__ import annotations

import argparse

from desktop.launcher import build_parser
from desktop.screenshots import DIALOGS


def _choices(parser: argparse.ArgumentParser) -> tuple[str, ...]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    demo = sub.choices["demo"]
    option = next(a for a in demo._actions if "--screenshot-dialog" in a.option_strings)
    assert option.choices is not None
    return tuple(option.choices)


def test_every_screenshot_can_be_asked_for_by_name() -> None:
    assert _choices(build_parser()) == DIALOGS
