"""Paging helpers: overlap downloading the next page with processing the current one."""

from __future__ import annotations

from core.prefetch import prefetched

__all__ = ["prefetched"]
