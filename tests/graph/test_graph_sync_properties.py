"""The sync-convergence property of ``tests/mail/test_sync_properties.py`` on Graph: whatever
happens to a folder between syncs, and wherever a sync is cut short, a replica that applies
the batches ends equal to the folder."""

from __future__ import annotations

import ssl
import uuid

from hypothesis import HealthCheck, given, settings

from core.mail import open_backend
from tests.fakes.graph_server import FakeGraphServer
from tests.mail.test_sync_properties import _server_case, ops
from tests.plugins.graph import GraphTokens


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(script=ops)
def test_graph_replica_converges(
    graph_server: FakeGraphServer, graph_authority: GraphTokens, script: list[tuple]
) -> None:
    user = f"u{uuid.uuid4().hex[:10]}@test.example"  # a fresh mailbox per example
    graph_server.add_mailbox(user)
    token = graph_authority.graph(user)
    verify = ssl.create_default_context(cafile=graph_server.ca_file)
    _server_case(
        lambda: open_backend(
            "graph:", base_url=graph_server.url, token=lambda: token, verify=verify
        ),
        script,
    )
