"""EWS sign-in the way an on-premises Exchange asks for it: NTLM, and autodiscover.

exchangelib talks, unchanged, to the fake EWS server: NTLM is verified by a real acceptor
(pyspnego), autodiscover runs exchangelib's own steps against ``https://localhost`` on port 443
(certificate from the test CA, trusted through ``REQUESTS_CA_BUNDLE``) and a DNS server on
loopback that exchangelib is pointed at through its documented resolver settings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import exchangelib.autodiscover
import exchangelib.protocol
import pytest
import requests
from exchangelib.autodiscover import Autodiscovery

from core.mail import MailAuthError, MailUnavailable, open_backend
from core.mail.ews import EwsBackend
from tests.plugins.mailservers import ExchangeSite

from .helpers import Replica, make_message

if TYPE_CHECKING:
    from tests.fakes.ews_server import FakeEwsServer

DOMAIN = "CORP"


@pytest.fixture(autouse=True)
def _fresh_exchangelib() -> Iterator[None]:
    """exchangelib caches autodiscover results (also on disk) and protocols per endpoint and
    credentials: one test's sign-in must not stand in for another's."""
    exchangelib.autodiscover.clear_cache()
    exchangelib.protocol.close_connections()
    yield
    exchangelib.autodiscover.clear_cache()
    exchangelib.protocol.close_connections()


@pytest.fixture
def site(exchange_site: ExchangeSite, monkeypatch: pytest.MonkeyPatch) -> ExchangeSite:
    """The Exchange site, with exchangelib resolving names in its DNS zone and trusting its CA."""
    monkeypatch.setattr(Autodiscovery, "DNS_RESOLVER_KWARGS", {"configure": False})
    monkeypatch.setattr(
        Autodiscovery,
        "DNS_RESOLVER_ATTRS",
        {"nameservers": ["127.0.0.1"], "port": exchange_site.dns.port, "timeout": 2},
    )
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(exchange_site.tls.ca_file))
    return exchange_site


def _ntlm_user(server: FakeEwsServer, name: str, mailbox: str | None = None) -> tuple[str, str]:
    """A new NTLM account ``CORP\\name`` with its own mailbox; (principal, mailbox)."""
    mailbox = mailbox or server.new_user(name)
    principal = f"{DOMAIN}\\{mailbox.split('@')[0]}"
    server.add_ntlm_user(principal, server.password, mailbox)
    return principal, mailbox


# --- NTLM ------------------------------------------------------------------------------------


def test_ntlm_lists_syncs_and_fetches(ews_ntlm_server) -> None:
    server = ews_ntlm_server
    principal, mailbox = _ntlm_user(server, "alex")
    before = len(server.requests)
    with open_backend(
        server.url(), user=principal, password=server.password, email=mailbox, auth_type="ntlm"
    ) as b:
        assert {"Inbox", "Sent Items"} <= {f.path for f in b.folders()}
        ref = b.append("Inbox", make_message(1))
        rep = Replica()
        rep.sync(b, "Inbox")
        assert list(rep.by_msgid()) == ["<msg-1@fabrikam.example>"]
        assert b"Message-ID: <msg-1@fabrikam.example>" in b.fetch(ref)
    # A real handshake, checked by the acceptor, authenticating connections, not requests.
    logins = server.auth_log.signins.count(("ntlm", principal))
    requests_made = len(server.requests) - before
    assert 1 <= logins <= 2 < requests_made, (logins, server.requests[before:])


@pytest.mark.parametrize("upn", [False, True], ids=["domain-user", "upn"])
def test_ntlm_user_forms(ews_ntlm_server, upn: bool) -> None:
    """``CORP\\user`` as Windows writes it, or the UPN (exchangelib sends ``\\user@domain``)."""
    server = ews_ntlm_server
    mailbox = server.new_user("upn" if upn else "dom")
    principal = mailbox if upn else f"{DOMAIN}\\{mailbox.split('@')[0]}"
    server.add_ntlm_user(principal, server.password, mailbox)
    before = len(server.requests)
    b = EwsBackend(
        endpoint=server.ews_url(),
        user=principal,
        password=server.password,
        email=mailbox,
        auth_type="ntlm",
        version=None,
    )  # and a version probe
    with b:
        assert b.folder("inbox").path == "Inbox"
        assert b.account.version.build.major_version == 15  # from the probe's SOAP header
    assert ("ntlm", principal) in server.auth_log.signins
    assert server.requests[before] == "ConvertId"  # exchangelib's version probe


def test_ntlm_wrong_password_is_an_auth_error(ews_ntlm_server) -> None:
    server = ews_ntlm_server
    principal, mailbox = _ntlm_user(server, "wrongpw")
    before = len(server.auth_log.refusals)
    with (
        open_backend(
            server.url(),
            user=principal,
            password="not-" + server.password,
            email=mailbox,
            auth_type="ntlm",
        ) as b,
        pytest.raises(MailAuthError) as err,
    ):
        b.folders()
    assert "Invalid credentials" in err.value.server_says
    assert "offers" not in err.value.server_says  # the scheme was right, the password not
    assert any("Invalid NTLM response" in r for r in server.auth_log.refusals[before:])
    assert ("ntlm", principal) not in server.auth_log.signins


def test_basic_against_an_ntlm_only_server_says_what_it_offers(ews_ntlm_server) -> None:
    server = ews_ntlm_server
    _, mailbox = _ntlm_user(server, "basic")
    before = len(server.auth_log.refusals)
    with (
        open_backend(server.url(), user=mailbox, password=server.password, auth_type="basic") as b,
        pytest.raises(MailAuthError) as err,
    ):
        b.folders()
    assert "the server offers NTLM, not Basic" in err.value.server_says
    assert any(r.startswith("basic: scheme not offered") for r in server.auth_log.refusals[before:])


def test_the_mailbox_url_says_auth_and_mailbox(ews_ntlm_server) -> None:
    """What a profile holds: ``?auth=`` and ``?mailbox=`` on the URL, a Windows sign-in name."""
    from core.mail import MailProtocolError

    server = ews_ntlm_server
    principal, mailbox = _ntlm_user(server, "urlopts")
    with open_backend(
        f"{server.url()}?auth=ntlm&mailbox={mailbox}", user=principal, password=server.password
    ) as b:
        assert b.email == mailbox
        assert "Inbox" in {f.path for f in b.folders()}
    assert ("ntlm", principal) in server.auth_log.signins
    with (
        open_backend(f"{server.url()}?auth=basic", user=mailbox, password=server.password) as b,
        pytest.raises(MailAuthError) as err,
    ):
        b.folders()
    assert "the server offers NTLM, not Basic" in err.value.server_says
    with pytest.raises(MailProtocolError) as err:
        open_backend(server.url(), user=principal, password=server.password)
    assert "?mailbox=you@example.com" in err.value.server_says
    with pytest.raises(MailProtocolError) as err:
        open_backend(f"{server.url()}?auth=kerberos", user=mailbox, password="x")
    assert "expected one of ntlm, basic" in err.value.server_says


# --- autodiscover ----------------------------------------------------------------------------


def test_autodiscover_finds_ews_from_the_address(site: ExchangeSite) -> None:
    """``alex@localhost``: step 1, ``https://localhost/autodiscover/autodiscover.svc``."""
    server = site.server
    principal, mailbox = _ntlm_user(server, "alex", "alex@localhost")
    server.add_autodiscover(mailbox, "Alex Wu")
    with open_backend(f"ews+autodiscover:{mailbox}", user=principal, password=server.password) as b:
        assert isinstance(b, EwsBackend)
        assert b.account.protocol.service_endpoint == "https://localhost/EWS/Exchange.asmx"
        b.append("Inbox", make_message(1))
        rep = Replica()
        rep.sync(b, "Inbox")
        assert list(rep.by_msgid()) == ["<msg-1@fabrikam.example>"]
    log = server.http_log
    asked = log.index("POST /autodiscover/autodiscover.svc -> 200 GetUserSettings")
    assert log[0] == "POST /autodiscover/autodiscover.svc -> 401 offer"  # auth type probe
    assert "POST /autodiscover/autodiscover.svc -> 401 NTLM challenge" in log[:asked]
    assert log[asked + 1] == "POST /EWS/Exchange.asmx -> 401 offer"  # EWS auth type probe
    assert site.dns.queries[0] == ("localhost", "A")


def test_autodiscover_through_a_dns_srv_record(site: ExchangeSite) -> None:
    """``bo@corp.test``: no host ``corp.test`` nor ``autodiscover.corp.test``; the SRV record
    ``_autodiscover._tcp.corp.test`` names ``localhost:443`` (step 4)."""
    server = site.server
    site.dns.add("_autodiscover._tcp.corp.test", "SRV", "10 10 443 localhost.")
    principal, mailbox = _ntlm_user(server, "bo", "bo@corp.test")
    server.add_autodiscover(mailbox)
    with open_backend(f"ews+autodiscover:{mailbox}", user=principal, password=server.password) as b:
        assert b.folder("inbox").path == "Inbox"
    assert site.dns.asked("A")[:2] == ["corp.test", "autodiscover.corp.test"]
    assert site.dns.asked("SRV") == ["_autodiscover._tcp.corp.test"]
    assert server.http_log[0] == "HEAD /autodiscover/autodiscover.svc -> 401 offer"
    assert "POST /autodiscover/autodiscover.svc -> 200 GetUserSettings" in server.http_log


def test_autodiscover_wrong_password_is_an_auth_error(site: ExchangeSite) -> None:
    server = site.server
    principal, mailbox = _ntlm_user(server, "carla", "carla@localhost")
    server.add_autodiscover(mailbox)
    with pytest.raises(MailAuthError) as err:
        open_backend(f"ews+autodiscover:{mailbox}", user=principal, password="wrong")
    assert "autodiscover" in err.value.server_says
    assert any("Invalid NTLM response" in r for r in server.auth_log.refusals)


def test_autodiscover_for_an_address_without_a_mailbox_is_refused(site: ExchangeSite) -> None:
    """The server signs the user in, but has no mailbox for the address (a typo):
    GetUserSettings answers ``InvalidUser``."""
    principal, _ = _ntlm_user(site.server, "gina", "gina@localhost")
    with pytest.raises(MailAuthError) as err:
        open_backend(
            "ews+autodiscover:gina.typo@localhost", user=principal, password=site.server.password
        )
    assert "Invalid user: 'gina.typo@localhost'" in err.value.server_says
    assert site.server.http_log[-1] == "POST /autodiscover/autodiscover.svc -> 200 GetUserSettings"


def test_autodiscover_without_a_service_is_unavailable_and_says_what_to_do(
    site: ExchangeSite,
) -> None:
    start = time.monotonic()
    with pytest.raises(MailUnavailable) as err:
        open_backend(
            "ews+autodiscover:dana@nothing-here.invalid", user=f"{DOMAIN}\\dana", password="pw"
        )
    assert time.monotonic() - start < 5
    assert "nothing-here.invalid" in err.value.detail
    assert "ews://host/EWS/Exchange.asmx" in err.value.detail
    assert "AutoDiscoverFailed" in err.value.server_says
    assert site.dns.asked("SRV") == ["_autodiscover._tcp.nothing-here.invalid"]
    assert site.server.http_log == []


def test_autodiscover_does_not_trust_an_unknown_certificate(
    site: ExchangeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the test CA, the TLS handshake fails and no credentials are sent."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    principal, mailbox = _ntlm_user(site.server, "eve", "eve@localhost")
    site.server.add_autodiscover(mailbox)
    with pytest.raises(MailUnavailable):
        open_backend(f"ews+autodiscover:{mailbox}", user=principal, password=site.server.password)
    assert site.server.auth_log.signins == [] and site.server.http_log == []


def test_the_autodiscover_fake_fails_on_requests_it_does_not_understand(site: ExchangeSite) -> None:
    from requests_ntlm import HttpNtlmAuth

    server = site.server
    principal, _ = _ntlm_user(server, "frank", "frank@localhost")
    ca = str(site.tls.ca_file)
    pox = requests.post(
        "https://localhost/autodiscover/autodiscover.xml", data=b"<x/>", verify=ca, timeout=5
    )  # the older POX protocol: not implemented
    assert pox.status_code == 404
    envelope = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:wsa="http://www.w3.org/2005/08/addressing"><s:Header><wsa:Action>'
        "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetDomainSettings"
        "</wsa:Action><wsa:To>https://localhost/autodiscover/autodiscover.svc</wsa:To>"
        "</s:Header><s:Body/></s:Envelope>"
    )
    soap = requests.post(
        "https://localhost/autodiscover/autodiscover.svc",
        data=envelope,
        auth=HttpNtlmAuth(principal, server.password),
        verify=ca,
        timeout=5,
    )
    assert soap.status_code == 500 and b"GetDomainSettings" in soap.content
    assert server.problems[0] == "POST /autodiscover/autodiscover.xml"
    assert "GetDomainSettings" in server.problems[1] and len(server.problems) == 2
    server.problems.clear()  # handled here: do not fail the test in teardown
