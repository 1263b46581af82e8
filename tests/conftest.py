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

from hypothesis import HealthCheck, settings  # noqa: E402

from tests.plugins.ci import in_ci  # noqa: E402

# Property tests: ``dev`` locally; ``ci`` under CI=true (no deadline: the machine is shared and
# noisy, and a slow example is not a wrong one); ``deterministic`` to reproduce a failure with
# a fixed seed (HYPOTHESIS_PROFILE=deterministic).
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("deterministic", deadline=None, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if in_ci() else "dev"))

pytest_plugins = [
    "tests.plugins.crm",
    "tests.plugins.mailservers",
    "tests.plugins.graph",
    "tests.plugins.ews_oauth",
    "tests.plugins.redis",
    "tests.plugins.radicale",
]
