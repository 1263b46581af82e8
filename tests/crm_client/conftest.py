"""A CrmClient on the session emulator, logged in as the demo user ME."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from crmserver import RunningServer


@pytest.fixture
def crm(crm_server: RunningServer) -> Iterator[CrmClient]:
    with CrmClient(
        crm_server.url, BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD), timeout=30
    ) as client:
        yield client
