"""Every IMAP and SMTP operation has a total deadline (issue 18, item 10): through a proxy
that trickles the real Dovecot's (or SMTP server's) answers one byte per 0.2 s, or stalls
them, an operation with a 2 s deadline ends in ``MailUnavailable`` saying so — where a socket
timeout alone (restarted by every byte) would wait for ever — and the same operations
through the untriggered proxy work. A workspace sync cycle against a trickling IMAP ends
with the mail offline instead of hanging. Time bounds are hang-guards, not speed tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import core.mail.imap as imap_module
from core.domain.model import Address
from core.mail import MailUnavailable
from core.mail.deadline_socket import (
    DEFAULT_COMMAND_DEADLINE,
    MAX_COMMAND_DEADLINE,
    deadline_for,
)
from core.mail.imap import ImapBackend
from core.mail.smtp import SmtpSender
from crmserver import RunningServer
from tests.fakes.trickle_proxy import TrickleProxy
from tests.mail.helpers import make_message
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer
from tests.sync.env import ME, Env, mime

#: A generous hang-guard: a trickled operation with a 2 s deadline must end well before it.
HANG_GUARD = 30.0
DEADLINE = 2.0


@pytest.fixture
def imap_proxy(dovecot: DovecotServer) -> Iterator[TrickleProxy]:
    with TrickleProxy((dovecot.host, dovecot.imap_port)) as proxy:
        yield proxy


@pytest.fixture
def imaps_proxy(dovecot: DovecotServer) -> Iterator[TrickleProxy]:
    with TrickleProxy((dovecot.host, dovecot.imaps_port)) as proxy:
        yield proxy


def _backend(dovecot: DovecotServer, proxy: TrickleProxy, security: str, user: str) -> ImapBackend:
    return ImapBackend(
        proxy.host,
        proxy.port,
        security=security,
        user=user,
        password=PASSWORD,
        ssl_context=dovecot.tls.client_context(),
        deadline=DEADLINE,
    )


@pytest.fixture(params=["none", "starttls", "tls"])
def proxied(
    request: pytest.FixtureRequest,
    dovecot: DovecotServer,
    imap_proxy: TrickleProxy,
    imaps_proxy: TrickleProxy,
) -> Iterator[tuple[ImapBackend, TrickleProxy, str]]:
    """A backend on a fresh mailbox with two messages, through the proxy (plain, STARTTLS
    or implicit TLS), already connected and synced once."""
    security = str(request.param)
    proxy = imaps_proxy if security == "tls" else imap_proxy
    user = dovecot.new_user("deadline")
    for i in range(2):
        dovecot.deliver(user, make_message(i, subject=f"m{i}"))
    backend = _backend(dovecot, proxy, security, user)
    assert [b.added for b in backend.sync("Inbox", None)][0]
    yield backend, proxy, user
    proxy.normal()
    backend.close()


def _fails_by_deadline(call: Callable[[], object], proxy: TrickleProxy) -> MailUnavailable:
    start = time.monotonic()
    with pytest.raises(MailUnavailable) as info:
        call()
    assert time.monotonic() - start < HANG_GUARD
    assert "exceeded its deadline of 2 s" in str(info.value)
    return info.value


def test_untriggered_proxy_is_faithful(proxied: tuple[ImapBackend, TrickleProxy, str]) -> None:
    backend, proxy, _ = proxied
    state = None
    headers = []
    for batch in backend.sync("Inbox", state, batch_size=1):
        headers.extend(batch.added)
        state = batch.state
    assert sorted(h.subject for h in headers) == ["m0", "m1"]
    body = backend.fetch(headers[0].ref)
    assert b"Subject: m" in body
    backend.set_read(headers[0].ref, True)
    ref = backend.append("Inbox", make_message(7, subject="appended"))
    assert b"appended" in backend.fetch(ref)
    assert proxy.trickled == 0 and proxy.connections == 1


@pytest.mark.parametrize("mode", ["trickle", "stall"])
def test_sync_and_fetch_end_by_the_deadline(
    proxied: tuple[ImapBackend, TrickleProxy, str], mode: str
) -> None:
    backend, proxy, _ = proxied
    ref = next(iter(backend.sync("Inbox", None))).added[0].ref
    getattr(proxy, mode)()
    _fails_by_deadline(lambda: list(backend.sync("Inbox", None)), proxy)
    _fails_by_deadline(lambda: backend.fetch(ref), proxy)
    _fails_by_deadline(lambda: backend.set_read(ref, False), proxy)
    _fails_by_deadline(lambda: backend.append("Inbox", make_message(8, subject="x")), proxy)
    if mode == "trickle":
        assert proxy.trickled > 0  # the server did answer, a byte at a time
    # Back to normal speed, the next operation reconnects and works.
    proxy.normal()
    assert b"Subject: m" in backend.fetch(ref)


def test_a_trickled_greeting_and_login_end_by_the_deadline(
    dovecot: DovecotServer, imaps_proxy: TrickleProxy
) -> None:
    """A connection that trickles from its first byte (greeting, TLS handshake) — through
    imapclient's ``_create_IMAP4``, which ``DeadlineIMAPClient`` relies on."""
    imaps_proxy.trickle()
    backend = _backend(dovecot, imaps_proxy, "tls", dovecot.new_user("greet"))
    err = _fails_by_deadline(backend.folders, imaps_proxy)
    assert "connect and login" in str(err)
    assert imaps_proxy.trickled > 0
    backend.close()


def test_the_deadline_is_per_operation_and_scales_with_size() -> None:
    assert DEFAULT_COMMAND_DEADLINE == 120.0
    assert deadline_for(120.0) == 120.0
    assert deadline_for(120.0, 64 * 1024 * 60) == 180.0  # a minute more for 3.75 MB
    assert deadline_for(120.0, 10**12) == MAX_COMMAND_DEADLINE
    backend = ImapBackend("127.0.0.1", 9, security="none", user="u")
    assert backend.deadline == DEFAULT_COMMAND_DEADLINE


# --- SMTP -----------------------------------------------------------------------------------


def test_smtp_send_ends_by_the_deadline(smtp_server: SmtpServer) -> None:
    with TrickleProxy((smtp_server.host, smtp_server.port)) as proxy:
        sender = SmtpSender(f"smtp+insecure://{proxy.host}:{proxy.port}", deadline=DEADLINE)
        raw = make_message(1, to=f"me@{ME.email.partition('@')[2]}", subject="through the proxy")
        sender.send(raw)  # untriggered: faithful
        assert any(b"through the proxy" in m for _, _, m in smtp_server.received)
        proxy.trickle()
        start = time.monotonic()
        with pytest.raises(MailUnavailable) as info:
            sender.send(make_message(2, subject="never"))
        assert time.monotonic() - start < HANG_GUARD
        assert "SMTP send exceeded its deadline of 2 s" in str(info.value)
        assert proxy.trickled > 0


# --- a whole sync cycle ---------------------------------------------------------------------


class _ProxiedEnv(Env):
    proxy: TrickleProxy

    def mailbox_url(self) -> str:
        return f"imap+insecure://{self.proxy.host}:{self.proxy.port}"


def test_a_sync_cycle_against_a_trickling_imap_ends_with_mail_offline(
    fresh_crm: RunningServer,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    imap_proxy: TrickleProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``trackbox sync --once`` as the CLI runs it: one cycle of the workspace. The backend is
    opened as the app opens it (``open_backend``), with the default deadline made short."""
    monkeypatch.setattr(imap_module, "DEFAULT_COMMAND_DEADLINE", DEADLINE)
    env = _ProxiedEnv(fresh_crm, dovecot, smtp_server, tmp_path)
    env.proxy = imap_proxy
    ws, user = env.workspace("trickled")
    _, raw = mime(Address("jane.doe@fabrikam.example", "Jane Doe"), ME, "Before the trickle")
    dovecot.deliver(user, raw)
    first = ws.sync_cycle()
    assert first.ok and first.mail_online, first.errors
    dovecot.deliver(user, mime(ME, ME, "During the trickle")[1])
    imap_proxy.trickle()
    start = time.monotonic()
    report = ws.sync_cycle()
    assert time.monotonic() - start < 2 * HANG_GUARD
    assert not report.ok and not report.mail_online and report.online
    assert imap_proxy.trickled > 0
    imap_proxy.normal()
    again = ws.sync_cycle()
    assert again.ok and again.mail_online, again.errors
    ws.close()
