"""Benchmarks. Each module ``bench/<name>.py`` defines ``run(size=None) -> list[dict]``.

Every figure is measured against a baseline taken in the same run (machines are noisy), and is
reported as one JSON object: ``bench, figure, value, unit, baseline, ratio, target`` where
``ratio`` is our cost divided by the baseline's cost (lower is better).
"""

from __future__ import annotations

from bench._harness import figure, median_time

__all__ = ["figure", "median_time"]
