"""Figure ``startup``: process start → main window shown, in demo mode (warm data directory),
against a bare PySide6 script that shows an empty QMainWindow, both measured here and now.
Target (issue 21): ratio <= 1.5 — nothing the first paint does not need is imported or read
before it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any

from bench._harness import figure, median_time, print_figures

BARE = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv)
w = QMainWindow(); w.resize(1200, 760); w.show()
QTimer.singleShot(0, app.quit)
app.exec()
"""


def _time_cmd(cmd: list[str], env: dict[str, str], repeat: int) -> float:
    return median_time(
        lambda: subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL), repeat
    )


def run(size: int | None = None) -> list[dict[str, Any]]:
    repeat = size or 5
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    with tempfile.TemporaryDirectory(prefix="trackbox-bench-") as data_dir:
        app_cmd = [
            sys.executable,
            "-m",
            "desktop.launcher",
            "demo",
            "--data-dir",
            data_dir,
            "--exit-when-shown",
        ]
        subprocess.run(app_cmd, env=env, check=True, stdout=subprocess.DEVNULL)  # warm: demo data
        ours = _time_cmd(app_cmd, env, repeat)
    base = _time_cmd([sys.executable, "-c", BARE], env, repeat)
    return [
        figure(
            "startup",
            "startup",
            value=ours,
            unit="s",
            baseline=base,
            ratio=ours / base,
            target=1.5,
        )
    ]


if __name__ == "__main__":
    print_figures(run())
