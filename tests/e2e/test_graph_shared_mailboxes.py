"""A Microsoft 365 profile with a shared mailbox beside the user's own (issue 16), end to end
through the CLI: ``account add --microsoft365 --shared-mailbox`` signs in once (consenting to
the shared-mailbox permissions), ``sync --once`` brings both mailboxes' mail into the store
(the shared one under a folder named by its address), tracking a message of the shared
mailbox creates the CRM e-mail and puts the marker on that message in the shared mailbox; a
grant taken away leaves the user's own mail syncing; ``account mailboxes`` removes and adds
the shared mailbox again."""

# ruff: noqa: F811 (the fixtures of test_graph_profile, imported to be used here)

from __future__ import annotations

import json

from core.cli.context import FAILED, OK, USAGE
from core.config.profiles import Profiles, graph_url
from crmserver import RunningServer
from tests.e2e.test_graph_profile import (  # noqa: F401 (fixtures)
    SHARED,
    authority,
    ca_bundle,
    cli,
    crm_emails,
    deliver,
    graph,
    graph_marker,
    listed,
)
from tests.fakes.graph_server import FakeGraphServer
from tests.signin.authority import ME, PASSWORD, context_of
from tests.signin.conftest import Cli
from tests.signin.pages import system_browser

SHARED_INBOX = f"{SHARED}/Inbox"


def listed_in(cli: Cli, folder: str) -> dict[str, str]:
    ran = cli("list", "--json", "--folder", folder)
    assert ran.code == OK, ran.err
    return {row["message_id"]: row["state"] for row in json.loads(ran.out)}


def test_a_shared_mailbox_beside_the_own_synced_and_tracked(
    cli: Cli, authority: RunningServer, graph: FakeGraphServer, ca_bundle: str
) -> None:
    server = authority
    graph.grant(SHARED, ME)
    own = deliver(graph, "For me")
    shared = deliver(graph, "For the sales team", box=SHARED)
    with system_browser(ME, PASSWORD, context_of(server)) as browser:
        added = cli(
            "account",
            "add",
            "--microsoft365",
            "--email",
            ME,
            "--org-url",
            server.url,
            "--shared-mailbox",
            SHARED,
            "--mail-url",
            graph_url(graph.url),
            "--ca-file",
            ca_bundle,
        )
    assert added.code == OK and browser.errors == [], added.err + added.out
    assert len(browser.opened) == 1  # one sign-in for the CRM, the own and the shared mail
    assert f"Shared mailboxes: {SHARED}." in added.out
    config = Profiles().load("default").config
    assert config.mail_url == graph_url(graph.url) and config.extra_mailboxes == (SHARED,)

    assert cli("sync", "--once").code == OK
    assert listed(cli) == {own: "not_tracked"}  # the first sync is the baseline
    assert listed_in(cli, SHARED_INBOX) == {shared: "not_tracked"}
    assert any(f"/users/{SHARED}/" in r for r in graph.requests)

    assert cli("track", shared).code == OK
    assert cli("sync", "--once").code == OK
    [email] = crm_emails(server, shared)
    assert graph_marker(graph, shared, box=SHARED) == (True, email["activityid"])
    assert graph_marker(graph, own) == (False, "")
    assert listed_in(cli, SHARED_INBOX) == {shared: "tracked"}

    graph._grants.discard((SHARED, ME))  # the owner takes the user's access away
    later = deliver(graph, "Still for me")
    synced = cli("sync", "--once", "--json")
    # The user's own mail syncs; the lost mailbox is a problem of its own (not "sign in").
    assert synced.code == FAILED, synced.out + synced.err
    report = json.loads(synced.out)
    assert report["online"] and report["mail_online"]
    assert [(e["problem"], e["what"]) for e in report["errors"]] == [
        ("mail_failed", f"the shared mailbox {SHARED}")
    ]
    assert later in listed(cli)
    assert listed_in(cli, SHARED_INBOX) == {shared: "tracked"}  # kept from before

    removed = cli("account", "mailboxes", "--remove", SHARED)
    assert removed.code == OK and "none" in removed.out, removed.err
    forgotten = cli("list", "--json", "--folder", SHARED_INBOX)
    assert forgotten.code == USAGE and "No folder" in forgotten.err
    assert Profiles().load("default").config.extra_mailboxes == ()

    graph.grant(SHARED, ME)
    again = cli("account", "mailboxes", "--add", SHARED)  # the sign-in consented already
    assert again.code == OK and SHARED in again.out, again.err
    assert cli("sync", "--once").code == OK
    assert listed_in(cli, SHARED_INBOX) == {shared: "tracked"}  # the CRM's truth
