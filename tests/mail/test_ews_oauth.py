"""EWS with an OAuth token (``?auth=oauth``, issue 16): MSAL signs in once at the emulator's
authority, consenting to Exchange's ``EWS.AccessAsUser.All``, and the EWS backend (exchangelib,
unchanged) takes its tokens from ``MicrosoftSignIn.token_source``; the fake EWS server checks
each token as Exchange Online does (signature against the authority's JWKS, issuer, expiry,
``aud`` https://outlook.office365.com, ``scp``). NTLM and Basic are ``tests/mail/test_ews*.py``.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from core.crm.errors import SignInRequired
from core.crm.signin import graph_scopes
from core.domain import demo_data
from core.mail import TRACKED_CATEGORY, MailAuthError, MailProtocolError, open_backend
from core.mail.ews import EwsBackend
from core.mail.ews_auth import EWS_ONLINE, ews_scope
from crmserver import TlsFiles
from crmserver.oauth_clients import parse_scope
from crmserver.oauth_errors import OAuthError
from tests.fakes import ews_auth
from tests.plugins.ews_oauth import EWS_SCOPE, EwsOAuthSite, signed_in, start_oauth_ews
from tests.plugins.mailservers import TlsMaterial
from tests.signin.authority import authority_server, tenant_authority

from .helpers import Replica, make_message

ME = demo_data.ME.email
ACTIVITY = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def _open(url: str, token: object) -> EwsBackend:
    b = open_backend(url + "?auth=oauth", user=ME, token=token)
    assert isinstance(b, EwsBackend)
    return b


def _claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _post_with(url: str, token: str, ca_file: Path) -> httpx.Response:
    """A bare EWS request with exactly this bearer token."""
    endpoint = url.replace("ews://", "https://")
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file))) as http:
        return http.post(endpoint, headers={"Authorization": f"Bearer {token}"}, content=b"")


# --- the authority issues EWS tokens ---------------------------------------------------------


def test_authority_issues_ews_tokens_from_the_same_sign_in(ews_oauth_site: EwsOAuthSite) -> None:
    sign_in = ews_oauth_site.signed_in()
    ews = _claims(sign_in.token_for([EWS_SCOPE]))
    assert ews["aud"] == EWS_ONLINE and ews["scp"] == "EWS.AccessAsUser.All"
    assert ews["preferred_username"] == ME
    default = _claims(sign_in.token_for([f"{EWS_ONLINE}/.default"]))
    assert default["aud"] == EWS_ONLINE and default["scp"] == "EWS.AccessAsUser.All"
    crm = _claims(sign_in.token())
    assert crm["aud"] != EWS_ONLINE and crm["scp"] == "user_impersonation"


def test_authority_knows_only_ews_permission_and_only_at_entra() -> None:
    root = "https://crm.example"
    scope = parse_scope(f"openid {EWS_SCOPE} {root}/user_impersonation", root, graph=True)
    assert scope.resources == ("ews", "crm") and scope.scp("ews") == "EWS.AccessAsUser.All"
    with pytest.raises(OAuthError) as unknown:
        parse_scope(f"{EWS_ONLINE}/Mail.Read", root, graph=True)
    assert unknown.value.error == "invalid_scope"
    with pytest.raises(OAuthError) as adfs:
        parse_scope(EWS_SCOPE, root, graph=False)
    assert adfs.value.error == "invalid_resource"


# --- the backend -----------------------------------------------------------------------------


def test_signed_in_mailbox_syncs_fetches_and_tracks(ews_oauth_site: EwsOAuthSite) -> None:
    server = ews_oauth_site.server
    box = server.mailbox(ME)
    item = box.create("Inbox", make_message(1), is_read=False)
    sign_in = ews_oauth_site.signed_in()
    with _open(server.url(), sign_in.token_source([EWS_SCOPE])) as b:
        rep = Replica()
        rep.sync(b, "Inbox")
        (ref,) = rep.headers
        assert rep.headers[ref].subject == "Test message 1"
        assert b"Subject: Test message 1" in b.fetch(ref)
        b.set_tracked(ref, ACTIVITY)
    props = box.props_for(item.id)
    assert props.crmid == ACTIVITY and TRACKED_CATEGORY in props.categories
    assert ("bearer", ME) in server.auth_log.signins and server.auth_log.refusals == []


def test_graph_or_crm_token_is_refused(ews_oauth_site: EwsOAuthSite) -> None:
    authority = ews_oauth_site.authority
    for token in (authority.from_authority(), authority.crm()):
        with (
            _open(ews_oauth_site.server.url(), lambda t=token: t) as b,
            pytest.raises(MailAuthError),
        ):
            b.folders()
    refusals = ews_oauth_site.server.auth_log.refusals
    # each refused once: the source gave the same token again, so no second try
    assert sum("InvalidAudienceError" in r for r in refusals) == 2, refusals


def test_ews_token_without_the_permission_is_refused(ews_oauth_site: EwsOAuthSite) -> None:
    token = ews_oauth_site.authority.graph(scopes=["Mail.Read"], audience=EWS_ONLINE)
    with _open(ews_oauth_site.server.url(), lambda: token) as b, pytest.raises(MailAuthError):
        b.folders()
    assert any("lacks EWS.AccessAsUser.All" in r for r in ews_oauth_site.server.auth_log.refusals)


def test_sign_in_without_ews_consent_is_an_auth_error_with_its_words(
    ews_oauth_site: EwsOAuthSite,
) -> None:
    sign_in = ews_oauth_site.signed_in(scopes=graph_scopes("Mail.ReadWrite"))
    source = sign_in.token_source([EWS_SCOPE])
    with pytest.raises(SignInRequired) as direct:
        source()
    with _open(ews_oauth_site.server.url(), source) as b, pytest.raises(MailAuthError) as err:
        b.folders()
    assert str(direct.value) in str(err.value) and "65001" in str(err.value)
    assert ews_oauth_site.server.requests == []  # nothing reached Exchange without a token


def test_refused_token_is_renewed_once_and_the_call_repeated(
    ews_oauth_site: EwsOAuthSite,
) -> None:
    """A token Exchange refuses (here: expired though the cache thought it good): the backend
    asks the source to renew and repeats the operation once."""
    sign_in = ews_oauth_site.signed_in()
    real = sign_in.token_source([EWS_SCOPE])
    stale = ews_oauth_site.authority.graph(
        scopes=["EWS.AccessAsUser.All"], audience=EWS_ONLINE, lifetime=-3600
    )

    class Source:
        renewed = 0

        def __call__(self) -> str:
            return real() if self.renewed else stale

        def renew_next(self) -> None:
            self.renewed += 1
            real.renew_next()

    source = Source()
    with _open(ews_oauth_site.server.url(), source) as b:
        assert "Inbox" in {f.path for f in b.folders()}
    assert source.renewed == 1
    assert any("ExpiredSignatureError" in r for r in ews_oauth_site.server.auth_log.refusals)


def test_token_refused_after_renewal_is_an_auth_error(ews_oauth_site: EwsOAuthSite) -> None:
    crm = ews_oauth_site.authority.crm()
    calls: list[str] = []

    def source() -> str:
        calls.append("asked")
        return crm

    with _open(ews_oauth_site.server.url(), source) as b, pytest.raises(MailAuthError):
        b.folders()
    assert 1 <= len(calls) <= 3  # asked, asked again after the 401: no loop


def test_oauth_needs_a_token_source_and_https(ews_oauth_site: EwsOAuthSite) -> None:
    with pytest.raises(MailAuthError):
        open_backend(ews_oauth_site.server.url() + "?auth=oauth", user=ME)
    plain = ews_oauth_site.server.url().replace("ews://", "ews+http://")
    with pytest.raises(MailProtocolError, match="HTTPS"):
        open_backend(plain + "?auth=oauth", user=ME, token=lambda: "x")


def test_ews_scope_of_an_on_premises_server() -> None:
    assert ews_scope() == "https://outlook.office365.com/EWS.AccessAsUser.All"
    assert ews_scope("https://mail.example.com/") == "https://mail.example.com/EWS.AccessAsUser.All"


# --- expiry, with an authority whose tokens live 3 s -----------------------------------------


@pytest.fixture
def short_lived(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[tuple[object, str]]:
    with authority_server(
        tmp_path / "short.db", crm_tls, access_token_lifetime=3, clock_skew=0
    ) as server:
        yield server, tenant_authority(server)


def test_expired_token_is_renewed_silently(
    short_lived: tuple[object, str],
    tls_material: TlsMaterial,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, authority = short_lived
    monkeypatch.setattr(ews_auth, "CLOCK_SKEW", 0)  # the fake's leeway, not a minute here
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_material.ca_file))
    started = start_oauth_ews(server, authority, tls_material)  # type: ignore[arg-type]
    ews = next(started)
    sign_in = signed_in(server, authority)  # type: ignore[arg-type]
    try:
        ews.mailbox(ME).create("Inbox", make_message(2), is_read=True)
        source = sign_in.token_source([EWS_SCOPE])
        first = source()
        with _open(ews.url(), source) as b:
            rep = Replica()
            rep.sync(b, "Inbox")
            time.sleep(4.5)  # past the 3 s lifetime
            stale = _post_with(ews.url(), first, tls_material.ca_file)
            assert stale.status_code == 401  # the fake checks expiry
            assert any("ExpiredSignatureError" in r for r in ews.auth_log.refusals)
            (ref,) = rep.headers
            b.set_tracked(ref, ACTIVITY)  # renewed, without the user
        assert source() != first
        assert ews.mailbox(ME).props_for(ref.uid).crmid == ACTIVITY
    finally:
        sign_in.close()
        started.close()
