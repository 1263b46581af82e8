"""Pure rules and value types of the domain: no I/O."""

from __future__ import annotations
