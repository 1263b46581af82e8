"""Whether the tests run in CI (``CI=true``; ``1`` and ``yes`` count too, in any case).

In CI a test whose server or tool is missing fails; locally it skips
(:func:`tests.plugins.mailservers.missing`)."""

from __future__ import annotations

import os


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
