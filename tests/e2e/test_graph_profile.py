"""A Microsoft 365 profile end to end through the CLI (issue 16): ``trackbox account add
--microsoft365`` signs in once at the emulator's authority (device code, or the browser),
finds the environment from the address, and the profile reads its mailbox from the fake Graph
server with tokens from the same sign-in. ``sync --once`` tracks a contact's mail in the
emulator, ``track`` and ``list`` work, the tracked marker (category + ``crmid``) shows in
Graph, an expired Graph token is renewed without the user, and a revoked sign-in ends in the
credentials exit code and "sign in again" — and ``account sign-in`` brings it back."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import keyring
import pytest

from core.cli.context import CREDENTIALS, OK
from core.cli.sign_in import mail_scopes, microsoft_sign_in
from core.config import credentials
from core.config.credentials import SecretKind, TokenCacheStore, get_secret
from core.config.profiles import Profiles, graph_url
from core.crm.signin import MicrosoftSignIn
from core.domain.model import Address
from core.mail.graph_items import ACTIVITY_PROPERTY, TRACKED_CATEGORY_365
from crmserver import RunningServer, TlsFiles
from tests.fakes import graph_auth
from tests.fakes.graph_server import FakeGraphServer
from tests.memory_keyring import MemoryKeyring
from tests.plugins.crm import crm_http_client
from tests.signin.authority import ME, PASSWORD, authority_server, context_of, tenant_authority
from tests.signin.conftest import Cli
from tests.signin.pages import approve_device_code, system_browser
from tests.sync.env import mime

JANE = Address("jane.doe@fabrikam.example", "Jane Doe")  # a demo contact
SHARED = "sales@contoso.example"


@pytest.fixture
def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Cli]:
    """``trackbox`` in this process, with a private home and an in-memory keyring (the token
    cache lives from one command to the next)."""
    for var in credentials.ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path / "home"))
    try:
        yield Cli(tmp_path / "home", capsys)
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def authority(tmp_path: Path, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    """The emulator as CRM and authority; access tokens good for 3 s, so that every use
    after that renews with the refresh token."""
    with authority_server(
        tmp_path / "org.db", crm_tls, access_token_lifetime=3, clock_skew=0
    ) as running:
        yield running


@pytest.fixture
def graph(
    authority: RunningServer,
    graph_tls: TlsFiles,
    crm_tls: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FakeGraphServer]:
    monkeypatch.setattr(graph_auth, "CLOCK_SKEW", 0)  # an expired token is refused at once
    server = FakeGraphServer(tenant_authority(authority), graph_tls, authority_ca=crm_tls.ca)
    server.start()
    server.add_mailbox(ME)
    try:
        yield server
    finally:
        server.stop()
    assert server.unknown_requests == []


@pytest.fixture
def ca_bundle(tmp_path: Path, crm_tls: TlsFiles, graph_tls: TlsFiles) -> str:
    """One PEM file for the profile's ``crm_ca_file``: the CRM's and authority's CA and the
    fake Graph's (a private CA, as a TLS-inspecting proxy would be)."""
    path = tmp_path / "cas.pem"
    path.write_text(Path(crm_tls.ca).read_text() + Path(graph_tls.ca).read_text())
    return str(path)


class DeviceApprover:
    """Approves every device-code sign-in the CLI starts, as the user would on a phone."""

    def __init__(self, server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = 0
        self.threads: list[threading.Thread] = []
        original = MicrosoftSignIn.start_device_flow
        verify = context_of(server)

        def start(sign_in: MicrosoftSignIn) -> Any:
            flow = original(sign_in)
            self.started += 1
            approve = threading.Thread(
                target=approve_device_code,
                args=(flow.verification_uri, flow.user_code, ME, PASSWORD, verify),
            )
            approve.start()
            self.threads.append(approve)
            return flow

        monkeypatch.setattr(MicrosoftSignIn, "start_device_flow", start)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)


def deliver(graph: FakeGraphServer, subject: str, box: str = ME) -> str:
    message_id, raw = mime(JANE, Address(box), f"{subject} {uuid.uuid4().hex[:6]}")
    graph.add_message(box, "inbox", raw)
    return message_id


def crm_emails(server: RunningServer, message_id: str) -> list[dict[str, Any]]:
    with crm_http_client(server) as http:
        r = http.get("emails", params={"$filter": f"messageid eq '{message_id}'"})
        r.raise_for_status()
        return list(r.json()["value"])


def listed(cli: Cli) -> dict[str, str]:
    ran = cli("list", "--json")
    assert ran.code == OK, ran.err
    return {row["message_id"]: row["state"] for row in json.loads(ran.out)}


def graph_marker(graph: FakeGraphServer, message_id: str, box: str = ME) -> tuple[bool, str]:
    """(the category is set, the ``crmid`` extended property) of a message in Graph."""
    for message in graph.messages(box, "inbox"):
        if message_id.encode() in message.mime:
            stored = message.properties.get(ACTIVITY_PROPERTY.lower(), ("", ""))[1]
            return TRACKED_CATEGORY_365 in message.categories, stored
    raise AssertionError(f"{message_id} is not in {box}'s Inbox")


def graph_token_expiry(profile: str = "default") -> float:
    config = Profiles().load(profile).config
    with microsoft_sign_in(config, profile) as sign_in:
        expires = sign_in.expires_at(mail_scopes(config))
    assert expires is not None, "no Graph token in the profile's cache"
    return expires.timestamp()


def revoke(server: RunningServer, profile: str = "default") -> None:
    """The administrator revokes the user's sessions: every refresh token in the cache."""
    cache = json.loads(str(TokenCacheStore(profile).load()))
    with httpx.Client(verify=context_of(server), timeout=30) as http:
        config = http.get(
            tenant_authority(server) + "/v2.0/.well-known/openid-configuration"
        ).json()
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


def test_microsoft365_profile_from_the_cli_end_to_end(
    cli: Cli,
    authority: RunningServer,
    graph: FakeGraphServer,
    ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = authority
    with crm_http_client(server) as http:  # auto-track mail from leads, contacts, accounts
        me = http.get("WhoAmI").json()["UserId"]
        http.patch(
            f"usersettingscollection({me})", json={"incomingemailfilteringmethod": 2}
        ).raise_for_status()
    old = deliver(graph, "Before Trackbox")
    approver = DeviceApprover(server, monkeypatch)
    added = cli(
        "account",
        "add",
        "--microsoft365",
        "--email",
        ME,
        "--device-code",
        "--authority",
        server.url + "/organizations",
        "--discovery-url",
        server.url,
        "--ca-file",
        ca_bundle,
        "--mail-url",
        graph_url(graph.url),
    )
    approver.join()
    assert added.code == OK, added.err + added.out
    assert approver.started == 1  # one sign-in: discovery, the CRM and Graph
    assert f"Signed in to {server.url} as {ME}" in added.out
    assert "Microsoft 365 through Microsoft Graph" in added.out
    config = Profiles().load("default").config
    assert (config.crm_auth, config.crm_url, config.crm_user) == ("microsoft", server.url, ME)
    assert config.mail_url == graph_url(graph.url) and config.uses_graph_mail
    assert get_secret("default", SecretKind.MAIL, ME) is None  # no mail password anywhere

    first = cli("sync", "--once")  # the baseline: old mail is not tracked automatically
    assert first.code == OK, first.err + first.out
    new = deliver(graph, "Quote for 20 chairs")
    synced = cli("sync", "--once", "--json")
    assert synced.code == OK, synced.err + synced.out
    assert json.loads(synced.out)["counts"]["auto_tracked"] == 1
    assert listed(cli) == {old: "not_tracked", new: "tracked"}

    tracked = cli("track", old)
    assert tracked.code == OK, tracked.err + tracked.out
    assert cli("sync", "--once").code == OK
    assert listed(cli) == {old: "tracked", new: "tracked"}
    for message_id in (old, new):
        [email] = crm_emails(server, message_id)
        assert graph_marker(graph, message_id) == (True, email["activityid"])

    # An expired Graph token is renewed with the refresh token: no sign-in, no browser.
    stale = graph_token_expiry()
    time.sleep(max(0.0, stale - time.time()) + 1.0)
    assert cli("sync", "--once").code == OK
    assert graph_token_expiry() > stale and approver.started == 1
    diagnosed = cli("diagnose")
    assert "[ok] mail sign-in" in diagnosed.out and "graph token: expire" in diagnosed.out

    revoke(server)
    refused = cli("sync", "--once", "--json")
    assert refused.code == CREDENTIALS, refused.out + refused.err
    assert "sign in again: trackbox account sign-in" in refused.err
    problems = json.loads(refused.out)["errors"]
    assert {"problem": "crm_sign_in_expired", "what": "synchronising the mailbox"} in [
        {"problem": p["problem"], "what": p["what"]} for p in problems
    ], problems
    diagnosed = cli("diagnose")
    [mail_check] = [line for line in diagnosed.out.splitlines() if "mail sign-in" in line]
    assert "[FAIL]" in mail_check and "sign in again" in mail_check

    with system_browser(ME, PASSWORD, context_of(server)) as browser:
        again = cli("account", "sign-in")
    assert again.code == OK and browser.errors == [], again.err
    later = deliver(graph, "After signing in again")
    assert cli("sync", "--once").code == OK
    assert listed(cli)[later] == "tracked"


def test_shared_mailbox_with_a_browser_sign_in_at_the_org_url(
    cli: Cli, authority: RunningServer, graph: FakeGraphServer, ca_bundle: str
) -> None:
    server = authority
    graph.grant(SHARED, ME)
    mid = deliver(graph, "For the sales team", box=SHARED)
    with system_browser(ME, PASSWORD, context_of(server)) as browser:
        added = cli(
            "account",
            "add",
            "--microsoft365",
            "--email",
            ME,
            "--org-url",
            server.url,
            "--mail-url",
            graph_url(graph.url, SHARED),  # only the shared mailbox
            "--ca-file",
            ca_bundle,
        )
    assert added.code == OK and browser.errors == [], added.err + added.out
    assert len(browser.opened) == 1
    assert f"Microsoft 365 through Microsoft Graph ({SHARED})" in added.out
    config = Profiles().load("default").config
    assert config.mail_url == graph_url(graph.url, SHARED)
    assert config.crm_authority == tenant_authority(server)  # from the org's challenge
    assert cli("sync", "--once").code == OK
    assert listed(cli) == {mid: "not_tracked"}  # the first sync is the baseline
    assert cli("track", mid).code == OK
    assert cli("sync", "--once").code == OK
    [email] = crm_emails(server, mid)
    assert graph_marker(graph, mid, box=SHARED) == (True, email["activityid"])
    assert any(f"/users/{SHARED}/" in r for r in graph.requests)


def test_a_microsoft_profile_switched_to_graph_signs_in_once_more(
    cli: Cli, authority: RunningServer, graph: FakeGraphServer, ca_bundle: str, tmp_path: Path
) -> None:
    """A profile whose sign-in never consented to Graph (it read a Maildir): the mailbox
    cannot get a token — "sign in again", the credentials exit code, the CRM still synced —
    and one ``account sign-in`` (which now consents to Graph too) fixes it."""
    server = authority
    folder = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True)
    with system_browser(ME, PASSWORD, context_of(server)):
        added = cli(
            "account",
            "add",
            "--mail-url",
            f"maildir:{folder}",
            "--sign-in",
            "microsoft",
            "--org-url",
            server.url,
            "--crm-user",
            ME,
            "--ca-file",
            ca_bundle,
        )
    assert added.code == OK, added.err
    profiles = Profiles()
    data = profiles.load("default").config.to_dict()
    profiles.save("default", {**data, "mail_url": graph_url(graph.url)})
    mid = deliver(graph, "Hello again")

    refused = cli("sync", "--once", "--json")
    assert refused.code == CREDENTIALS, refused.out + refused.err
    report = json.loads(refused.out)
    assert report["online"] and not report["mail_online"]  # the CRM answered
    assert [p["what"] for p in report["errors"]] == ["synchronising the mailbox"]
    assert "sign in again: trackbox account sign-in" in refused.err

    with system_browser(ME, PASSWORD, context_of(server)) as browser:
        assert cli("account", "sign-in").code == OK
    assert browser.errors == []
    assert cli("sync", "--once").code == OK
    assert mid in listed(cli)
