"""The emulator as an OpenID Connect authority, protocol details over plain HTTP with httpx:
discovery, the 401 challenge, authorization code + PKCE, refresh rotation, revocation,
the device flow, wrong tenants and scopes, disabled users, password guessing, JWKS and
Global Discovery. (MSAL itself signs in over HTTPS in ``test_oidc_msal.py``.)"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from crmserver import RunningServer, Settings, run_in_thread
from crmserver.oauth_clients import DEV_CLIENT_ID
from crmserver.seed import user_id

from .helpers import ME, PRIYA, TOMAS

REDIRECT = "http://localhost:8765/callback"
PASSWORD = "demo"


@dataclass
class Org:
    server: RunningServer
    tenant: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def authority(self) -> str:
        return f"{self.url}/{self.tenant}"

    @property
    def scope(self) -> str:
        return f"{self.url}/user_impersonation offline_access openid profile"

    def token(self, tenant: str | None = None, **form: str) -> httpx.Response:
        return httpx.post(f"{self.url}/{tenant or self.tenant}/oauth2/v2.0/token", data=form)


def tenant_of(server: RunningServer) -> str:
    r = httpx.get(server.api_url + "WhoAmI")
    found = re.search(
        r'authorization_uri="[^"]+/([^/"]+)/oauth2/authorize"', r.headers["www-authenticate"]
    )
    assert found, r.headers
    return found.group(1)


@pytest.fixture
def make_org(tmp_path: Path) -> Iterator[Callable[..., Org]]:
    started: list[RunningServer] = []

    def make(**settings: Any) -> Org:
        db = tmp_path / f"org{len(started)}.db"
        server = run_in_thread(Settings(db_path=db, seed="demo", **settings))
        started.append(server)
        return Org(server, tenant_of(server))

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def org(make_org: Callable[..., Org]) -> Org:
    return make_org()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def auth_params(org: Org, challenge: str | None, **over: str) -> dict[str, str]:
    params = {
        "client_id": DEV_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": org.scope,
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
        "client_info": "1",
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(over)
    return {k: v for k, v in params.items() if v}


def sign_in(
    org: Org, params: dict[str, str], login: str = ME, password: str = PASSWORD
) -> httpx.Response:
    url = f"{org.authority}/oauth2/v2.0/authorize"
    return httpx.post(url, params=params, data={"login": login, "passwd": password})


def redirected(r: httpx.Response, to: str = REDIRECT) -> dict[str, str]:
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert location.startswith(to + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def code_for(org: Org, login: str = ME, **over: str) -> tuple[str, str]:
    verifier, challenge = pkce()
    answer = redirected(sign_in(org, auth_params(org, challenge, **over), login))
    return answer["code"], verifier


def redeem(org: Org, code: str, verifier: str, **over: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": DEV_CLIENT_ID,
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "scope": org.scope,
        "client_info": "1",
    }
    form.update(over)
    return org.token(**{k: v for k, v in form.items() if v})


def signed_in(org: Org, login: str = ME) -> dict[str, Any]:
    r = redeem(org, *code_for(org, login))
    assert r.status_code == 200, r.text
    return dict(r.json())


def refresh(org: Org, token: str) -> httpx.Response:
    return org.token(
        grant_type="refresh_token", client_id=DEV_CLIENT_ID, refresh_token=token, scope=org.scope
    )


def entra_error(r: httpx.Response, status: int, error: str, code: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = dict(r.json())
    assert body["error"] == error, body
    assert body["error_codes"] == [code], body
    assert body["error_description"].startswith(f"AADSTS{code}:")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)
    return body


def who_am_i(org: Org, access_token: str) -> httpx.Response:
    return httpx.get(
        org.server.api_url + "WhoAmI", headers={"Authorization": f"Bearer {access_token}"}
    )


def verified(org: Org, token: str, audience: str) -> dict[str, Any]:
    """The claims of a token checked with PyJWT against the published JWKS."""
    keys = httpx.get(f"{org.authority}/discovery/v2.0/keys").json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == kid))
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=audience,
        issuer=f"{org.url}/{org.tenant}/v2.0",
    )
    return claims


# -- discovery and the challenge ---------------------------------------------------------


def test_discovery_documents_name_every_endpoint(org: Org) -> None:
    for path in ("v2.0/.well-known/openid-configuration", ".well-known/openid-configuration"):
        doc = httpx.get(f"{org.authority}/{path}").json()
        assert doc["issuer"] == f"{org.authority}/v2.0"
        assert doc["authorization_endpoint"] == f"{org.authority}/oauth2/v2.0/authorize"
        assert doc["token_endpoint"] == f"{org.authority}/oauth2/v2.0/token"
        assert doc["device_authorization_endpoint"] == f"{org.authority}/oauth2/v2.0/devicecode"
        assert doc["revocation_endpoint"] == f"{org.authority}/oauth2/v2.0/revoke"
        assert doc["jwks_uri"] == f"{org.authority}/discovery/v2.0/keys"
        assert doc["code_challenge_methods_supported"] == ["S256"]
    shared = httpx.get(f"{org.url}/organizations/v2.0/.well-known/openid-configuration").json()
    assert shared["issuer"] == f"{org.url}/{{tenantid}}/v2.0"
    assert shared["token_endpoint"] == f"{org.url}/organizations/oauth2/v2.0/token"
    adfs = httpx.get(f"{org.url}/adfs/.well-known/openid-configuration").json()
    assert adfs["issuer"] == f"{org.url}/adfs"
    assert adfs["token_endpoint"] == f"{org.url}/adfs/oauth2/token/"
    assert adfs["device_authorization_endpoint"] == f"{org.url}/adfs/oauth2/devicecode"
    stranger = str(uuid.uuid4())
    r = httpx.get(f"{org.url}/{stranger}/v2.0/.well-known/openid-configuration")
    assert entra_error(r, 400, "invalid_tenant", 90002)["error_description"].count(stranger)


def test_unauthenticated_web_api_names_basic_and_the_authority(org: Org) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        r = httpx.get(org.server.api_url + "WhoAmI", headers=headers)
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Basic realm=")
        assert (
            f'Bearer authorization_uri="{org.url}/{org.tenant}/oauth2/authorize", '
            f'resource_id="{org.url}/"'
        ) in challenge
    uuid.UUID(org.tenant)  # a GUID
    restarted = run_in_thread(org.server.settings)
    try:
        assert tenant_of(restarted) == org.tenant  # kept in the database
    finally:
        restarted.stop()


# -- authorization code + PKCE --------------------------------------------------------------


def test_sign_in_page_then_code_then_tokens_verified_with_jwks(org: Org) -> None:
    verifier, challenge = pkce()
    params = auth_params(org, challenge, login_hint=ME)
    page = httpx.get(f"{org.authority}/oauth2/v2.0/authorize", params=params)
    assert page.status_code == 200 and "name='passwd'" in page.text and ME in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    answer = redirected(sign_in(org, params))
    assert answer["state"] == params["state"]
    info = base64.urlsafe_b64decode(answer["client_info"] + "==")
    assert f'"uid": "{user_id(ME)}"' in info.decode() and org.tenant in info.decode()
    r = redeem(org, answer["code"], verifier)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == f"{org.url}/user_impersonation"
    assert body["refresh_token"] and body["client_info"]
    access = verified(org, body["access_token"], org.url)
    assert access["oid"] == user_id(ME) and access["tid"] == org.tenant
    assert access["scp"] == "user_impersonation" and access["azp"] == DEV_CLIENT_ID
    assert access["preferred_username"] == ME and access["jti"]
    assert access["nbf"] <= time.time() < access["exp"]
    id_claims = verified(org, body["id_token"], DEV_CLIENT_ID)
    assert id_claims["nonce"] == params["nonce"] and id_claims["oid"] == user_id(ME)
    assert id_claims["preferred_username"] == ME and id_claims["name"]
    with pytest.raises(jwt.InvalidAudienceError):
        verified(org, body["id_token"], "another-client")
    assert who_am_i(org, body["access_token"]).json()["UserId"] == user_id(ME)


def test_form_post_response_mode(org: Org) -> None:
    verifier, challenge = pkce()
    params = auth_params(org, challenge, response_mode="form_post")
    r = sign_in(org, params)
    assert r.status_code == 200
    assert f"action='{REDIRECT}'" in r.text and "name='code'" in r.text
    assert "form-action http://localhost:8765" in r.headers["content-security-policy"]
    code = re.search(r"name='code' value='([^']+)'", r.text)
    assert code is not None
    assert redeem(org, code.group(1), verifier).status_code == 200


def test_pkce_is_required_and_checked(org: Org) -> None:
    r = httpx.get(f"{org.authority}/oauth2/v2.0/authorize", params=auth_params(org, None))
    answer = redirected(r)
    assert answer["error"] == "invalid_request" and "AADSTS9002325" in answer["error_description"]
    _, challenge = pkce()
    plain = auth_params(org, challenge, code_challenge_method="plain")
    assert (
        redirected(httpx.get(f"{org.authority}/oauth2/v2.0/authorize", params=plain))["error"]
        == "invalid_request"
    )
    code, verifier = code_for(org)
    entra_error(redeem(org, code, pkce()[0]), 400, "invalid_grant", 501481)
    entra_error(redeem(org, code, ""), 400, "invalid_grant", 501481)
    assert redeem(org, code, verifier).status_code == 200


def test_code_is_single_use_and_a_replay_revokes_its_tokens(org: Org) -> None:
    code, verifier = code_for(org)
    first = redeem(org, code, verifier)
    assert first.status_code == 200
    entra_error(redeem(org, code, verifier), 400, "invalid_grant", 54005)
    entra_error(refresh(org, first.json()["refresh_token"]), 400, "invalid_grant", 50173)


def test_code_needs_its_redirect_uri_and_client(make_org: Callable[..., Org]) -> None:
    org = make_org()
    code, verifier = code_for(org)
    r = redeem(org, code, verifier, redirect_uri="http://localhost:8765/other")
    entra_error(r, 400, "invalid_grant", 500112)
    r = redeem(org, code, verifier, client_id="00000000-0000-0000-0000-000000000001")
    entra_error(r, 400, "unauthorized_client", 700016)
    assert redeem(org, code, verifier).status_code == 200


def test_unknown_client_or_redirect_uri_shows_an_error_page(org: Org) -> None:
    url = f"{org.authority}/oauth2/v2.0/authorize"
    _, challenge = pkce()
    cases = [
        (auth_params(org, challenge, client_id=str(uuid.uuid4())), "AADSTS700016"),
        (auth_params(org, challenge, redirect_uri="https://evil.example/cb"), "AADSTS50011"),
        (auth_params(org, challenge, redirect_uri="http://localhost.evil.example/"), "AADSTS50011"),
        (auth_params(org, challenge, redirect_uri="http://user@localhost:1/"), "AADSTS50011"),
    ]
    for params, code in cases:
        for r in (httpx.get(url, params=params), sign_in(org, params)):
            assert r.status_code == 400 and "location" not in r.headers
            assert code in r.text
    for uri in ("http://localhost:1234/", "http://127.0.0.1:5555", "http://localhost"):
        page = httpx.get(url, params=auth_params(org, challenge, redirect_uri=uri))
        assert page.status_code == 200, (uri, page.text)


def test_wrong_tenant_at_authorize_and_token(org: Org) -> None:
    stranger = str(uuid.uuid4())
    _, challenge = pkce()
    page = httpx.get(
        f"{org.url}/{stranger}/oauth2/v2.0/authorize", params=auth_params(org, challenge)
    )
    assert page.status_code == 400 and "AADSTS90002" in page.text
    assert "location" not in page.headers
    correlation = str(uuid.uuid4())
    r = httpx.post(
        f"{org.url}/{stranger}/oauth2/v2.0/token",
        data={"grant_type": "password", "username": ME, "password": PASSWORD},
        headers={"client-request-id": correlation},
    )
    body = entra_error(r, 400, "invalid_request", 90002)
    assert body["correlation_id"] == correlation
    for alias in ("organizations", "common", org.tenant.upper()):
        r = org.token(alias, grant_type="password", username=ME, password=PASSWORD)
        assert r.status_code == 200, (alias, r.text)


def test_scope_for_another_resource_or_permission_is_refused(org: Org) -> None:
    _, challenge = pkce()
    url = f"{org.authority}/oauth2/v2.0/authorize"
    other = auth_params(org, challenge, scope="https://other.example/user_impersonation openid")
    answer = redirected(httpx.get(url, params=other))
    assert answer["error"] == "invalid_resource" and "AADSTS500011" in answer["error_description"]
    assert answer["state"] == other["state"]
    unknown = auth_params(org, challenge, scope=f"{org.url}/Mail.Send openid")
    assert redirected(httpx.get(url, params=unknown))["error"] == "invalid_scope"
    none = auth_params(org, challenge, scope="openid profile")
    assert redirected(httpx.get(url, params=none))["error"] == "invalid_scope"
    r = org.token(
        grant_type="password", username=ME, password=PASSWORD, scope="https://x.example/.default"
    )
    entra_error(r, 400, "invalid_resource", 500011)
    r = org.token(
        grant_type="client_credentials",
        client_id=PRIYA,
        client_secret=PASSWORD,
        scope=f"{org.url}/.default",
    )
    assert r.status_code == 200, r.text
    claims = verified(org, r.json()["access_token"], org.url)
    assert claims["idtyp"] == "app" and "scp" not in claims
    assert who_am_i(org, r.json()["access_token"]).json()["UserId"] == user_id(PRIYA)


# -- refresh tokens --------------------------------------------------------------------------


def test_refresh_rotates_and_a_replay_revokes_the_family(org: Org) -> None:
    first = signed_in(org)
    second = refresh(org, first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert who_am_i(org, rotated["access_token"]).status_code == 200
    third = refresh(org, rotated["refresh_token"]).json()
    entra_error(refresh(org, first["refresh_token"]), 400, "invalid_grant", 50173)
    entra_error(refresh(org, third["refresh_token"]), 400, "invalid_grant", 50173)
    other = signed_in(org)  # another sign-in is another family
    assert refresh(org, other["refresh_token"]).status_code == 200


def test_refresh_token_belongs_to_its_client(org: Org) -> None:
    tokens = signed_in(org)
    r = org.token(
        grant_type="refresh_token",
        client_id=str(uuid.uuid4()),
        refresh_token=tokens["refresh_token"],
    )
    entra_error(r, 400, "unauthorized_client", 700016)
    entra_error(refresh(org, "garbage"), 400, "invalid_grant", 9002313)


def test_revocation_endpoint_revokes_the_family(org: Org) -> None:
    tokens = signed_in(org)
    renewed = refresh(org, tokens["refresh_token"]).json()
    url = f"{org.authority}/oauth2/v2.0/revoke"
    data = {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    r = httpx.post(url, data={**data, "client_id": str(uuid.uuid4())})
    entra_error(r, 400, "unauthorized_client", 700016)
    r = httpx.post(url, data={**data, "client_id": DEV_CLIENT_ID})
    assert r.status_code == 200
    entra_error(refresh(org, renewed["refresh_token"]), 400, "invalid_grant", 50173)
    unknown = httpx.post(url, data={"token": "unknown", "client_id": DEV_CLIENT_ID})
    assert unknown.status_code == 200  # RFC 7009: an invalid token is no error


def test_access_token_expires(make_org: Callable[..., Org]) -> None:
    org = make_org(access_token_lifetime=3, clock_skew=0)  # 1 s was flaky on a loaded machine
    tokens = signed_in(org)
    assert tokens["expires_in"] == 3
    assert who_am_i(org, tokens["access_token"]).status_code == 200
    time.sleep(4.1)
    r = who_am_i(org, tokens["access_token"])
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    renewed = refresh(org, tokens["refresh_token"]).json()
    assert who_am_i(org, renewed["access_token"]).status_code == 200


def test_token_of_another_organisation_is_refused(make_org: Callable[..., Org]) -> None:
    one, two = make_org(), make_org()
    token = signed_in(one)["access_token"]
    assert who_am_i(two, token).status_code == 401


# -- device code ---------------------------------------------------------------------------


def device_start(org: Org) -> dict[str, Any]:
    r = httpx.post(
        f"{org.authority}/oauth2/v2.0/devicecode",
        data={"client_id": DEV_CLIENT_ID, "scope": org.scope},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def device_poll(org: Org, flow: dict[str, Any]) -> httpx.Response:
    return org.token(
        grant_type="urn:ietf:params:oauth:grant-type:device_code",
        client_id=DEV_CLIENT_ID,
        device_code=flow["device_code"],
        client_info="1",
    )


def device_page(
    org: Org, code: str, login: str = ME, password: str = PASSWORD, action: str = "approve"
) -> httpx.Response:
    return httpx.post(
        f"{org.url}/devicelogin",
        data={"otc": code, "login": login, "passwd": password, "action": action},
    )


def test_device_flow_pending_slow_down_approved(make_org: Callable[..., Org]) -> None:
    org = make_org(device_poll_interval=1)
    flow = device_start(org)
    assert flow["verification_uri"] == f"{org.url}/devicelogin"
    assert flow["interval"] == 1 and flow["expires_in"] == 900
    assert flow["user_code"] in flow["message"] and flow["verification_uri"] in flow["message"]
    assert httpx.get(flow["verification_uri"]).status_code == 200
    entra_error(device_poll(org, flow), 400, "authorization_pending", 70016)
    assert device_poll(org, flow).json()["error"] == "slow_down"
    wrong = device_page(org, flow["user_code"], password="wrong")
    assert wrong.status_code == 400 and "incorrect" in wrong.text
    assert device_page(org, "BCDFGHJKL").status_code == 400
    typed = "-".join([flow["user_code"][:4].lower(), flow["user_code"][4:]])
    done = device_page(org, typed)
    assert done.status_code == 200 and "You have signed in" in done.text
    time.sleep(1.0)
    r = device_poll(org, flow)
    assert r.status_code == 200, r.text
    body = r.json()
    assert who_am_i(org, body["access_token"]).json()["UserId"] == user_id(ME)
    assert body["refresh_token"] and body["id_token"] and body["client_info"]
    entra_error(device_poll(org, flow), 400, "invalid_grant", 54005)
    assert device_page(org, flow["user_code"]).status_code == 400  # used up


def test_device_flow_declined_and_expired(make_org: Callable[..., Org]) -> None:
    org = make_org(device_code_lifetime=1)
    declined = device_start(org)
    page = device_page(org, declined["user_code"], login="", password="", action="deny")
    assert page.status_code == 200 and "declined" in page.text
    entra_error(device_poll(org, declined), 400, "access_denied", 65004)
    expired = device_start(org)
    time.sleep(1.2)
    entra_error(device_poll(org, expired), 400, "expired_token", 70019)
    assert device_page(org, expired["user_code"]).status_code == 400


# -- users and passwords -----------------------------------------------------------------------


def test_disabled_user_gets_no_token_and_their_refresh_tokens_stop(org: Org) -> None:
    tokens = signed_in(org, TOMAS)
    flow = device_start(org)
    verifier, challenge = pkce()
    params = auth_params(org, challenge)
    r = httpx.patch(
        org.server.api_url + f"systemusers({user_id(TOMAS)})",
        json={"isdisabled": True},
        auth=(ME, PASSWORD),
    )
    assert r.status_code == 204, r.text
    entra_error(refresh(org, tokens["refresh_token"]), 400, "invalid_grant", 50057)
    r = org.token(grant_type="password", username=TOMAS, password=PASSWORD)
    entra_error(r, 400, "invalid_grant", 50057)
    page = sign_in(org, params, TOMAS)
    assert page.status_code == 200 and "disabled" in page.text and "location" not in page.headers
    assert "disabled" in device_page(org, flow["user_code"], TOMAS).text
    assert who_am_i(org, tokens["access_token"]).status_code == 401


def test_wrong_password_on_sign_in_page_shows_the_form_again(org: Org) -> None:
    _, challenge = pkce()
    r = sign_in(org, auth_params(org, challenge), ME, "wrong")
    assert r.status_code == 200 and "incorrect" in r.text and "location" not in r.headers
    assert f"value='{ME}'" in r.text


def test_password_guessing_is_slowed_per_account(make_org: Callable[..., Org]) -> None:
    org = make_org(signin_failure_limit=2, signin_lockout_seconds=1.0)
    for _ in range(2):
        r = org.token(grant_type="password", username=ME, password="wrong")
        entra_error(r, 400, "invalid_grant", 50126)
    r = org.token(grant_type="password", username=ME, password=PASSWORD)
    entra_error(r, 429, "temporarily_unavailable", 50053)
    assert int(r.headers["retry-after"]) >= 1
    _, challenge = pkce()
    page = sign_in(org, auth_params(org, challenge), ME, PASSWORD)
    assert page.status_code == 429 and "too many times" in page.text
    flow = device_start(org)
    assert device_page(org, flow["user_code"], ME).status_code == 429
    assert org.token(grant_type="password", username=PRIYA, password=PASSWORD).status_code == 200
    time.sleep(1.1)
    assert org.token(grant_type="password", username=ME, password=PASSWORD).status_code == 200
    # the next lock after the limit lasts longer (doubling)
    for _ in range(2):
        org.token(grant_type="password", username=ME, password="wrong")
    time.sleep(1.1)
    assert org.token(grant_type="password", username=ME, password="wrong").status_code == 400
    r = org.token(grant_type="password", username=ME, password=PASSWORD)
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 2


def test_password_guessing_is_slowed_per_address(make_org: Callable[..., Org]) -> None:
    org = make_org(signin_address_failure_limit=3, signin_lockout_seconds=30.0)
    for n in range(3):
        r = org.token(grant_type="password", username=f"nobody{n}@x.example", password="x")
        entra_error(r, 400, "invalid_grant", 50126)
    r = org.token(grant_type="password", username=PRIYA, password=PASSWORD)
    entra_error(r, 429, "temporarily_unavailable", 50053)


# -- global discovery, storage ---------------------------------------------------------------


def test_global_discovery_lists_the_environment(org: Org) -> None:
    url = f"{org.url}/api/discovery/v2.0/Instances"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=(ME, PASSWORD)).status_code == 401  # bearer only
    token = signed_in(org)["access_token"]
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    (instance,) = r.json()["value"]
    assert instance["Url"] == org.url and instance["ApiUrl"] == org.url
    assert instance["TenantId"] == org.tenant and instance["State"] == 0
    assert instance["FriendlyName"] == "Contoso Demo"
    for field in (
        "Id",
        "UniqueName",
        "UrlName",
        "Version",
        "EnvironmentId",
        "Region",
        "LastUpdated",
    ):
        assert instance[field], field


def test_no_secret_is_stored_in_plain_form(org: Org) -> None:
    code, verifier = code_for(org)
    tokens = redeem(org, code, verifier).json()
    flow = device_start(org)
    dump = "\n".join(sqlite3.connect(org.server.settings.db_path).iterdump())
    for secret in (code, tokens["refresh_token"], flow["device_code"], flow["user_code"]):
        assert secret not in dump
    assert tokens["access_token"] not in dump


def test_settings_refuse_nonsense() -> None:
    for field, value in (
        ("access_token_lifetime", 0),
        ("refresh_token_lifetime", -1),
        ("device_poll_interval", 0),
        ("signin_failure_limit", 0),
        ("signin_lockout_seconds", 0),
        ("clock_skew", -1),
    ):
        with pytest.raises(ValueError, match=field):
            Settings(db_path="unused.db", **{field: value})
