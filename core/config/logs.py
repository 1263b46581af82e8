"""The per-profile log file: rotating, one line per event in ``key=value`` form, never secrets
or message bodies.

What keeps secrets out: the code logs ids, counts, states and error classes — never request
bodies, headers or mail content; libraries that could echo protocol traffic (imapclient's
command log, httpx/httpcore internals, MSAL) are held at WARNING; and, as a last guard, a
filter replaces every secret this process knows of (``register_secret``) with ``***``, and
everything that looks like a sign-in secret (:func:`redact`): the values of
``access_token``, ``refresh_token``, ``id_token``, ``device_code``, ``client_secret``,
``password``, ``code``, MSAL's cache ``secret``, ``Authorization`` headers, bearer tokens and
JWT-shaped strings.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import threading
from pathlib import Path
from typing import Any

from core.private_files import make_private_dir, private_file

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
    "msal",
)

_SECRET_NAMES = (
    "access_token|refresh_token|id_token|device_code|client_secret|client_assertion"
    "|password|passwd|authorization|code_verifier|assertion"
)
#: ``"access_token": "…"`` / ``'refresh_token': '…'`` (JSON, Python reprs), also MSAL's cache
#: entries (``"secret"``) and token requests (``"code"``; not a CRM error code ``0x8004…``).
_QUOTED_FIELD = re.compile(
    rf"""(?P<key>(?P<q>["']?)(?:{_SECRET_NAMES}|secret|code)(?P=q)\s*:\s*)"""
    r"""(?P<v>"(?!0x[0-9a-fA-F]+")[^"]*"|'(?!0x[0-9a-fA-F]+')[^']*')""",
    re.IGNORECASE,
)
#: ``access_token=…`` / ``code=…`` (forms, queries, key=value log lines).
_ASSIGNED = re.compile(
    rf"""(?P<key>\b(?:{_SECRET_NAMES}|code|token)=)(?P<v>[^&\s"',;)]+)""", re.IGNORECASE
)
#: ``Authorization: Bearer …`` (a header line, also ``Proxy-Authorization``).
_HEADER = re.compile(r"(?P<key>authorization\s*:\s*)(?P<v>[^\r\n,'\"]+)", re.IGNORECASE)
#: ``Bearer <token>`` and the Windows sign-in tokens anywhere in a line.
_SCHEME_TOKEN = re.compile(
    r"(?P<key>\b(?:Bearer|Basic|NTLM|Negotiate)\s+)(?P<v>[A-Za-z0-9\-._~+/]{8,}=*)"
)
#: Three base64url parts, the first a JSON object (``eyJ``): a JWT, signed or not.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Never write ``secret`` to any log line of this process."""
    if secret and len(secret) >= 3:
        with _lock:
            _secrets.add(secret)


def redact(text: str) -> str:
    """``text`` without the secrets this process knows of and without anything that looks
    like a sign-in secret (see the module's docstring)."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, "***")
    text = _JWT.sub("***", text)
    text = _QUOTED_FIELD.sub(
        lambda m: m.group("key") + m.group("v")[0] + "***" + m.group("v")[0], text
    )
    text = _HEADER.sub(lambda m: m.group("key") + "***", text)
    for pattern in (_ASSIGNED, _SCHEME_TOKEN):
        text = pattern.sub(lambda m: m.group("key") + "***", text)
    return text


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        redacted = redact(text)
        if redacted != text:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_text is None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Log files readable by this user only (0600 whatever the umask), also those a
    rollover starts: logs name mail and CRM records."""

    def _open(self) -> Any:
        private_file(Path(self.baseFilename))
        return super()._open()


def setup(log_path: Path, *, level: int = logging.INFO) -> logging.Handler:
    """Attach the rotating file handler for a profile to the root logger (idempotent per
    path). Returns the handler."""
    make_private_dir(log_path.parent)
    root = logging.getLogger()
    for handler in root.handlers:
        if (
            isinstance(handler, logging.handlers.RotatingFileHandler)
            and Path(handler.baseFilename) == log_path.resolve()
        ):
            return handler
    handler = _PrivateRotatingFileHandler(
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


__all__ = ["RedactSecrets", "redact", "register_secret", "setup", "tail"]
