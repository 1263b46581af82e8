"""The seed scenarios of issue 4 and the two-mailbox "one activity, both show tracked" case
with Microsoft 365 mailboxes (issue 16): the same scenes as
``tests/e2e/test_seed_scenarios_e2e.py`` and ``tests/sync/test_cycle.py``, the mailbox being
the fake Graph server instead of Dovecot, opened as a profile opens it
(``core.cli.sign_in.open_mail``: a ``graph://`` URL, tokens from a real sign-in at the
emulator's authority that consented to Graph's mail scopes). The CRM is an emulator of its
own per mode (over HTTP, HTTP Basic), as in the Dovecot version."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.cli.sign_in import open_mail
from core.config.profiles import ProfileConfig, graph_url
from core.crm import BasicAuth, CrmClient
from core.crm.signin import MicrosoftSignIn
from core.domain import demo_data
from core.domain.model import Address, TrackState
from core.mail.graph_items import ACTIVITY_PROPERTY, TRACKED_CATEGORY_365
from core.workspace.facade import Workspace
from crmserver import RunningServer, Settings, run_in_thread
from tests.e2e.test_seed_scenarios_e2e import MODES, SCENARIOS, Scene
from tests.fakes.graph_server import FakeGraphServer
from tests.plugins.graph import GraphTokens
from tests.sync.env import ME, Env, mime

JANE = Address("jane.doe@fabrikam.example", "Jane Doe")
PRIYA = Address("priya.shah@contoso.example", "Priya Shah")


class GraphDelivery:
    """Stands in for Dovecot's delivery in the scenes: mail arrives in a Graph Inbox (the
    "user" is the mailbox's address)."""

    def __init__(self, graph: FakeGraphServer) -> None:
        self.graph = graph

    def deliver(self, user: str, raw: bytes) -> None:
        self.graph.add_message(user, "inbox", raw)


@dataclass
class GraphEnv(Env):
    """:class:`Env` whose workspaces read Microsoft 365 mailboxes through Graph."""

    graph: FakeGraphServer | None = None
    tokens: GraphTokens | None = None
    sign_ins: dict[str, MicrosoftSignIn] = field(default_factory=dict)

    def sign_in(self, email: str) -> MicrosoftSignIn:
        """``email``'s sign-in at the authority (one per user, consented to Graph)."""
        assert self.tokens is not None
        if email not in self.sign_ins:
            self.sign_ins[email] = self.tokens.signed_in(email)
        return self.sign_ins[email]

    def workspace(
        self,
        name: str,
        owner: Address = ME,
        mailbox_user: str | None = None,
        crm_url: str | None = None,
    ) -> tuple[Workspace, str]:
        """A workspace for ``owner`` on their own Graph mailbox (``/me``); returns it and the
        mailbox's address (to deliver into)."""
        graph = self.graph
        assert graph is not None
        graph.add_mailbox(owner.email, outbox=True)
        config = ProfileConfig(
            mail_url=graph_url(graph.url),
            crm_url=crm_url or self.crm.url,
            crm_user=owner.email,
            crm_auth="microsoft",
            crm_ca_file=str(graph.ca_file),
        )
        sign_in = self.sign_in(owner.email)

        def open_mailbox() -> Any:
            return open_mail(config, name, sign_in=sign_in)

        crm = CrmClient(
            config.crm_url,
            BasicAuth(owner.email, demo_data.DEMO_PASSWORD),
            timeout=10,
            get_retries=0,
        )
        ws = Workspace(
            store_path=self.tmp / name / "store.sqlite",
            open_mailbox=open_mailbox,
            crm=crm,
            owner=owner,
            mailbox_name=owner.email,
        )
        return ws, owner.email

    def close(self) -> None:
        for made in self.sign_ins.values():
            made.close()


@pytest.fixture(scope="module", params=list(MODES))
def mode_crm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, RunningServer, Path]]:
    """The CRM of one mode (server-side or client tracking), shared by its scenarios."""
    mode = request.param
    root = tmp_path_factory.mktemp(f"graph-seed-{mode}")
    with run_in_thread(Settings(db_path=root / "org.db", seed="demo")) as server:
        yield mode, server, root


def graph_env(
    crm: RunningServer, graph: FakeGraphServer, tokens: GraphTokens, tmp: Path
) -> GraphEnv:
    return GraphEnv(crm, GraphDelivery(graph), None, tmp, graph, tokens)  # type: ignore[arg-type]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_seed_scenario_with_a_graph_mailbox(
    scenario: str,
    mode_crm: tuple[str, RunningServer, Path],
    graph_server: FakeGraphServer,
    graph_authority: GraphTokens,
    tmp_path: Path,
) -> None:
    mode, crm, _ = mode_crm
    env = graph_env(crm, graph_server, graph_authority, tmp_path)
    env.set_incoming_filter(MODES[mode])
    play, server_side, client = SCENARIOS[scenario]
    scene = Scene(env, f"{mode}-{scenario.split()[0]}")
    try:
        mid = play(scene)
        expected = server_side if mode == "server-side" else client
        assert scene.tracked(mid) is expected
        if not expected:  # "– until X tracks it"
            scene.track_by_hand(mid)
            assert scene.tracked(mid)
            scene.cycle()  # and the next cycle keeps it so
            assert scene.tracked(mid)
        scene.cycle()  # the marker is in Graph too, where Outlook sees it
        [email] = env.emails(mid)
        assert markers(graph_server, ME.email, mid) == [(True, email["activityid"])]
    finally:
        scene.ws.close()
        env.close()


def markers(graph: FakeGraphServer, box: str, message_id: str) -> list[tuple[bool, str]]:
    """(category set, ``crmid``) of every copy of ``message_id`` in ``box``'s Inbox and Sent
    Items."""
    found = []
    for folder in ("inbox", "sentitems"):
        for message in graph.messages(box, folder):
            if message_id.encode() in message.mime:
                stored = message.properties.get(ACTIVITY_PROPERTY.lower(), ("", ""))[1]
                found.append((TRACKED_CATEGORY_365 in message.categories, stored))
    return found


def row_of(ws: Workspace, message_id: str) -> Any:
    rows = ws.store().messages_by_message_id(message_id)
    assert rows, f"{message_id} not in the store"
    return rows[0]


def test_same_message_in_two_graph_mailboxes_is_one_activity(
    fresh_crm: RunningServer,
    graph_server: FakeGraphServer,
    graph_authority: GraphTokens,
    tmp_path: Path,
) -> None:
    env = graph_env(fresh_crm, graph_server, graph_authority, tmp_path)
    mine, my_box = env.workspace("me2")
    hers, her_box = env.workspace("priya", owner=PRIYA)
    try:
        assert mine.sync_cycle().ok and hers.sync_cycle().ok
        # Addressed to both: the CRM lets each see the activity (owner or party).
        mid, raw = mime(JANE, (ME, PRIYA), "For both of you")
        env.dovecot.deliver(my_box, raw)
        env.dovecot.deliver(her_box, raw)
        mine.sync_mail()
        assert mine.track([row_of(mine, mid).id]).errors == ()
        hers.sync_cycle()
        assert row_of(hers, mid).track_state is TrackState.TRACKED_BY_OTHER
        assert hers.track([row_of(hers, mid).id]).errors == ()
        [email] = env.emails(mid)
        assert row_of(hers, mid).track_state is TrackState.TRACKED
        assert row_of(hers, mid).activity_id == row_of(mine, mid).activity_id
        mine.sync_cycle()
        hers.sync_cycle()
        assert row_of(mine, mid).track_state is TrackState.TRACKED
        # Both mailboxes show it tracked in Graph, with the one activity.
        for box in (my_box, her_box):
            assert markers(graph_server, box, mid) == [(True, email["activityid"])]
    finally:
        mine.close()
        hers.close()
        env.close()
