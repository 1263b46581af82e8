"""The per-profile log file: rotating, one line per event in ``key=value`` form, never secrets
or message bodies.

What keeps secrets out: the code logs ids, counts, states and error classes — never request
bodies, headers or mail content; libraries that could echo protocol traffic (imapclient's
command log, httpx/httpcore internals) are held at WARNING; and, as a last guard, a filter
replaces every secret this process knows of (``register_secret``) with ``***``.
"""

from __future__ import annotations

import logging
import logging.handlers
import threading
from pathlib import Path

MAX_BYTES = 1_000_000
BACKUPS = 5
FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s thread=%(threadName)s %(message)s"
QUIET = (
    "imapclient",
    "httpcore",
    "httpx",
    "exchangelib",
    "urllib3",
    "requests_ntlm",
    "aiosmtpd",
    "mail.log",
)

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Never write ``secret`` to any log line of this process."""
    if secret and len(secret) >= 3:
        with _lock:
            _secrets.add(secret)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        text = record.getMessage()
        redacted = text
        for secret in _secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != text:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_text is None and _secrets:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            for secret in _secrets:
                record.exc_text = record.exc_text.replace(secret, "***")
        return True


def setup(log_path: Path, *, level: int = logging.INFO) -> logging.Handler:
    """Attach the rotating file handler for a profile to the root logger (idempotent per
    path). Returns the handler."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in root.handlers:
        if (
            isinstance(handler, logging.handlers.RotatingFileHandler)
            and Path(handler.baseFilename) == log_path.resolve()
        ):
            return handler
    handler = logging.handlers.RotatingFileHandler(
        log_path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactSecrets())
    previous = root.level if root.level != logging.NOTSET else logging.WARNING
    for other in root.handlers:
        if type(other) is not logging.StreamHandler:  # not ours to change (e.g. pytest's)
            continue
        # Console handlers keep printing what they printed before the file asked for more.
        if other.level == logging.NOTSET:
            other.setLevel(previous)
        if not any(isinstance(f, RedactSecrets) for f in other.filters):
            other.addFilter(RedactSecrets())
    root.addHandler(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def tail(log_path: Path, lines: int = 20) -> list[str]:
    """The last lines of a log (diagnostics)."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return text.splitlines()[-lines:]


__all__ = ["RedactSecrets", "register_secret", "setup", "tail"]
