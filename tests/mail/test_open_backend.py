"""Mailbox URLs: which backend, which transport security."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.mail import MailProtocolError, open_backend
from core.mail.ews import EwsBackend
from core.mail.imap import ImapBackend
from core.mail.maildir import MaildirBackend


def test_maildir_urls(tmp_path: Path) -> None:
    for url in (f"maildir:{tmp_path}/a", f"maildir://{tmp_path}/b"):
        b = open_backend(url)
        assert isinstance(b, MaildirBackend) and (b.root / "cur").is_dir()


@pytest.mark.parametrize(
    "url,security,port",
    [
        ("imaps://mail.example", "tls", 993),
        ("imap://mail.example", "starttls", 143),
        ("imap://mail.example:1143", "starttls", 1143),
        ("imap+insecure://127.0.0.1:10143", "none", 10143),
    ],
)
def test_imap_urls(url: str, security: str, port: int) -> None:
    b = open_backend(url, user="u", password="p", smtp_url="smtp://mail.example")
    assert isinstance(b, ImapBackend)
    assert (b.security, b.port) == (security, port)
    assert b.smtp is not None and (b.smtp.scheme, b.smtp.port) == ("smtp", 587)


def test_ews_urls() -> None:
    b = open_backend(
        "ews://mail.example/EWS/Exchange.asmx", user="a@b.example", password="p", auth_type="basic"
    )
    assert isinstance(b, EwsBackend)
    assert b.account.protocol.service_endpoint == "https://mail.example/EWS/Exchange.asmx"
    b = open_backend(
        "ews+http://127.0.0.1:8080/EWS/Exchange.asmx",
        user="a@b.example",
        password="p",
        auth_type="ntlm",
    )
    assert b.account.protocol.service_endpoint == "http://127.0.0.1:8080/EWS/Exchange.asmx"


@pytest.mark.parametrize("url", ["pop3://x", "nonsense", "smtp://x"])
def test_unknown_urls_are_refused(url: str) -> None:
    with pytest.raises(MailProtocolError):
        open_backend(url)


def test_bad_smtp_url_and_auth_type() -> None:
    with pytest.raises(MailProtocolError):
        open_backend("imaps://x", user="u", smtp_url="ftp://x")
    with pytest.raises(MailProtocolError):
        open_backend("ews://x/EWS/Exchange.asmx", user="a@b.example", auth_type="kerberos")
