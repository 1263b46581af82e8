"""PyInstaller entry point of the ``trackbox-crm`` executable (the CRM emulator).

This script is not analysed by PyInstaller (the spec reuses the GUI's analysis, which lists
``crmserver.cli`` as a hidden import): import nothing here that the emulator does not import.
"""

from __future__ import annotations

import sys

from crmserver.cli import main

if __name__ == "__main__":
    sys.exit(main())
