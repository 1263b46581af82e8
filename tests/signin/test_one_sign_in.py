"""One sign-in for mail and CRM (issue 16): MSAL for Python, unchanged, signs in once at the
emulator's authority — consenting to the CRM and to Microsoft Graph's mail permissions — and
the same account and token cache then give a token the CRM accepts and a token the fake Graph
server accepts; the Graph token renews silently after it expired. (Protocol details are in
``tests/crmserver/test_oidc_resources.py``.)"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from core.crm import CrmClient
from core.crm.errors import SignInRequired
from core.crm.signin import GRAPH, GRAPH_MAIL_SCOPES, MicrosoftSignIn, graph_scopes
from core.crm.token_cache import MemoryCacheStore, PersistentTokenCache
from crmserver import RunningServer, TlsFiles
from tests.fakes import graph_auth
from tests.fakes.graph_server import FakeGraphServer
from tests.plugins.graph import GraphSignIns, GraphTokens
from tests.signin.authority import (
    ME,
    PASSWORD,
    authority_server,
    ca_of,
    context_of,
    raw_who_am_i,
    tenant_authority,
    user_id,
)
from tests.signin.pages import approve_device_code, system_browser


def mail_sign_in(server: RunningServer, authority: str | None = None) -> MicrosoftSignIn:
    """A sign-in to the emulator's CRM that also consents to Graph's mail permissions."""
    return MicrosoftSignIn(
        server.url,
        authority=authority or tenant_authority(server),
        verify=ca_of(server),
        cache=PersistentTokenCache(MemoryCacheStore()),
        extra_scopes=GRAPH_MAIL_SCOPES,
    )


def graph_client(server: FakeGraphServer, auth: httpx.Auth | None) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        auth=auth,
        verify=ssl.create_default_context(cafile=server.ca_file),
        timeout=60,
    )


def get_with(server: FakeGraphServer, token: str, path: str) -> httpx.Response:
    """A request with exactly this bearer token."""
    with graph_client(server, None) as graph:
        return graph.get(path, headers={"Authorization": f"Bearer {token}"})


def claims_of(token: str) -> dict[str, object]:
    """The claims, unverified: the servers that take the token verify them."""
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_one_browser_sign_in_gives_crm_and_graph_tokens(
    crm_https: RunningServer, graph_server: FakeGraphServer
) -> None:
    graph_server.add_mailbox(ME)
    with mail_sign_in(crm_https) as signer:
        with system_browser(ME, PASSWORD, context_of(crm_https)) as browser:
            signed = signer.sign_in_interactive(timeout=30)
        assert browser.errors == [] and len(browser.opened) == 1 and signed.username == ME
        asked = set(parse_qs(urlsplit(browser.opened[0]).query)["scope"][0].split())
        assert {f"{crm_https.url}/user_impersonation", *GRAPH_MAIL_SCOPES} <= asked

        with CrmClient(crm_https.url, signer.bearer_auth(), verify=ca_of(crm_https)) as crm:
            assert crm.who_am_i().user_id == user_id(crm_https)
        source = signer.token_source()
        token = source()
        claims = claims_of(token)
        assert claims["aud"] == GRAPH and claims["scp"] == "Mail.ReadWrite Mail.Send"
        with graph_client(graph_server, source.bearer_auth()) as graph:
            r = graph.get("/me/mailFolders")
        assert r.status_code == 200 and r.json()["value"], r.text
        assert raw_who_am_i(crm_https, token).status_code == 401  # a Graph token is not the CRM's
        assert source() == token  # cached: no new request to the authority


def test_auth_code_sign_in_through_the_graph_fixture(
    graph_sign_in: GraphSignIns, graph_authority: GraphTokens, graph_server: FakeGraphServer
) -> None:
    graph_server.add_mailbox(ME)
    signer = graph_sign_in(ME, ("Mail.ReadWrite", "Mail.Send", "User.Read"))
    token = signer.token_for(graph_scopes("User.Read"))
    assert claims_of(token)["scp"] == "Mail.ReadWrite Mail.Send User.Read"
    with graph_client(graph_server, signer.token_source().bearer_auth()) as graph:
        assert graph.get("/me/mailFolders").status_code == 200
    read_only = graph_authority.from_authority(ME, ("Mail.Read",))
    assert claims_of(read_only)["scp"] == "Mail.Read"
    r = get_with(graph_server, read_only, "/me/mailFolders")
    assert r.status_code == 200, r.text


def test_graph_needs_the_consent_of_the_sign_in(
    crm_https: RunningServer, graph_sign_in: GraphSignIns
) -> None:
    with MicrosoftSignIn(
        crm_https.url, authority=tenant_authority(crm_https), verify=ca_of(crm_https)
    ) as crm_only:
        with system_browser(ME, PASSWORD, context_of(crm_https)):
            crm_only.sign_in_interactive(timeout=30)
        assert raw_who_am_i(crm_https, crm_only.token()).status_code == 200
        with pytest.raises(SignInRequired) as info:
            crm_only.token_for(GRAPH_MAIL_SCOPES)
        assert info.value.reason == "invalid_grant"
        assert raw_who_am_i(crm_https, crm_only.token()).status_code == 200  # still signed in
    signer = graph_sign_in(ME, ("Mail.Read",))
    with pytest.raises(SignInRequired):
        signer.token_for(GRAPH_MAIL_SCOPES)  # Mail.Send was never consented to
    with pytest.raises(SignInRequired) as nobody:
        MicrosoftSignIn(crm_https.url, authority=tenant_authority(crm_https)).token_for(
            GRAPH_MAIL_SCOPES
        )
    assert nobody.value.reason == "no_account"


@contextmanager
def fake_graph_of(
    server: RunningServer, graph_tls: TlsFiles, crm_tls: TlsFiles
) -> Iterator[FakeGraphServer]:
    graph = FakeGraphServer(tenant_authority(server), graph_tls, authority_ca=crm_tls.ca)
    graph.start()
    try:
        yield graph
    finally:
        graph.stop()
    assert graph.unknown_requests == []


def test_one_device_code_sign_in_gives_crm_and_graph_tokens(
    tmp_path: Path, crm_tls: TlsFiles, graph_tls: TlsFiles
) -> None:
    with (
        authority_server(tmp_path / "device.db", crm_tls) as server,  # a 1 s poll
        fake_graph_of(server, graph_tls, crm_tls) as graph_server,
        mail_sign_in(server) as signer,
    ):
        graph_server.add_mailbox(ME)
        flow = signer.start_device_flow()
        approve = threading.Thread(
            target=approve_device_code,
            args=(flow.verification_uri, flow.user_code, ME, PASSWORD, context_of(server)),
        )
        approve.start()
        assert signer.finish_device_flow(flow).username == ME
        approve.join()
        assert raw_who_am_i(server, signer.token()).status_code == 200
        with graph_client(graph_server, signer.token_source().bearer_auth()) as graph:
            assert graph.get("/me/mailFolders").status_code == 200


def test_graph_token_renews_silently_after_it_expired(
    tmp_path: Path, crm_tls: TlsFiles, graph_tls: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graph_auth, "CLOCK_SKEW", 0)  # the fake's leeway, not a minute here
    with (
        authority_server(
            tmp_path / "short.db", crm_tls, access_token_lifetime=3, clock_skew=0
        ) as short,
        fake_graph_of(short, graph_tls, crm_tls) as graph_server,
        mail_sign_in(short) as signer,
    ):
        graph_server.add_mailbox(ME)
        with system_browser(ME, PASSWORD, context_of(short)):
            signer.sign_in_interactive(timeout=30)
        source = signer.token_source()
        first = source()
        with graph_client(graph_server, source.bearer_auth()) as graph:
            assert graph.get("/me/mailFolders").status_code == 200
            time.sleep(4.5)  # past the 3 s lifetime
            stale = get_with(graph_server, first, "/me/mailFolders")
            assert stale.status_code == 401 and "expired" in stale.text  # the fake checks
            assert graph.get("/me/mailFolders").status_code == 200  # renewed, no user
        assert source() != first
        assert raw_who_am_i(short, signer.token()).status_code == 200
