"""Sign-ins that must fail, with MSAL unchanged against the emulator over HTTPS: a tenant the
authority does not know, and a token response whose id_token was issued to another client.
A failed sign-in is a typed error, leaves nothing in the token cache and no token in the log."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import requests
from msal.oauth2cli.oidc import _nonce_hash

from core.crm.errors import AuthorityError, CrmAuthError, SignInFailed
from core.crm.signin import MicrosoftSignIn
from core.crm.token_cache import MemoryCacheStore
from crmserver import RunningServer, TlsFiles
from crmserver.storage import Storage
from tests.signin.authority import (
    ME,
    PASSWORD,
    authority_server,
    ca_of,
    context_of,
    sign_in,
    tenant_authority,
)
from tests.signin.authority import signer as signer_for
from tests.signin.pages import authorize, sign_in_at

#: A second public client of the organisation (a desktop app, loopback redirects).
OTHER_CLIENT = "0b5f7a4e-2d0c-4c55-9d8e-6f1a3b2c4d5e"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    db: Path = tmp_path_factory.mktemp("signin-negative") / "org.db"
    with authority_server(db, crm_tls) as running:
        Storage(db).add_oauth_client(
            OTHER_CLIENT, "Another desktop app", public=True, redirect_uris=("http://localhost",)
        )
        yield running


def claims_of(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def nothing_cached(signer: MicrosoftSignIn, store: MemoryCacheStore) -> None:
    assert signer.accounts() == []
    assert store.text is None or json.loads(store.text).get("AccessToken", {}) == {}
    kinds = signer.cache.CredentialType
    for kind in (kinds.ACCOUNT, kinds.REFRESH_TOKEN, kinds.ACCESS_TOKEN, kinds.ID_TOKEN):
        assert list(signer.cache.search(kind)) == [], kind


# -- a wrong tenant ------------------------------------------------------------------------


def test_a_tenant_the_authority_does_not_know_is_an_authority_error(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = f"{server.url}/{uuid.uuid4()}"
    # The emulator answers as Entra does for an unknown tenant (AADSTS90002) …
    config = httpx.get(wrong + "/v2.0/.well-known/openid-configuration", verify=context_of(server))
    assert config.status_code == 400 and 90002 in config.json()["error_codes"]
    # … and the sign-in says which authority is wrong, typed, before any page is shown.
    store = MemoryCacheStore()
    signer = signer_for(server, store, authority=wrong)
    pages: list[str] = []
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthorityError) as info:
        signer.sign_in_with_auth_code(lambda uri: pages.append(uri) or {})
    assert info.value.authority == wrong and "tenant" in str(info.value).lower()
    assert pages == []
    nothing_cached(signer, store)
    # The same sign-in at the organisation's own tenant works: the tenant was the fault.
    right = signer_for(server, MemoryCacheStore(), authority=tenant_authority(server))
    assert right.sign_in_with_auth_code(authorize(ME, PASSWORD, context_of(server))).username == ME


# -- an id_token issued to another client --------------------------------------------------


class SwapIdToken(requests.adapters.HTTPAdapter):
    """Mounted on MicrosoftSignIn's HTTP session: the token endpoint's answer gets
    ``id_token`` in place of its own (everything else, the access token included, is the
    authority's genuine answer for this client)."""

    def __init__(self, id_token: str) -> None:
        super().__init__()
        self.id_token = id_token
        self.swapped: list[dict[str, Any]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        if str(request.url).endswith("/oauth2/v2.0/token") and response.status_code == 200:
            body = response.json()
            self.swapped.append(body)
            response._content = json.dumps({**body, "id_token": self.id_token}).encode()
        return response


def other_clients_id_token(server: RunningServer, nonce: str | None = None) -> str:
    """A genuine id_token of this user, issued (and signed) by the emulator for
    OTHER_CLIENT; with ``nonce``, the authorization request carries that nonce hash."""
    other = MicrosoftSignIn(
        server.url, client_id=OTHER_CLIENT, authority=tenant_authority(server), verify=ca_of(server)
    )
    try:
        flow = other.start_auth_code_flow()
        auth_uri = flow.auth_uri if nonce is None else _with_nonce(flow.auth_uri, nonce)
        _, answer = sign_in_at(auth_uri, ME, PASSWORD, context_of(server))
        token_endpoint = other.application().authority.token_endpoint
        with httpx.Client(verify=context_of(server), timeout=30) as http:
            tokens = http.post(
                token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "client_id": OTHER_CLIENT,
                    "code": answer["code"],
                    "redirect_uri": flow.redirect_uri,
                    "code_verifier": flow.raw["code_verifier"],
                    "scope": " ".join(other.scopes + ["openid", "profile", "offline_access"]),
                },
            )
        tokens.raise_for_status()
        return str(tokens.json()["id_token"])
    finally:
        other.close()


def _with_nonce(auth_uri: str, nonce: str) -> str:
    parts = urlsplit(auth_uri)
    query = dict(parse_qsl(parts.query))
    query["nonce"] = _nonce_hash(nonce)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _refused_sign_in(
    server: RunningServer, caplog: pytest.LogCaptureFixture, *, same_nonce: bool
) -> None:
    store = MemoryCacheStore()
    signer = signer_for(server, store)
    flow = signer.start_auth_code_flow()
    foreign = other_clients_id_token(server, flow.raw["nonce"] if same_nonce else None)
    assert claims_of(foreign)["aud"] == OTHER_CLIENT != signer.client_id
    assert (claims_of(foreign)["nonce"] == _nonce_hash(flow.raw["nonce"])) is same_nonce
    swap = SwapIdToken(foreign)
    signer.application().http_client.http_client.mount("https://", swap)
    answer = sign_in_at(flow.auth_uri, ME, PASSWORD, context_of(server))[1]
    with caplog.at_level(logging.DEBUG), pytest.raises(CrmAuthError) as info:
        signer.finish_auth_code_flow(flow, answer)
    assert len(swap.swapped) == 1  # the authority did answer with tokens: they were refused
    assert isinstance(info.value, SignInFailed)
    nothing_cached(signer, store)
    secrets = [foreign, *(str(swap.swapped[0][k]) for k in ("access_token", "refresh_token"))]
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert not [s for s in secrets if s in logged or s in str(info.value)]


def test_an_id_token_of_another_client_is_a_failed_sign_in(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    _refused_sign_in(server, caplog, same_nonce=False)


def test_an_id_token_whose_audience_is_another_client_is_refused(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Only ``aud`` is wrong: same user, same issuer, valid signature, our nonce."""
    _refused_sign_in(server, caplog, same_nonce=True)


def test_the_other_client_signs_in_with_its_own_id_token(server: RunningServer) -> None:
    """The control: the second client and the helpers above work; only the swap is wrong."""
    other = MicrosoftSignIn(
        server.url, client_id=OTHER_CLIENT, authority=tenant_authority(server), verify=ca_of(server)
    )
    try:
        assert other.sign_in_with_auth_code(authorize(ME, PASSWORD, context_of(server))).username
    finally:
        other.close()
    mine = sign_in(server, MemoryCacheStore())
    assert [a.username for a in mine.accounts()] == [ME]
