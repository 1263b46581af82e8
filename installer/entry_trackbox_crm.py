"""PyInstaller entry point of the ``trackbox-crm`` executable (the CRM emulator)."""

from __future__ import annotations

import sys

from crmserver.cli import main

if __name__ == "__main__":
    sys.exit(main())
