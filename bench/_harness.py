"""Shared helpers for the benchmarks: timing and the figure format."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any


def median_time(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def figure(
    bench: str,
    name: str,
    *,
    value: float,
    unit: str,
    baseline: float,
    ratio: float,
    target: float | None,
    **extra: Any,
) -> dict[str, Any]:
    """One figure in the format every benchmark prints (see bench/__init__.py)."""
    out: dict[str, Any] = {
        "bench": bench,
        "figure": name,
        "value": round(value, 6),
        "unit": unit,
        "baseline": round(baseline, 6),
        "ratio": round(ratio, 3),
        "target": target,
    }
    out.update(extra)
    return out


def print_figures(figures: list[dict[str, Any]]) -> None:
    for fig in figures:
        print(json.dumps(fig, ensure_ascii=False), flush=True)
