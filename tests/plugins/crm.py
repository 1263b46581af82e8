"""Fixtures that run the CRM emulator on loopback (filled in by the emulator work)."""

from __future__ import annotations
