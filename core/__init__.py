"""Trackbox core: everything but the GUI (no Qt here; enforced by tests/test_layering.py)."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Looked up lazily: importlib.metadata costs ~0.1 s, which every start-up would pay.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("trackbox")
        except PackageNotFoundError:  # a source tree that is not installed
            return "0.0.0+unknown"
    raise AttributeError(f"module 'core' has no attribute {name!r}")
