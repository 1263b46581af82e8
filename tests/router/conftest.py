"""Helpers for the router's tests: router processes started the way an admin starts them
(``python -m router.cli …``), configs for the tests' processing functions, waiting with a
hang guard."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from router.cli import BROKER_ENV

ROOT = Path(__file__).resolve().parents[2]
PROCESSOR = "tests.router.processors:from_config"
_names = itertools.count(1)


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it answers something true; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)


@dataclass
class RouterProcesses:
    """Router processes of one test; all are killed at its end."""

    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def config(self, **settings: Any) -> Path:
        path = self.tmp / f"router-{next(_names)}.json"
        path.write_text(json.dumps(settings))
        return path

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"proc-{next(_names)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "router.cli", *args],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        log.close()
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.tmp.glob("*.log"))


@pytest.fixture(autouse=True)
def _no_broker_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded tests must not pick up a Redis named in the developer's environment."""
    monkeypatch.delenv(BROKER_ENV, raising=False)


@pytest.fixture
def router_procs(tmp_path: Path) -> Iterator[RouterProcesses]:
    procs = RouterProcesses(tmp_path)
    try:
        yield procs
    finally:
        for proc in procs.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
