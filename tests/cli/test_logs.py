"""The per-profile log: key=value lines, rotation, and no secret ever written."""

from __future__ import annotations

import logging
from pathlib import Path

from core.config import logs


def test_log_lines_are_greppable_and_secrets_are_redacted(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "trackbox.log"
    root_level = logging.getLogger().level
    handler = logs.setup(path)
    try:
        assert logs.setup(path) is handler  # idempotent per file
        logs.register_secret("hunter2-very-secret")
        log = logging.getLogger("core.test")
        log.info("sync done ok=%s counts=%s", True, "headers=3")
        log.warning("login with %s failed", "hunter2-very-secret")
        try:
            raise RuntimeError("password was hunter2-very-secret")
        except RuntimeError:
            log.exception("boom")
        logging.getLogger("imapclient.imaplib").debug("> LOGIN user hunter2-very-secret")
        handler.flush()
        text = path.read_text()
        assert "hunter2-very-secret" not in text
        assert text.count("***") >= 2
        line = next(ln for ln in text.splitlines() if "sync done" in ln)
        assert "level=INFO" in line and "logger=core.test" in line and "ok=True" in line
        assert logs.tail(path, 2)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)
        handler.close()
