"""PyInstaller entry point of the ``trackbox`` executable (GUI, demo, headless commands)."""

from __future__ import annotations

import sys

from desktop.launcher import main

if __name__ == "__main__":
    sys.exit(main())
