"""The durable queue of CRM operations and the operations themselves."""

from __future__ import annotations
