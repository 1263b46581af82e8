"""Fixtures that run real mail servers on loopback: Dovecot (IMAP + LMTP), an SMTP server
(aiosmtpd) that relays into Dovecot over LMTP so sent mail can be read back, and the fake EWS
server (the one fake the project allows, see ``tests/fakes``).

Each server starts once per session with its own config in a temporary directory, waits for its
port with a timeout and a clear failure, and is always torn down. Tests get isolation by using a
fresh mailbox user (:meth:`DovecotServer.new_user`): Dovecot's static passdb accepts any user
name with :data:`PASSWORD`. A missing server binary skips locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from tests.plugins.ci import in_ci

if TYPE_CHECKING:
    from tests.fakes.dns_server import FakeDnsServer
    from tests.fakes.ews_auth import NtlmAccounts
    from tests.fakes.ews_server import FakeEwsServer

PASSWORD = "secret-pw"
DOMAIN = "test.example"


def require_binary(name: str, package: str) -> str:
    """The binary's path; without it, skip (locally) or fail (in CI)."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    if path:
        return path
    missing(f"{name} not found: install the Debian package {package} (make test does, as root)")


def missing(msg: str) -> NoReturn:
    """Something a test needs is not here: skip locally, fail in CI (``CI=true``); outside
    pytest (a benchmark) raise ``RuntimeError``, as :func:`_fail` does."""
    if "PYTEST_CURRENT_TEST" not in os.environ:
        raise RuntimeError(msg)
    if in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, what: str, log: Path | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    text = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    _fail(f"{what} did not open port {port} within {timeout}s\n{text}")


# --- TLS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only the test CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture(scope="session")
def tls_material() -> Iterator[TlsMaterial]:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1."""
    d = Path(tempfile.mkdtemp(prefix="trackbox-tls-"))
    try:
        yield make_tls_material(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def make_tls_material(d: Path) -> TlsMaterial:
    """Write a CA and a server certificate for localhost / 127.0.0.1 into ``d`` (the
    emulator's throwaway CA, ``crmserver.tls``; the CA's key is never written)."""
    from crmserver.tls import make_throwaway_ca

    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    files = make_throwaway_ca(d, ("localhost", "127.0.0.1"))
    return TlsMaterial(Path(files.ca), Path(files.cert), Path(files.key))


# --- Dovecot --------------------------------------------------------------------------------

_users = itertools.count(1)


@dataclass
class DovecotServer:
    root: Path
    imap_port: int
    imaps_port: int
    lmtp_port: int
    tls: TlsMaterial
    password: str = PASSWORD
    host: str = "127.0.0.1"

    def new_user(self, prefix: str = "u") -> str:
        """A fresh, empty mailbox: ``u7-1234@test.example``."""
        return f"{prefix}{next(_users)}-{os.getpid()}@{DOMAIN}"

    def url(self, scheme: str = "imap+insecure") -> str:
        port = self.imaps_port if scheme == "imaps" else self.imap_port
        return f"{scheme}://{self.host}:{port}"

    def deliver(self, user: str, mime: bytes, mail_from: str = "sender@test.example") -> None:
        """Deliver into ``user``'s INBOX the way an MTA would (LMTP)."""
        with smtplib.LMTP(self.host, self.lmtp_port) as lmtp:
            lmtp.sendmail(mail_from, [user], mime)


_DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = trackbox-test-{pid}
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap lmtp
default_internal_user = {internal}
default_login_user = {login}
default_internal_group = {group}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
mail_location = maildir:{root}/mail/%u
mail_fsync = never
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 0
first_valid_gid = 0
imap_capability = +XLIST
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox "Sent Items" {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox "Deleted Items" {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Outbox {{
    auto = subscribe
  }}
}}
service imap-login {{
  # High-performance mode, as production servers run: one login process serves every
  # connection (the default forks one per connection, ~10 ms before the greeting).
  service_count = 0
  process_min_avail = 1
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service imap {{
  # Every mailbox here belongs to one system user, so one IMAP process may serve several
  # sessions, as on production servers with virtual users: a login is then handed to a
  # running process (~1 ms) instead of one that must first start up (~2.3 ms).
  service_count = 0
  client_limit = 10
  process_min_avail = 2
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@pytest.fixture(scope="session")
def dovecot(tls_material: TlsMaterial) -> Iterator[DovecotServer]:
    """A private Dovecot with IMAP (STARTTLS), IMAPS and LMTP on loopback."""
    binary = require_binary("dovecot", "dovecot-imapd dovecot-lmtpd")
    server, proc = start_dovecot(binary, tls_material)
    try:
        yield server
    finally:
        stop_dovecot(server, proc)


def start_dovecot(
    binary: str, tls: TlsMaterial, extra_conf: str = ""
) -> tuple[DovecotServer, subprocess.Popen[bytes]]:
    """Start Dovecot with its own config in a new temporary directory (also used by
    ``bench/mail_sync.py``); ``extra_conf`` is appended (``{root}`` is that directory).
    Raises ``RuntimeError`` (or fails the test) if it does not come up."""
    root = Path(tempfile.mkdtemp(prefix="trackbox-dovecot-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        uid, gid, internal, login, group = "nobody", "nogroup", "dovecot", "dovenull", "dovecot"
    else:
        import grp
        import pwd

        uid = internal = login = pwd.getpwuid(os.geteuid()).pw_name
        gid = group = grp.getgrgid(os.getegid()).gr_name
    (root / "mail").mkdir()
    (root / "home").mkdir()
    if os.geteuid() == 0:
        shutil.chown(root / "mail", "nobody", "nogroup")
        shutil.chown(root / "home", "nobody", "nogroup")
    server = DovecotServer(root, free_port(), free_port(), free_port(), tls)
    conf = root / "dovecot.conf"
    conf.write_text(
        _DOVECOT_CONF.format(
            root=root,
            pid=os.getpid(),
            cert=tls.cert_file,
            key=tls.key_file,
            password=PASSWORD,
            uid=uid,
            gid=gid,
            internal=internal,
            login=login,
            group=group,
            imap_port=server.imap_port,
            imaps_port=server.imaps_port,
            lmtp_port=server.lmtp_port,
        )
        + extra_conf.replace("{root}", str(root))
    )
    proc = subprocess.Popen(
        [binary, "-F", "-c", str(conf)],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    for port in (server.imap_port, server.imaps_port, server.lmtp_port):
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            stop_dovecot(server, proc)
            _fail(f"dovecot exited at start-up:\n{out}")
        try:
            wait_for_port(port, "dovecot", root / "dovecot.log")
        except BaseException:
            stop_dovecot(server, proc)
            raise
    return server, proc


def stop_dovecot(server: DovecotServer, proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc)
    shutil.rmtree(server.root, ignore_errors=True)


def _fail(msg: str) -> None:
    """Fail the test (under pytest) or raise (in a benchmark)."""
    if "PYTEST_CURRENT_TEST" in os.environ:
        pytest.fail(msg, pytrace=False)
    raise RuntimeError(msg)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Stop a server started in its own session (``start_new_session=True``): its whole
    process group, politely first."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- SMTP (aiosmtpd relaying into Dovecot over LMTP) ----------------------------------------


@dataclass
class SmtpServer:
    port: int
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    host: str = "127.0.0.1"

    def url(self) -> str:
        return f"smtp+insecure://{self.host}:{self.port}"


class _RelayToLmtp:
    """aiosmtpd handler: hand every message to Dovecot's LMTP, so a send can be read back."""

    def __init__(self, dovecot: DovecotServer, record: SmtpServer) -> None:
        self.dovecot = dovecot
        self.record = record

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        self.record.received.append((envelope.mail_from, list(envelope.rcpt_tos), data))
        local = [r for r in envelope.rcpt_tos if r.lower().endswith("@" + DOMAIN)]
        # One LMTP transaction per recipient: LMTP answers DATA once per recipient, which
        # smtplib's sendmail does not read.
        for rcpt in local:
            try:
                with smtplib.LMTP(self.dovecot.host, self.dovecot.lmtp_port) as lmtp:
                    lmtp.sendmail(envelope.mail_from, [rcpt], data)
            except smtplib.SMTPException as exc:
                return f"451 relay to LMTP failed: {exc}"
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_server(dovecot: DovecotServer) -> Iterator[SmtpServer]:
    from aiosmtpd.controller import Controller

    record = SmtpServer(free_port())
    controller = Controller(_RelayToLmtp(dovecot, record), hostname="127.0.0.1", port=record.port)
    controller.start()
    try:
        yield record
    finally:
        controller.stop()


# --- fake EWS -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ews_server() -> Iterator[Any]:
    """The fake EWS server (``tests/fakes``) on loopback, over per-user Maildirs: Basic and
    Bearer auth, plain HTTP."""
    from tests.fakes.ews_server import FakeEwsServer

    yield from _run_ews(lambda root: FakeEwsServer(root, PASSWORD).start())


@pytest.fixture(scope="session")
def ntlm_accounts() -> Iterator[NtlmAccounts]:
    """The NTLM account file the fake servers' acceptor (pyspnego) reads: ``NTLM_USER_FILE``
    names it for the session (the variable is process-wide), and is restored afterwards."""
    from tests.fakes.ews_auth import NtlmAccounts

    d = Path(tempfile.mkdtemp(prefix="trackbox-ntlm-"))
    before = os.environ.get("NTLM_USER_FILE")
    accounts = NtlmAccounts(d / "ntlm_users")
    os.environ["NTLM_USER_FILE"] = str(accounts.path)
    try:
        yield accounts
    finally:
        if before is None:
            os.environ.pop("NTLM_USER_FILE", None)
        else:
            os.environ["NTLM_USER_FILE"] = before
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def ews_ntlm_server(ntlm_accounts: NtlmAccounts) -> Iterator[FakeEwsServer]:
    """An NTLM-only fake EWS server, as an on-premises Exchange usually is; plain HTTP.
    Accounts: :meth:`FakeEwsServer.add_ntlm_user`."""
    from tests.fakes.ews_server import FakeEwsServer

    yield from _run_ews(
        lambda root: FakeEwsServer(
            root, PASSWORD, schemes=("NTLM",), ntlm_accounts=ntlm_accounts
        ).start()
    )


@dataclass
class ExchangeSite:
    """An on-premises Exchange as a client finds it: the fake EWS server at
    ``https://localhost`` (127.0.0.1:443, NTLM only) answering autodiscover too, and the DNS
    zone clients resolve names in (``localhost`` → 127.0.0.1; add SRV records as needed)."""

    server: FakeEwsServer
    dns: FakeDnsServer
    tls: TlsMaterial


@pytest.fixture
def exchange_site(tls_material: TlsMaterial, ntlm_accounts: NtlmAccounts) -> Iterator[ExchangeSite]:
    """A fresh :class:`ExchangeSite` for one test (port 443 is held only that long)."""
    from tests.fakes.dns_server import FakeDnsServer
    from tests.fakes.ews_server import FakeEwsServer

    def start(root: Path) -> FakeEwsServer:
        server = FakeEwsServer(
            root, PASSWORD, schemes=("NTLM",), ntlm_accounts=ntlm_accounts, host="localhost"
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                return server.start(443, (tls_material.cert_file, tls_material.key_file))
            except PermissionError as exc:
                missing(
                    f"cannot listen on 127.0.0.1:443 for the autodiscover tests ({exc}): "
                    "run as root (as CI does) or lower "
                    "net.ipv4.ip_unprivileged_port_start"
                )
            except OSError as exc:  # another test run holds it for a moment
                if time.monotonic() > deadline:
                    missing(f"127.0.0.1:443 stayed busy for 10 s ({exc})")
                time.sleep(0.1)

    dns = FakeDnsServer().start()
    dns.add("localhost", "A", "127.0.0.1")
    try:
        for server in _run_ews(start):
            yield ExchangeSite(server, dns, tls_material)
    finally:
        dns.stop()


def _run_ews(start: Any) -> Iterator[Any]:
    """Start a fake EWS server over a new temporary directory, watch its ``problems`` (see
    :func:`_ews_requests_understood`), and tear it down."""
    root = Path(tempfile.mkdtemp(prefix="trackbox-ews-"))
    try:
        server = start(root)  # listening once start() returns
        _running_ews.append(server)
        try:
            yield server
        finally:
            _running_ews.remove(server)
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


_running_ews: list[Any] = []


@pytest.fixture(autouse=True)
def _ews_requests_understood() -> Iterator[None]:
    """A test that made the fake EWS server see a request it does not understand fails."""
    yield
    problems: list[str] = []
    for server in _running_ews:
        problems += server.problems
        server.problems.clear()
    if problems:
        pytest.fail("fake EWS server did not understand: " + "; ".join(problems), pytrace=False)
