"""Fixtures that run real mail servers on loopback (filled in by the mailbox work)."""

from __future__ import annotations
