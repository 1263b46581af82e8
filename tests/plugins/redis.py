"""A real ``redis-server`` on loopback for the router's tests (Debian package ``redis-server``).

One server per session on a free port, with its own directory and no persistence; torn down at
the end. Tests that need a clean Redis use ``fresh_redis`` (the database flushed first). A
missing binary skips locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.mailservers import free_port, require_binary, stop_process, wait_for_port


@dataclass
class RedisServer:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.Redis(host=self.host, port=self.port, db=0)

    def restart(self) -> None:
        """Stop the server and start it again on the same port (it comes back empty: no
        persistence), as after a crash of a Redis that kept nothing."""
        stop_redis(self)
        self.proc = _launch(self.root, self.port)


def start_redis(root: Path) -> RedisServer:
    port = free_port()
    return RedisServer(root, port, _launch(root, port))


def _launch(root: Path, port: int) -> subprocess.Popen[bytes]:
    binary = require_binary("redis-server", "redis-server")
    log = root / "redis.log"
    args = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(root),
        "--save", "",
        "--appendonly", "no",
        "--logfile", str(log),
        "--daemonize", "no",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port, "redis-server", log)
    return proc


def stop_redis(server: RedisServer) -> None:
    stop_process(server.proc)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    root = Path(tempfile.mkdtemp(prefix="trackbox-redis-"))
    server = start_redis(root)
    try:
        yield server
    finally:
        stop_redis(server)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_redis(redis_server: RedisServer) -> RedisServer:
    """The session's Redis, emptied for this test."""
    client = redis_server.client()
    client.flushall()
    client.close()
    return redis_server
