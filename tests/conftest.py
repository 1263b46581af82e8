"""Test-wide set-up: offscreen Qt, an in-memory keyring, and a private TRACKBOX_HOME.

Server fixtures live in ``tests/plugins``: the CRM emulator (``crm.py``) and the mail servers
(``mailservers.py``). In CI (``CI=true``) a test whose server is missing fails; it never skips.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PYTHON_KEYRING_BACKEND"] = "tests.memory_keyring.MemoryKeyring"
os.environ.setdefault("TRACKBOX_HOME", tempfile.mkdtemp(prefix="trackbox-test-home-"))

pytest_plugins = ["tests.plugins.crm", "tests.plugins.mailservers"]
