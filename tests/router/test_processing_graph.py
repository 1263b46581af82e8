"""A Microsoft 365 mailbox for the router: a mailbox whose CRM server profile says Exchange
Online (and that the config does not map) is processed through Graph with the service's
app-only token (client credentials, application permissions) at ``/users/{address}``: new
mail is tracked for its owner, Pending Send mail is sent with ``sendMail``. The fake Graph
server stands in for Microsoft 365 and fails the test on a request it does not know."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import httpx
import pytest

from core.config.credentials import SecretKind, set_secret
from crmserver import RunningServer, TlsFiles
from crmserver.auth import hash_password
from crmserver.seed import ROUTER_USER_ID, user_id
from crmserver.storage import Storage
from router.context import EXCHANGE_ONLINE
from router.processing import mailbox, run_mailbox
from tests.fakes.graph_server import FakeGraphServer
from tests.plugins.graph import GraphTokens
from tests.plugins.mailservers import DovecotServer, SmtpServer

from .processing_env import PROFILE, SAM, RouterEnv, mime
from .test_processing_outgoing import email, send_from_crm

GRAPH = "https://graph.microsoft.com"
GRAPH_ROLES = ("Mail.ReadWrite", "Mail.Send")


def register_graph_app(authority: GraphTokens, roles: tuple[str, ...] = GRAPH_ROLES) -> str:
    """The router's application at the Graph tenant's authority, with a client secret and
    the application permissions the tenant's admin consented to it."""
    client_id = f"trackbox-router-graph-{uuid.uuid4().hex[:8]}"
    storage = Storage(str(authority.server.settings.db_path))
    try:
        storage.add_application(client_id, hash_password("graph-secret"), ROUTER_USER_ID, "router")
        storage.grant_app_roles(client_id, GRAPH, roles)
    finally:
        storage.close()
    set_secret(PROFILE, SecretKind.CRM, client_id, "graph-secret")
    return client_id


def exchange_online_profile(env: RouterEnv, address: str) -> None:
    """An Exchange Online server profile on the mailbox, as the administrator sets it."""
    with env.http() as http:
        made = http.post(
            "emailserverprofiles",
            json={"name": "Microsoft 365", "servertype": EXCHANGE_ONLINE},
            headers={"Prefer": "return=representation"},
        )
        made.raise_for_status()
        profile = made.json()["emailserverprofileid"]
        box = env.mailbox_id(address)
        bind = {"emailserverprofile@odata.bind": f"/emailserverprofiles({profile})"}
        http.patch(f"mailboxes({box})", json=bind).raise_for_status()


@pytest.fixture
def env(
    fresh_crm_https: RunningServer,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    tmp_path: Path,
    graph_authority: GraphTokens,
    graph_server: FakeGraphServer,
    graph_tls: TlsFiles,
) -> Iterator[RouterEnv]:
    e = RouterEnv(fresh_crm_https, dovecot, smtp_server, tmp_path)
    e.register_service()
    client_id = register_graph_app(graph_authority)
    e.extra = [
        "[graph]",
        f'client_id = "{client_id}"',
        f'token_url = "{graph_authority.authority}/oauth2/v2.0/token"',
        f'base_url = "{graph_server.url}"',
        f'ca_file = "{graph_tls.ca}"',
    ]
    graph_server.add_mailbox(SAM.email)
    exchange_online_profile(e, SAM.email)
    yield e


def test_an_exchange_online_mailbox_is_processed_through_graph_with_an_app_only_token(
    env: RouterEnv, graph_server: FakeGraphServer
) -> None:
    ctx = env.context()
    box = mailbox(ctx, env.mailbox_id(SAM.email))
    assert ctx.server_of(box) is None  # not in [mailboxes]: its server profile decides
    assert run_mailbox(ctx, box.mailbox_id).errors == ()  # the baseline
    env.set_filter(SAM.email, 0)
    mid, raw = mime("customer@fabrikam.example", SAM.email, "Through Microsoft 365")
    graph_server.add_message(SAM.email, "inbox", raw)
    activity = send_from_crm(env, "A quote through Graph")

    run = run_mailbox(ctx, box.mailbox_id)
    assert run.errors == () and (run.promoted, run.sent) == (1, 1)
    [tracked] = env.emails(mid)
    assert tracked["_ownerid_value"] == user_id(SAM.email)
    [sent] = graph_server.sent
    row = email(env, activity)
    assert row["statuscode"] == 3
    assert str(message_from_bytes(sent.mime)["Subject"]) == row["subject"]
    assert sent.mailbox == SAM.email and sent.saved_id  # saved to Sent Items by Exchange
    paths = [r.split(" ", 2)[1] for r in graph_server.requests]
    assert paths and all(p.startswith(f"/v1.0/users/{SAM.email}") or "$batch" in p for p in paths)


def test_graph_refuses_me_for_an_app_only_token(
    env: RouterEnv, graph_server: FakeGraphServer
) -> None:
    """The fake holds app-only tokens to Graph's rules: ``/me`` means nothing without a user."""
    ctx = env.context()
    assert ctx.graph is not None
    token = ctx.graph.token()
    verify = ctx.graph.verify
    with httpx.Client(verify=verify, timeout=30) as http:
        me = http.get(
            f"{graph_server.url}/me/mailFolders", headers={"Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 400
        theirs = http.get(
            f"{graph_server.url}/users/{SAM.email}/mailFolders",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert theirs.status_code == 200
    graph_server.unknown_requests.clear()  # the /me request was refused on purpose


def test_without_consented_graph_permissions_the_mailbox_gets_an_alert(
    env: RouterEnv, graph_authority: GraphTokens
) -> None:
    unconsented = register_graph_app(graph_authority, roles=())
    env.extra[1] = f'client_id = "{unconsented}"'
    ctx = env.context()
    box = env.mailbox_id(SAM.email)
    run = run_mailbox(ctx, box)
    assert run.errors and "Graph sign-in was refused" in run.errors[0]
    alerts = list(ctx.crm.query("tracelogs", filter=f"_regardingobjectid_value eq {box}"))
    assert any("Graph sign-in was refused" in a["text"] for a in alerts)
