"""Fixtures for EWS with OAuth (``?auth=oauth``): the fake EWS server in OAuth mode, taking
bearer tokens from the emulator's authority as Exchange Online does.

- ``ews_oauth_site`` (function): a fresh :class:`EwsOAuthSite`: the fake over HTTPS
  (``Bearer`` only, certificate from ``tls_material``, trusted by exchangelib through
  ``REQUESTS_CA_BUNDLE`` for the test), accepting the authority's EWS tokens
  (:class:`tests.fakes.ews_auth.BearerVerifier`), and the authority (``graph_authority``).
  :meth:`EwsOAuthSite.signed_in` is an MSAL sign-in that consented to EWS.

:func:`start_oauth_ews` makes the same server for another authority (a short token lifetime).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.crm.signin import MicrosoftSignIn
from core.domain import demo_data
from core.mail.ews_auth import ews_scope
from crmserver import RunningServer
from tests.fakes.ews_auth import BearerVerifier
from tests.fakes.ews_server import FakeEwsServer
from tests.plugins.graph import GraphTokens
from tests.plugins.mailservers import PASSWORD, TlsMaterial, _run_ews
from tests.signin.pages import authorize

EWS_SCOPE = ews_scope()  # https://outlook.office365.com/EWS.AccessAsUser.All


def start_oauth_ews(
    server: RunningServer, authority: str, tls: TlsMaterial
) -> Iterator[FakeEwsServer]:
    """A fake EWS server over HTTPS taking only bearer tokens from ``authority`` (an
    authority of the emulator ``server``), stopped when the iterator is closed."""

    def start(root: Any) -> FakeEwsServer:
        ews = FakeEwsServer(root, PASSWORD, schemes=("Bearer",), host="127.0.0.1")
        ews.accept_tokens_from(BearerVerifier(authority, server.ca_file, ews.auth_log))
        return ews.start(0, (tls.cert_file, tls.key_file))

    yield from _run_ews(start)


def signed_in(
    server: RunningServer,
    authority: str,
    scopes: Sequence[str] = (EWS_SCOPE,),
    user: str = demo_data.ME.email,
) -> MicrosoftSignIn:
    """A sign-in to the emulator's CRM that consented to ``scopes`` (EWS's) at the same time:
    MSAL's auth-code flow, the sign-in page filled in as ``user``. The caller closes it."""

    made = MicrosoftSignIn(
        server.url, authority=authority, verify=str(server.ca_file), extra_scopes=scopes
    )
    try:
        made.sign_in_with_auth_code(
            authorize(
                user, demo_data.DEMO_PASSWORD, ssl.create_default_context(cafile=server.ca_file)
            )
        )
    except BaseException:
        made.close()
        raise
    return made


@dataclass
class EwsOAuthSite:
    server: FakeEwsServer
    authority: GraphTokens
    made: list[MicrosoftSignIn] = field(default_factory=list)

    def signed_in(
        self, scopes: Sequence[str] = (EWS_SCOPE,), user: str = demo_data.ME.email
    ) -> MicrosoftSignIn:
        """:func:`signed_in` at the site's authority, closed at teardown."""
        made = signed_in(self.authority.server, self.authority.authority, scopes, user)
        self.made.append(made)
        return made


@pytest.fixture
def ews_oauth_site(
    graph_authority: GraphTokens, tls_material: TlsMaterial, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EwsOAuthSite]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_material.ca_file))
    for ews in start_oauth_ews(graph_authority.server, graph_authority.authority, tls_material):
        site = EwsOAuthSite(ews, graph_authority)
        try:
            yield site
        finally:
            for made in site.made:
                made.close()
