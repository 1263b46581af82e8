"""``python -m bench NAME [--size N]`` runs one benchmark; ``python -m bench all`` runs them all.

The figures are printed last, one JSON object per line.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from bench._harness import print_figures


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", help=f"one of: all, {', '.join(available())}")
    parser.add_argument(
        "--size", type=int, default=None, help="problem size (default: the issue's)"
    )
    args = parser.parse_args(argv)
    names = available() if args.name == "all" else [args.name]
    unknown = [n for n in names if n not in available()]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(available())}")
    figures = []
    failed = []
    for name in names:
        print(f"# running bench {name} …", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{name}")
        try:
            figures.extend(module.run(args.size))
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            print(f"# bench {name} failed: {exc!r}", file=sys.stderr, flush=True)
    print_figures(figures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
