"""The installed PySide6 keeps Python's reference counts: 6.12.0 loses one reference to None
per call of a method returning nothing, which on Python 3.11 aborts a long session
("none_dealloc"). pyproject.toml excludes it; this test catches any release that does it."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject


def test_calls_returning_nothing_keep_the_reference_count_of_none() -> None:
    obj = QObject()
    obj.setObjectName("warm-up")
    before = sys.getrefcount(None)
    for _ in range(200):
        obj.setObjectName("trackbox")
    assert sys.getrefcount(None) - before > -50, "PySide6 loses references to None"
