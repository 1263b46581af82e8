"""Sign-in secrets never reach a log line: the profile log's filter redacts token fields, codes,
Authorization headers, bearer tokens and JWT-shaped strings, also in tracebacks."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest

from core.config import logs

JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJhbGV4IiwiYXVkIjoiaHR0cHM6Ly9jb250b3NvIn0."
    "c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('token response {"access_token": "AT-%s", "expires_in": 3600}', "AT-"),
        ("{'refresh_token': 'RT-%s', 'scope': 'x'}", "RT-"),
        ('"id_token":"ID-%s"', "ID-"),
        ("POST /token grant_type=authorization_code&code=CODE-%s&redirect_uri=x", "CODE-"),
        ("https://localhost:8400/?code=CODE-%s&state=s", "CODE-"),
        ("device_code=DEV-%s", "DEV-"),
        ("password=PW-%s user=alex", "PW-"),
        ("Authorization: Bearer BEARER-%s", "BEARER-"),
        ("headers {'Authorization': 'Basic BASIC-%s'}", "BASIC-"),
        ("sent Bearer OPAQUE%s to the CRM", "OPAQUE"),
        ("NTLM TlRMTVNT%s challenge", "TlRMTVNT"),
    ],
)
def test_redact_removes_sign_in_secrets(line: str, secret: str) -> None:
    value = secret + secrets.token_urlsafe(16)
    text = line.replace(secret + "%s", value)
    assert value in text
    redacted = logs.redact(text)
    assert value not in redacted
    assert "***" in redacted


def test_jwts_anywhere_and_harmless_lines_untouched() -> None:
    assert logs.redact(f"token {JWT} expired") == "token *** expired"
    harmless = "sync done ok=True crm_online=True counts=a=1 status_code=401 error_code=x"
    assert logs.redact(harmless) == harmless


def test_the_profile_log_never_holds_them(tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "trackbox.log"
    handler = logs.setup(log_path, level=logging.DEBUG)
    access, refresh = "at-" + secrets.token_hex(12), "rt-" + secrets.token_hex(12)
    code, password = "code-" + secrets.token_hex(6), "pw-" + secrets.token_hex(6)
    logs.register_secret(password)
    log = logging.getLogger("trackbox.test.redaction")
    try:
        log.info("token response %s", {"access_token": access, "refresh_token": refresh})
        log.info("redirect to http://localhost:4711/?code=%s&state=x", code)
        log.info("Authorization: Bearer %s", access)
        log.warning("signed in with %s", password)
        log.debug("id token %s", JWT)
        try:
            raise RuntimeError(f"refresh_token={refresh} refused")
        except RuntimeError:
            log.exception("renewal failed")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    text = log_path.read_text(encoding="utf-8")
    assert "renewal failed" in text and "RuntimeError" in text
    for value in (access, refresh, code, password, JWT):
        assert value not in text
    assert text.count("***") >= 6
