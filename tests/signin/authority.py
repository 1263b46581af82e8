"""Emulators that act as the sign-in authority, over HTTPS with the session's throwaway CA
(``crm_tls``), with settings the sign-in tests need (a fast device-code poll, short token
lifetimes), and small helpers around them."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from core.crm.discovery import challenge
from core.crm.signin import MicrosoftSignIn
from core.crm.token_cache import CacheStore, MemoryCacheStore, PersistentTokenCache
from core.domain import demo_data
from crmserver import RunningServer, Settings, TlsFiles, run_in_thread
from tests.signin.pages import authorize

ME = demo_data.ME.email
PASSWORD = demo_data.DEMO_PASSWORD


#: Sign-ins made through :func:`signer`: closed before their server stops (an open
#: keep-alive connection holds uvicorn's shutdown up for its full grace period).
OPEN: list[MicrosoftSignIn] = []


@contextmanager
def authority_server(db: Path, tls: TlsFiles, **settings: Any) -> Iterator[RunningServer]:
    options = {"device_poll_interval": 1, **settings}
    with run_in_thread(Settings(db_path=db, seed="demo", **options), tls=tls) as server:
        try:
            yield server
        finally:
            close_signers()


def close_signers() -> None:
    while OPEN:
        OPEN.pop().close()


def signer(
    server: RunningServer,
    store: CacheStore | None = None,
    *,
    authority: str | None = None,
    username: str | None = None,
    org_url: str | None = None,
) -> MicrosoftSignIn:
    """A MicrosoftSignIn for the emulator's organisation (not signed in yet)."""
    made = MicrosoftSignIn(
        org_url or server.url,
        authority=authority or tenant_authority(server),
        verify=ca_of(server),
        cache=PersistentTokenCache(store if store is not None else MemoryCacheStore()),
        username=username,
    )
    OPEN.append(made)
    return made


def ca_of(server: RunningServer) -> str:
    assert server.ca_file, "the sign-in tests need the emulator over HTTPS"
    return str(server.ca_file)


def context_of(server: RunningServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_of(server))


def tenant_authority(server: RunningServer) -> str:
    """``R/<tenant-id>``, as the organisation's 401 challenge names it."""
    return challenge(server.url, ca_of(server)).authority


def sign_in(
    server: RunningServer,
    store: CacheStore,
    *,
    email: str = ME,
    authority: str | None = None,
    username: str | None = None,
) -> MicrosoftSignIn:
    """A MicrosoftSignIn for the emulator's organisation, signed in with the auth-code flow."""
    made = signer(server, store, authority=authority, username=username)
    made.sign_in_with_auth_code(authorize(email, PASSWORD, context_of(server)))
    return made


def raw_who_am_i(server: RunningServer, token: str) -> httpx.Response:
    with httpx.Client(verify=context_of(server), timeout=30) as http:
        return http.get(
            server.url + "/api/data/v9.2/WhoAmI", headers={"Authorization": f"Bearer {token}"}
        )


def user_id(server: RunningServer, email: str = ME) -> str:
    with httpx.Client(verify=context_of(server), timeout=30, auth=(email, PASSWORD)) as http:
        return str(http.get(server.url + "/api/data/v9.2/WhoAmI").json()["UserId"]).lower()
