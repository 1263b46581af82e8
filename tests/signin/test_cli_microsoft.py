"""``trackbox`` with Microsoft sign-in against the emulator as the authority: ``account add``
from the organisation's URL and from an e-mail address (browser sign-in), ``diagnose``, and a
revoked sign-in: a clear "sign in again", the credentials exit code, the queued operation left
as it was, and after ``account sign-in`` it goes through."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.cli.context import CREDENTIALS, OK
from core.config.credentials import TokenCacheStore
from core.config.profiles import Profiles
from core.domain.model import Address
from crmserver import RunningServer, TlsFiles
from tests.signin.authority import (
    ME,
    PASSWORD,
    authority_server,
    ca_of,
    close_signers,
    context_of,
    tenant_authority,
)
from tests.signin.conftest import Cli, maildir
from tests.signin.pages import system_browser
from tests.sync.env import mime

CUSTOMER = Address("pat.customer@fabrikam.example", "Pat Customer")


@pytest.fixture
def short_lived(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    """Access tokens good for 2 s: every call renews with the refresh token."""
    with authority_server(
        tmp_path / "org.db", crm_tls, access_token_lifetime=2, clock_skew=0
    ) as running:
        yield running


def _mailbox(path: Path) -> tuple[str, str]:
    url = maildir(path)
    message_id, data = mime(CUSTOMER, Address(ME), f"Quote {uuid.uuid4().hex[:6]}")
    (path / "new" / f"{uuid.uuid4().hex}.eml").write_bytes(data)
    return url, message_id


def _revoke(server: RunningServer, profile: str) -> None:
    """The administrator revokes the user's sessions: every refresh token in the cache."""
    cache = json.loads(str(TokenCacheStore(profile).load()))
    authority = tenant_authority(server)
    with httpx.Client(verify=context_of(server), timeout=30) as http:
        config = http.get(authority + "/v2.0/.well-known/openid-configuration").json()
        for entry in cache["RefreshToken"].values():
            answer = http.post(
                config["revocation_endpoint"],
                data={
                    "token": entry["secret"],
                    "token_type_hint": "refresh_token",
                    "client_id": entry["client_id"],
                },
            )
            assert answer.status_code == 200


def test_add_from_the_org_url_then_revoked_then_signed_in_again(
    cli: Cli, short_lived: RunningServer, tmp_path: Path
) -> None:
    server = short_lived
    mail_url, message_id = _mailbox(tmp_path / "Maildir")
    with system_browser(ME, PASSWORD, context_of(server)) as browser:
        added = cli(
            "account",
            "add",
            "--mail-url",
            mail_url,
            "--sign-in",
            "microsoft",
            "--org-url",
            server.url,
            "--crm-user",
            ME,
            "--ca-file",
            ca_of(server),
        )
    assert added.code == OK, added.err
    assert browser.errors == [] and len(browser.opened) == 1
    assert f"Signed in to {server.url} as {ME}" in added.out
    config = Profiles().load("default").config
    assert (config.crm_auth, config.crm_url, config.crm_user) == ("microsoft", server.url, ME)
    assert config.crm_authority == tenant_authority(server)  # from the 401 challenge
    assert TokenCacheStore("default").load()

    synced = cli("sync", "--once")
    assert synced.code == OK, synced.err + synced.out
    diagnosed = cli("diagnose")
    assert "kind: microsoft" in diagnosed.out and f"account: {ME}" in diagnosed.out
    assert f"authority: {config.crm_authority}" in diagnosed.out
    assert "access token: expire" in diagnosed.out
    assert "[ok] crm sign-in" in diagnosed.out

    _revoke(server, "default")
    refused = cli("track", message_id)
    assert refused.code == CREDENTIALS, refused.out + refused.err
    assert "sign in again: trackbox account sign-in" in refused.err
    synced = cli("sync", "--once")  # a cycle stops cleanly and says the same
    assert synced.code == CREDENTIALS, synced.out + synced.err
    assert "sign in again: trackbox account sign-in" in synced.err
    queued = cli("queue", "list", "--json")
    assert queued.code == OK
    [op] = json.loads(queued.out)
    assert (op["message_id"], op["attempts"], op["state"]) == (message_id, 0, "queued")
    diagnosed = cli("diagnose")
    assert "[FAIL] crm sign-in" in diagnosed.out and "sign in again" in diagnosed.out

    with system_browser(ME, PASSWORD, context_of(server)) as browser:
        again = cli("account", "sign-in")
    assert again.code == OK, again.err
    assert f"Signed in to {server.url} as {ME}" in again.out
    replayed = cli("sync", "--once")
    assert replayed.code == OK, replayed.err + replayed.out
    assert json.loads(cli("queue", "list", "--json").out) == []
    listed = cli("list", "--json")
    [row] = [r for r in json.loads(listed.out) if r["message_id"] == message_id]
    assert row["state"] == "tracked"

    out = cli("account", "sign-out")
    assert out.code == OK and f"Signed out {ME}" in out.out
    assert cli("sync", "--once").code == CREDENTIALS
    close_signers()


def test_add_from_an_e_mail_address_finds_the_environment(
    cli: Cli, short_lived: RunningServer, tmp_path: Path
) -> None:
    server = short_lived
    mail_url, _ = _mailbox(tmp_path / "Maildir")
    with system_browser(ME, PASSWORD, context_of(server)) as browser:
        added = cli(
            "account",
            "add",
            "--mail-url",
            mail_url,
            "--sign-in",
            "microsoft",
            "--crm-user",
            ME,
            "--ca-file",
            ca_of(server),
            "--authority",
            server.url + "/organizations",
            "--discovery-url",
            server.url,
        )
    assert added.code == OK, added.err
    assert len(browser.opened) == 1  # one sign-in for discovery and the organisation
    config = Profiles().load("default").config
    assert (config.crm_url, config.crm_authority) == (server.url, server.url + "/organizations")
    assert cli("sync", "--once").code == OK
    # Another profile has a token cache of its own: it signs in again.
    with system_browser(ME, PASSWORD, context_of(server)):
        wrong = cli(
            "account",
            "add",
            "--profile",
            "other",
            "--mail-url",
            mail_url,
            "--sign-in",
            "microsoft",
            "--crm-user",
            ME,
            "--ca-file",
            ca_of(server),
            "--authority",
            server.url + "/organizations",
            "--discovery-url",
            server.url,
            "--environment",
            "nope",
        )
    assert wrong.code != OK and "No environment 'nope'" in wrong.err
    assert "Contoso" in wrong.err  # what the account can reach
    assert "other" not in Profiles().names()


def test_windows_sign_in_is_suggested_by_the_challenge(
    cli: Cli, ntlm_accounts: object, crm_server: RunningServer, tmp_path: Path
) -> None:
    from tests.fakes.ntlm_proxy import running_proxy

    with running_proxy(crm_server.url, ntlm_accounts) as proxy:  # type: ignore[arg-type]
        refused = cli(
            "account",
            "add",
            "--mail-url",
            maildir(tmp_path / "M"),
            "--sign-in",
            "microsoft",
            "--org-url",
            proxy.url.replace("http://", "https://"),
            "--crm-user",
            ME,
        )
    assert refused.code != OK
    # The proxy speaks plain HTTP: the https:// URL cannot be reached at all.
    assert "Not reachable now" in refused.err or "does not say where" in refused.err
