"""Fixtures for the fake Microsoft Graph server (``tests/fakes/graph_server.py``), the one
fake besides EWS: no Microsoft 365 can run here.

- ``graph_authority`` (session): the emulator over HTTPS (``crm_https``) as the sign-in
  authority, with :class:`GraphTokens` to get tokens from it.
- ``graph_tls`` (session): a throwaway CA and a loopback certificate for the fake.
- ``graph_server`` (function): a started :class:`FakeGraphServer` that accepts the
  authority's tokens; a test that made it see a request it does not understand fails at
  teardown (as ``_ews_requests_understood`` does for EWS).

- ``graph_sign_in`` (function): makes :class:`~core.crm.signin.MicrosoftSignIn` sign-ins
  at the authority that consented to Graph (:meth:`GraphTokens.signed_in`), closed at teardown.

Tokens: the emulator's authority issues tokens for its own resource (the CRM) and for
Microsoft Graph, as Entra does. The real path is :meth:`GraphTokens.signed_in` /
:meth:`GraphTokens.from_authority`: one auth-code sign-in through MSAL (the sign-in page
filled in without a browser) that consents to Graph's scopes, then MSAL's silent token for
them. :meth:`GraphTokens.graph` is a shortcut for tokens the authority would never issue
(expired, another audience or issuer, any ``scp``): it signs Graph-shaped claims with the
authority's own signing key (read from its database; the same key its JWKS publishes).
:meth:`GraphTokens.crm` gets a real token for the CRM from its token endpoint (password grant).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import ssl
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from core.crm.signin import MicrosoftSignIn, graph_scopes
from core.domain import demo_data
from crmserver import RunningServer, TlsFiles
from crmserver.oauth_clients import DEV_CLIENT_ID
from tests.fakes.graph_server import FakeGraphServer
from tests.signin.pages import authorize

GRAPH = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MAIL_SCOPES = ("Mail.ReadWrite", "Mail.Send")
SHARED_SCOPES = ("Mail.ReadWrite.Shared", "Mail.Send.Shared")


@dataclass
class GraphTokens:
    """Access tokens from the emulator's tenant authority (``authority``)."""

    server: RunningServer
    tenant: str

    @property
    def authority(self) -> str:
        return f"{self.server.url}/{self.tenant}"

    @property
    def issuer(self) -> str:
        return f"{self.authority}/v2.0"

    def _verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.server.ca_file)

    def _signing_key(self) -> tuple[str, Any]:
        """The authority's key (its JWKS made first, so that the key exists) and its kid."""
        with httpx.Client(verify=self._verify(), timeout=30) as client:
            keys = client.get(f"{self.authority}/discovery/v2.0/keys").json()["keys"]
        with sqlite3.connect(self.server.settings.db_path) as db:
            kid, pem = db.execute(
                "SELECT kid, private_pem FROM tbx_signing_key WHERE slot='current'"
            ).fetchone()
        assert any(k["kid"] == kid for k in keys), "the authority publishes another key"
        return str(kid), pem

    def graph(
        self,
        user: str = demo_data.ME.email,
        scopes: Iterable[str] = MAIL_SCOPES,
        *,
        audience: str = GRAPH,
        lifetime: int = 3600,
        issuer: str | None = None,
    ) -> str:
        """A delegated Graph token for ``user`` with ``scp`` = ``scopes``, shaped as Entra's
        (``lifetime`` < 0: already expired)."""
        kid, pem = self._signing_key()
        now = int(time.time())
        claims = {
            "aud": audience,
            "iss": issuer or self.issuer,
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + lifetime,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, user)),
            "tid": self.tenant,
            "azp": DEV_CLIENT_ID,
            "appid": DEV_CLIENT_ID,
            "idtyp": "user",
            "scp": " ".join(scopes),
            "preferred_username": user,
            "upn": user,
            "name": user,
            "ver": "2.0",
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid})

    def signed_in(
        self,
        user: str = demo_data.ME.email,
        scopes: Iterable[str] = MAIL_SCOPES,
        *,
        password: str = demo_data.DEMO_PASSWORD,
    ) -> MicrosoftSignIn:
        """A sign-in to the emulator's CRM that consented to Graph's ``scopes`` (short
        names, e.g. ``Mail.ReadWrite``) at the same time: MSAL's auth-code flow, the sign-in
        page filled in as ``user``. The caller closes it (``graph_sign_in`` does)."""
        made = MicrosoftSignIn(
            self.server.url,
            authority=self.authority,
            verify=str(self.server.ca_file),
            extra_scopes=graph_scopes(*scopes),
        )
        try:
            made.sign_in_with_auth_code(authorize(user, password, self._verify()))
        except BaseException:
            made.close()
            raise
        return made

    def from_authority(
        self, user: str = demo_data.ME.email, scopes: Iterable[str] = MAIL_SCOPES
    ) -> str:
        """A real Graph token for ``user`` from the authority: :meth:`signed_in`, then the
        token MSAL gets silently with the refresh token."""
        wanted = tuple(scopes)
        with self.signed_in(user, wanted) as sign_in:
            return sign_in.token_for(graph_scopes(*wanted))

    def crm(self, user: str = demo_data.ME.email) -> str:
        """A real access token for the CRM (not Graph) from the authority's token endpoint."""
        with httpx.Client(verify=self._verify(), timeout=30) as client:
            r = client.post(
                f"{self.authority}/oauth2/v2.0/token",
                data={
                    "grant_type": "password",
                    "client_id": DEV_CLIENT_ID,
                    "username": user,
                    "password": demo_data.DEMO_PASSWORD,
                    "scope": f"{self.server.url}/user_impersonation",
                },
            )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


def _tenant_of(server: RunningServer) -> str:
    r = httpx.get(
        server.api_url + "WhoAmI", verify=ssl.create_default_context(cafile=server.ca_file)
    )
    found = re.search(
        r'authorization_uri="[^"]+/([^/"]+)/oauth2/authorize"', r.headers["www-authenticate"]
    )
    assert found, r.headers
    return found.group(1)


@pytest.fixture(scope="session")
def graph_authority(crm_https: RunningServer) -> GraphTokens:
    return GraphTokens(crm_https, _tenant_of(crm_https))


class GraphSignIns:
    """``graph_sign_in(user, scopes)``: :meth:`GraphTokens.signed_in`, closed at teardown
    (an open keep-alive connection holds the emulator's shutdown up)."""

    def __init__(self, tokens: GraphTokens) -> None:
        self.tokens = tokens
        self.made: list[MicrosoftSignIn] = []

    def __call__(
        self, user: str = demo_data.ME.email, scopes: Iterable[str] = MAIL_SCOPES
    ) -> MicrosoftSignIn:
        made = self.tokens.signed_in(user, scopes)
        self.made.append(made)
        return made


@pytest.fixture
def graph_sign_in(graph_authority: GraphTokens) -> Iterator[GraphSignIns]:
    sign_ins = GraphSignIns(graph_authority)
    yield sign_ins
    for made in sign_ins.made:
        made.close()


@pytest.fixture(scope="session")
def graph_tls() -> Iterator[TlsFiles]:
    from crmserver.tls import make_throwaway_ca

    folder = Path(tempfile.mkdtemp(prefix="trackbox-graph-tls-"))
    try:
        yield make_throwaway_ca(folder, ("127.0.0.1", "localhost"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def graph_server(
    graph_authority: GraphTokens, graph_tls: TlsFiles, crm_tls: TlsFiles
) -> Iterator[FakeGraphServer]:
    """A fresh fake Graph server; fails the test if it saw a request it does not know."""
    server = FakeGraphServer(graph_authority.authority, graph_tls, authority_ca=crm_tls.ca)
    server.start()
    try:
        yield server
    finally:
        server.stop()
    unknown = list(server.unknown_requests)
    server.unknown_requests.clear()
    if unknown:
        pytest.fail("fake Graph server did not understand: " + "; ".join(unknown), pytrace=False)
