"""Windows sign-in (NTLM / Negotiate) to an on-premises CRM: ``NegotiateAuth`` through a loopback
front end that demands it the way IIS does (``tests/fakes/ntlm_proxy.py``, pyspnego's acceptor)
and forwards to the emulator."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from core.crm import CrmAuthError, CrmClient
from core.crm.auth import NegotiateAuth
from core.domain import demo_data
from crmserver import RunningServer
from tests.fakes.ews_auth import NtlmAccounts
from tests.fakes.ntlm_proxy import NtlmProxy, running_proxy
from tests.plugins.crm import crm_http_client
from tests.plugins.mailservers import TlsMaterial

PASSWORD = "Winter-2026!ntlm"


def _me(crm_server: RunningServer) -> str:
    with crm_http_client(crm_server) as client:
        return str(client.get("WhoAmI").json()["UserId"]).lower()


@pytest.fixture
def proxy(crm_server: RunningServer, ntlm_accounts: NtlmAccounts) -> Iterator[NtlmProxy]:
    with running_proxy(crm_server.url, ntlm_accounts) as running:
        running.add_user("CONTOSO\\alexm", PASSWORD, demo_data.ME.email, demo_data.DEMO_PASSWORD)
        yield running


def test_ntlm_signs_in_once_per_connection(proxy: NtlmProxy, crm_server: RunningServer) -> None:
    with CrmClient(proxy.url, NegotiateAuth("CONTOSO\\alexm", PASSWORD)) as crm:
        first = crm.who_am_i()
        crm.who_am_i()
        rows = list(crm.query("accounts", select=["name"], top=2))
    assert first.user_id == _me(crm_server)
    assert rows
    assert proxy.auth_log.signins == [("ntlm", "CONTOSO\\alexm")]
    # The handshake, then the connection stays signed in (no header, no 401).
    assert proxy.http_log[:3] == [
        "GET /api/data/v9.2/WhoAmI -> 401 offer",
        "GET /api/data/v9.2/WhoAmI -> 401 NTLM challenge",
        "GET /api/data/v9.2/WhoAmI -> 200",
    ]
    assert proxy.http_log[3:] == [
        "GET /api/data/v9.2/WhoAmI -> 200",
        "GET /api/data/v9.2/accounts -> 200",
    ]


def test_domain_given_apart_and_a_write_through_the_handshake(proxy: NtlmProxy) -> None:
    auth = NegotiateAuth("alexm", PASSWORD, domain="CONTOSO", protocol="ntlm")
    assert auth.user == "CONTOSO\\alexm"
    with CrmClient(proxy.url, auth) as crm:
        new_id = crm.create("accounts", {"name": "Windows sign-in Ltd"})  # body sent 3 times
        assert crm.get("accounts", new_id, select=["name"])["name"] == "Windows sign-in Ltd"
        crm.delete("accounts", new_id)


def test_wrong_password_is_an_auth_error_and_never_logged(
    proxy: NtlmProxy, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wrong-pass-4711"
    auth = NegotiateAuth("CONTOSO\\alexm", wrong)
    assert wrong not in repr(auth) and wrong not in auth.describe()
    caplog.set_level(logging.DEBUG)
    with CrmClient(proxy.url, auth) as crm, pytest.raises(CrmAuthError) as info:
        crm.who_am_i()
    assert info.value.status == 401
    assert proxy.auth_log.signins == []
    assert proxy.auth_log.refusals  # the acceptor refused the NTLMv2 response
    assert wrong not in caplog.text and wrong not in str(info.value)


def test_unknown_user_is_refused(proxy: NtlmProxy) -> None:
    with (
        CrmClient(proxy.url, NegotiateAuth("CONTOSO\\nobody", PASSWORD)) as crm,
        pytest.raises(CrmAuthError),
    ):
        crm.who_am_i()


def test_negotiate_over_https_with_channel_binding(
    crm_server: RunningServer, ntlm_accounts: NtlmAccounts, tls_material: TlsMaterial
) -> None:
    """SPNEGO (NTLM inside) over TLS: the acceptor checks the tls-server-end-point binding,
    so this passes only if the client computed it from the server's certificate."""
    tls = (tls_material.cert_file, tls_material.key_file)
    with running_proxy(crm_server.url, ntlm_accounts, scheme="Negotiate", tls=tls) as proxy:
        proxy.add_user("CONTOSO\\dana", PASSWORD, demo_data.ME.email, demo_data.DEMO_PASSWORD)
        assert proxy.url.startswith("https://")
        auth = NegotiateAuth("CONTOSO\\dana", PASSWORD)
        with CrmClient(proxy.url, auth, verify=str(tls_material.ca_file)) as crm:
            assert crm.who_am_i().user_id == _me(crm_server)
        assert proxy.auth_log.signins == [("negotiate", "CONTOSO\\dana")]
        # A client that offers only NTLM gets nowhere with a Negotiate-only server.
        only_ntlm = NegotiateAuth("CONTOSO\\dana", PASSWORD, protocol="ntlm")
        with (
            CrmClient(proxy.url, only_ntlm, verify=str(tls_material.ca_file)) as crm,
            pytest.raises(CrmAuthError),
        ):
            crm.who_am_i()


def test_ntlm_over_https_needs_the_right_binding(
    crm_server: RunningServer, ntlm_accounts: NtlmAccounts, tls_material: TlsMaterial
) -> None:
    tls = (tls_material.cert_file, tls_material.key_file)
    with running_proxy(crm_server.url, ntlm_accounts, tls=tls) as proxy:
        proxy.add_user("CONTOSO\\erin", PASSWORD, demo_data.ME.email, demo_data.DEMO_PASSWORD)
        with CrmClient(
            proxy.url, NegotiateAuth("CONTOSO\\erin", PASSWORD), verify=str(tls_material.ca_file)
        ) as crm:
            assert crm.who_am_i().user_id
        # The same handshake by hand without a binding: Extended Protection refuses it.
        import base64

        import spnego

        with httpx.Client(verify=tls_material.client_context()) as http:
            first = http.get(proxy.url + "/api/data/v9.2/WhoAmI")
            assert first.status_code == 401
            ctx = spnego.client("CONTOSO\\erin", PASSWORD, hostname="127.0.0.1", protocol="ntlm")
            negotiate = base64.b64encode(ctx.step() or b"").decode()
            challenge = http.get(
                proxy.url + "/api/data/v9.2/WhoAmI", headers={"Authorization": f"NTLM {negotiate}"}
            )
            token = base64.b64decode(challenge.headers["WWW-Authenticate"].split(" ", 1)[1])
            answer = base64.b64encode(ctx.step(token) or b"").decode()
            final = http.get(
                proxy.url + "/api/data/v9.2/WhoAmI", headers={"Authorization": f"NTLM {answer}"}
            )
        assert final.status_code == 401
        assert any("binding" in r.lower() for r in proxy.auth_log.refusals)
