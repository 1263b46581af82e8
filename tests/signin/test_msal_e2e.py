"""MSAL for Python, unchanged, against the emulator as an OpenID Connect authority over HTTPS:
auth code (no browser), the system browser, device code, silent renewal, a refused token, a
revoked refresh token, AD FS, several accounts, discovery — and no secret in any file."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msal
import pytest

from core.config import logs
from core.config.credentials import TokenCacheStore
from core.crm import CrmAuthError, CrmClient
from core.crm.discovery import challenge, discover, environments
from core.crm.errors import AccountChoiceRequired, SignInFailed, SignInRequired
from core.crm.token_cache import MemoryCacheStore
from core.domain import demo_data
from crmserver import RunningServer, TlsFiles
from tests.memory_keyring import MemoryKeyring
from tests.signin.authority import (
    ME,
    PASSWORD,
    authority_server,
    ca_of,
    context_of,
    raw_who_am_i,
    sign_in,
    tenant_authority,
    user_id,
)
from tests.signin.authority import (
    signer as signer_for,
)
from tests.signin.pages import approve_device_code, system_browser

OTHER = demo_data.USERS[1].email


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    with authority_server(tmp_path_factory.mktemp("signin") / "org.db", crm_tls) as running:
        yield running


def test_auth_code_sign_in_reads_who_am_i_and_outlives_the_process(
    server: RunningServer, ring: MemoryKeyring
) -> None:
    hint = challenge(server.url, ca_of(server))
    assert hint.resource == server.url + "/" and hint.authority.startswith(server.url + "/")
    signer = sign_in(server, TokenCacheStore("e2e"), authority=hint.authority)
    assert [a.username for a in signer.accounts()] == [ME]
    expires = signer.expires_at()
    assert expires is not None and 3000 < expires.timestamp() - time.time() <= 3600
    with CrmClient(server.url, signer.bearer_auth(), verify=ca_of(server)) as crm:
        assert crm.who_am_i().user_id == user_id(server)
    assert TokenCacheStore("e2e").load()  # kept in the keyring …
    # … so a new process signs in silently.
    later = signer_for(
        server, TokenCacheStore("e2e"), authority=hint.authority, username=ME.upper()
    )
    with CrmClient(server.url, later.bearer_auth(), verify=ca_of(server)) as crm:
        assert crm.who_am_i().user_id == user_id(server)


def test_system_browser_sign_in(server: RunningServer) -> None:
    signer = signer_for(server)
    opened: list[bool] = []
    with system_browser(ME, PASSWORD, context_of(server)) as browser:
        signed = signer.sign_in_interactive(timeout=30, on_browser=lambda: opened.append(True))
    assert browser.errors == [] and opened == [True]
    assert "code_challenge_method=S256" in browser.opened[0]  # PKCE
    assert "redirect_uri=http%3A%2F%2Flocalhost%3A" in browser.opened[0]  # loopback
    assert signed.username == ME
    assert raw_who_am_i(server, signer.token()).status_code == 200


def test_device_code_approved_on_the_verification_page(server: RunningServer) -> None:
    signer = signer_for(server)
    flow = signer.start_device_flow()
    assert flow.user_code in flow.message and flow.verification_uri == server.url + "/devicelogin"
    approve = threading.Thread(
        target=approve_device_code,
        args=(flow.verification_uri, flow.user_code, ME, PASSWORD, context_of(server)),
    )
    approve.start()
    signed = signer.finish_device_flow(flow)
    approve.join()
    assert signed.username == ME and signer.username == ME
    assert raw_who_am_i(server, signer.token()).status_code == 200


def test_a_declined_device_code_is_a_failed_sign_in(server: RunningServer) -> None:
    signer = signer_for(server)
    flow = signer.start_device_flow()
    threading.Thread(
        target=approve_device_code,
        args=(flow.verification_uri, flow.user_code, ME, PASSWORD, context_of(server), "deny"),
    ).start()
    with pytest.raises(SignInFailed) as info:
        signer.finish_device_flow(flow)
    assert info.value.error in ("access_denied", "authorization_declined")
    assert signer.accounts() == []


def test_silent_renewal_after_the_access_token_expires(tmp_path: Path, crm_tls: TlsFiles) -> None:
    with authority_server(
        tmp_path / "short.db", crm_tls, access_token_lifetime=2, clock_skew=0
    ) as short:
        signer = sign_in(short, MemoryCacheStore())
        first = signer.token()
        with CrmClient(short.url, signer.bearer_auth(), verify=ca_of(short)) as crm:
            assert crm.who_am_i().user_id == user_id(short)
            time.sleep(2.5)
            assert raw_who_am_i(short, first).status_code == 401  # the CRM refuses it now
            assert crm.who_am_i().user_id == user_id(short)  # renewed without the user
        assert signer.token() != first


def test_a_token_the_crm_refuses_is_renewed_once(server: RunningServer) -> None:
    signer = sign_in(server, MemoryCacheStore())
    kinds = msal.TokenCache.CredentialType
    [at] = list(signer.cache.search(kinds.ACCESS_TOKEN))
    signer.cache.modify(kinds.ACCESS_TOKEN, at, {"secret": "not-a-token-the-crm-knows"})
    assert signer.token() == "not-a-token-the-crm-knows"
    with CrmClient(server.url, signer.bearer_auth(), verify=ca_of(server)) as crm:
        assert crm.who_am_i().user_id == user_id(server)  # 401, renewed, retried
    assert signer.token() != "not-a-token-the-crm-knows"


def test_a_revoked_refresh_token_needs_a_new_sign_in(server: RunningServer) -> None:
    here = MemoryCacheStore()
    signer = sign_in(server, here)
    elsewhere_store = MemoryCacheStore(here.text)  # the same sign-in, copied elsewhere
    elsewhere = signer_for(server, elsewhere_store, authority=signer.authority)
    config = httpx.get(signer.openid_configuration_url(), verify=context_of(server)).json()
    assert config["revocation_endpoint"].startswith("https://")
    removed = signer.sign_out()  # revokes the refresh token at the authority, then forgets
    assert removed is not None and removed.username == ME
    assert signer.accounts() == []
    assert json.loads(str(here.text))["RefreshToken"] == {}  # the stored cache forgot it too
    with pytest.raises(SignInRequired) as gone:
        signer.token()
    assert gone.value.reason == "no_account"
    with pytest.raises(SignInRequired) as revoked:
        elsewhere.token(force_refresh=True)
    assert revoked.value.reason == "invalid_grant" and revoked.value.username == ME
    assert isinstance(revoked.value, CrmAuthError)


def test_adfs_authority(server: RunningServer) -> None:
    signer = sign_in(server, MemoryCacheStore(), authority=server.url + "/adfs")
    assert signer.kind == "adfs"
    with CrmClient(server.url, signer.bearer_auth(), verify=ca_of(server)) as crm:
        assert crm.who_am_i().user_id == user_id(server)


def test_choosing_among_several_accounts(server: RunningServer) -> None:
    store = MemoryCacheStore()
    sign_in(server, store)
    sign_in(server, store, email=OTHER)
    authority = tenant_authority(server)
    anyone = signer_for(server, store, authority=authority)
    with pytest.raises(AccountChoiceRequired) as info:
        anyone.token()
    assert set(info.value.usernames) == {ME, OTHER}
    other = signer_for(server, store, authority=authority, username=OTHER)
    assert raw_who_am_i(server, other.token()).json()["UserId"] == user_id(server, OTHER)


def test_global_discovery_lists_the_environment(server: RunningServer) -> None:
    store = MemoryCacheStore()

    def discovery_token(authority: str, scope: str, hint: str):  # type: ignore[no-untyped-def]
        assert scope == server.url + "/user_impersonation"
        signer = sign_in(server, store, authority=authority, username=hint)
        return signer.token

    found = discover(
        ME,
        verify=ca_of(server),
        authority=server.url + "/organizations",
        discovery_url=server.url,
        discovery_token=discovery_token,
    )
    [env] = found.environments
    assert env.url == server.url and env.enabled and env.friendly_name
    # The same account, the organisation's own scope: no second sign-in.
    org = signer_for(server, store, authority=found.authority, username=ME, org_url=env.url)
    assert raw_who_am_i(server, org.token()).status_code == 200
    with pytest.raises(CrmAuthError):
        environments(lambda: "not-a-token", server.url, ca_of(server))


def test_no_secret_in_any_file_or_log(server: RunningServer, tmp_path: Path) -> None:
    """Sign in (auth code, device code), renew, call the CRM, sign out — with every logger at
    DEBUG into a profile log — then scan every file under the test's directory."""
    log_path = tmp_path / "data" / "logs" / "trackbox.log"
    handler = logs.setup(log_path, level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    for name in ("msal", "httpx", "httpcore", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG)  # as chatty as they get
    store = MemoryCacheStore()
    secrets_seen: set[str] = {PASSWORD}
    try:
        signer = sign_in(server, store)
        flow = signer.start_device_flow()
        threading.Thread(
            target=approve_device_code,
            args=(flow.verification_uri, flow.user_code, ME, PASSWORD, context_of(server)),
        ).start()
        signer.finish_device_flow(flow)
        for token in (signer.token(), signer.token(force_refresh=True)):
            secrets_seen.add(token)
        kinds = msal.TokenCache.CredentialType
        for kind in (kinds.REFRESH_TOKEN, kinds.ID_TOKEN, kinds.ACCESS_TOKEN):
            secrets_seen.update(str(e["secret"]) for e in signer.cache.search(kind))
        with CrmClient(server.url, signer.bearer_auth(), verify=ca_of(server)) as crm:
            crm.who_am_i()
        logging.getLogger("trackbox.test").info("cache %s", store.text)  # a careless line
        signer.sign_out()
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old_level)
        for name in ("msal", "httpx", "httpcore", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
    assert log_path.stat().st_size > 0
    assert len(secrets_seen) >= 5
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        for secret in secrets_seen:
            assert secret.encode() not in data, f"a secret in {path.name}"
