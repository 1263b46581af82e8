"""The emulator's authority issues tokens for two resources, as Entra does: its own CRM and
Microsoft Graph. One sign-in consents to both (scopes of both at ``/authorize`` or
``/devicecode``); each token is for one resource (``aud``, ``scp``); the refresh token gets
the other resource's token when the sign-in consented to it, else ``invalid_grant``
(AADSTS65001); the CRM's Web API refuses a Graph token. Protocol level, over plain HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crmserver import RunningServer, Settings, run_in_thread
from crmserver.oauth_clients import DEV_CLIENT_ID
from crmserver.seed import user_id

from .helpers import ME, PRIYA
from .test_oidc_protocol import (
    PASSWORD,
    Org,
    auth_params,
    device_page,
    device_poll,
    entra_error,
    pkce,
    redeem,
    redirected,
    sign_in,
    tenant_of,
    verified,
    who_am_i,
)

GRAPH = "https://graph.microsoft.com"
OIDC = "openid profile offline_access"
MAIL = f"{GRAPH}/Mail.ReadWrite {GRAPH}/Mail.Send"


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


def crm(org: Org) -> str:
    return f"{org.url}/user_impersonation"


def code_for(org: Org, scope: str, login: str = ME) -> tuple[str, str]:
    verifier, challenge = pkce()
    answer = redirected(sign_in(org, auth_params(org, challenge, scope=scope), login))
    return answer["code"], verifier


def refresh_for(org: Org, token: str, scope: str) -> httpx.Response:
    return org.token(
        grant_type="refresh_token",
        client_id=DEV_CLIENT_ID,
        refresh_token=token,
        scope=scope,
        client_info="1",
    )


def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    return dict(r.json())


def graph_claims(org: Org, token: str) -> dict[str, Any]:
    """A Graph token's claims, checked by the authority's JWKS and tenant issuer."""
    return verified(org, token, GRAPH)


# -- one sign-in, two resources -----------------------------------------------------------


def test_consent_to_both_then_crm_token_then_graph_token_by_refresh(org: Org) -> None:
    code, verifier = code_for(org, f"{crm(org)} {MAIL} {OIDC}")
    first = ok(redeem(org, code, verifier, scope=f"{crm(org)} {OIDC}"))
    assert first["scope"] == crm(org)
    claims = verified(org, first["access_token"], org.url)
    assert claims["scp"] == "user_impersonation"
    assert who_am_i(org, first["access_token"]).json()["UserId"] == user_id(ME)

    graph = ok(refresh_for(org, first["refresh_token"], f"{GRAPH}/Mail.ReadWrite {OIDC}"))
    assert graph["scope"] == f"{GRAPH}/Mail.ReadWrite"
    assert graph["refresh_token"] != first["refresh_token"] and graph["id_token"]
    claims = graph_claims(org, graph["access_token"])
    assert claims["aud"] == GRAPH
    assert claims["scp"] == "Mail.ReadWrite Mail.Send"  # all the sign-in consented to
    assert claims["preferred_username"] == ME and claims["idtyp"] == "user"
    assert claims["iss"] == f"{org.url}/{org.tenant}/v2.0"

    # the rotated refresh token still serves both resources
    again = ok(refresh_for(org, graph["refresh_token"], f"{crm(org)} {OIDC}"))
    assert who_am_i(org, again["access_token"]).status_code == 200
    mail = ok(refresh_for(org, again["refresh_token"], f"{GRAPH}/.default {OIDC}"))
    assert graph_claims(org, mail["access_token"])["scp"] == "Mail.ReadWrite Mail.Send"
    # ... and the replay of a used one still revokes the whole family
    entra_error(refresh_for(org, graph["refresh_token"], MAIL), 400, "invalid_grant", 50173)
    entra_error(refresh_for(org, mail["refresh_token"], MAIL), 400, "invalid_grant", 50173)


def test_crm_api_refuses_a_graph_token(org: Org) -> None:
    code, verifier = code_for(org, f"{MAIL} {crm(org)} {OIDC}")
    tokens = ok(redeem(org, code, verifier, scope=f"{MAIL} {OIDC}"))
    assert graph_claims(org, tokens["access_token"])["aud"] == GRAPH
    r = who_am_i(org, tokens["access_token"])
    assert r.status_code == 401 and "another resource" in r.json()["error"]["message"]
    data = httpx.get(
        org.server.api_url + "accounts",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert data.status_code == 401
    crm_token = ok(refresh_for(org, tokens["refresh_token"], crm(org)))["access_token"]
    assert who_am_i(org, crm_token).status_code == 200


def test_a_request_naming_two_resources_gets_the_first_ones_token(org: Org) -> None:
    code, verifier = code_for(org, f"{crm(org)} {MAIL} {OIDC}")
    both = ok(redeem(org, code, verifier, scope=f"{GRAPH}/Mail.Send {crm(org)} {OIDC}"))
    assert both["scope"] == f"{GRAPH}/Mail.Send"
    assert graph_claims(org, both["access_token"])["scp"] == "Mail.ReadWrite Mail.Send"
    crm_first = ok(refresh_for(org, both["refresh_token"], f"{crm(org)} {MAIL}"))
    assert crm_first["scope"] == crm(org)
    assert who_am_i(org, crm_first["access_token"]).status_code == 200
    # a code redeemed without a scope: the first resource of the sign-in
    code, verifier = code_for(org, f"{GRAPH}/Mail.Read {crm(org)} {OIDC}")
    plain = ok(redeem(org, code, verifier, scope=""))
    assert graph_claims(org, plain["access_token"])["scp"] == "Mail.Read"
    assert ok(refresh_for(org, plain["refresh_token"], crm(org)))["scope"] == crm(org)


def test_a_resource_or_permission_never_consented_to_needs_the_user(org: Org) -> None:
    code, verifier = code_for(org, f"{crm(org)} {OIDC}")
    tokens = ok(redeem(org, code, verifier))
    refused = entra_error(
        refresh_for(org, tokens["refresh_token"], MAIL), 400, "invalid_grant", 65001
    )
    assert "consented" in refused["error_description"]
    r = refresh_for(org, tokens["refresh_token"], f"{GRAPH}/.default")
    entra_error(r, 400, "invalid_grant", 65001)
    # the refusal used nothing up: the same refresh token still works for the CRM
    assert ok(refresh_for(org, tokens["refresh_token"], crm(org)))["scope"] == crm(org)

    code, verifier = code_for(org, f"{crm(org)} {GRAPH}/Mail.Read {OIDC}")
    entra_error(
        redeem(org, code, verifier, scope=f"{GRAPH}/Mail.Send"), 400, "invalid_grant", 65001
    )
    tokens = ok(redeem(org, code, verifier, scope=f"{GRAPH}/Mail.Read"))  # not used up
    entra_error(refresh_for(org, tokens["refresh_token"], MAIL), 400, "invalid_grant", 65001)
    default = ok(refresh_for(org, tokens["refresh_token"], f"{GRAPH}/.default"))
    assert graph_claims(org, default["access_token"])["scp"] == "Mail.Read"  # what was granted
    read = ok(refresh_for(org, default["refresh_token"], f"{GRAPH}/Mail.Read"))
    assert graph_claims(org, read["access_token"])["scp"] == "Mail.Read"


def test_unknown_resource_or_graph_permission_is_refused(org: Org) -> None:
    _, challenge = pkce()
    url = f"{org.authority}/oauth2/v2.0/authorize"

    def authorize_error(scope: str, base: str = url) -> str:
        params = auth_params(org, challenge, scope=scope)
        return redirected(httpx.get(base, params=params))["error"]

    assert authorize_error(f"{GRAPH}/Directory.ReadWrite.All {OIDC}") == "invalid_scope"
    assert authorize_error(f"https://outlook.office.com/Mail.Read {OIDC}") == "invalid_resource"
    assert authorize_error(f"{crm(org)} https://other.example/Mail.Read") == "invalid_resource"
    # AD FS issues tokens for its own relying parties only
    assert authorize_error(MAIL, f"{org.url}/adfs/oauth2/authorize/") == "invalid_resource"

    code, verifier = code_for(org, f"{crm(org)} {MAIL} {OIDC}")
    tokens = ok(redeem(org, code, verifier, scope=crm(org)))
    r = refresh_for(org, tokens["refresh_token"], "https://outlook.office.com/Mail.Read")
    entra_error(r, 400, "invalid_resource", 500011)
    r = refresh_for(org, tokens["refresh_token"], f"{GRAPH}/Files.Read")
    entra_error(r, 400, "invalid_scope", 70011)
    # no app-only Graph token for an application user's secret
    r = org.token(
        grant_type="client_credentials",
        client_id=PRIYA,
        client_secret=PASSWORD,
        scope=f"{GRAPH}/.default",
    )
    entra_error(r, 400, "invalid_resource", 500011)


def test_device_code_with_graph_scopes(make_org: Callable[..., Org]) -> None:
    org = make_org(device_poll_interval=1)

    def approved(scope: str) -> dict[str, Any]:
        r = httpx.post(
            f"{org.authority}/oauth2/v2.0/devicecode",
            data={"client_id": DEV_CLIENT_ID, "scope": scope},
        )
        flow = ok(r)
        assert "You have signed in" in device_page(org, flow["user_code"]).text
        time.sleep(1.0)  # the poll interval
        return ok(device_poll(org, flow))

    both = approved(f"{crm(org)} {MAIL} {OIDC}")
    assert both["scope"] == crm(org)
    assert who_am_i(org, both["access_token"]).status_code == 200
    mail = ok(refresh_for(org, both["refresh_token"], MAIL))
    assert graph_claims(org, mail["access_token"])["scp"] == "Mail.ReadWrite Mail.Send"

    graph_only = approved(f"{GRAPH}/Mail.Read {GRAPH}/User.Read {OIDC}")
    claims = graph_claims(org, graph_only["access_token"])
    assert claims["scp"] == "Mail.Read User.Read" and claims["preferred_username"] == ME
    r = refresh_for(org, graph_only["refresh_token"], crm(org))
    entra_error(r, 400, "invalid_grant", 65001)
