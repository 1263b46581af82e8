"""The facade the GUI and the CLI share, and the services behind it."""

from __future__ import annotations
