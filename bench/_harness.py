"""Shared helpers for the benchmarks: timing, the figure format, the emulator in a process."""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
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


@contextlib.contextmanager
def emulator_process(db: Path) -> Iterator[str]:
    """``trackbox-crm serve`` over ``db`` in its own process, as a CRM is: in-process it would
    compete with the client for the GIL and the figures would measure that, not the client.
    Yields the server's URL."""
    code = "import sys; from crmserver.cli import main; sys.exit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--db", str(db), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"trackbox-crm serve did not start (said {url!r})")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
