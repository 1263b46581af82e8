"""The same engine on an Exchange mailbox (the fake EWS server, exchangelib unchanged): a new
mail from a CRM contact is tracked by the cycle, marked with the CRM's category on the
server, and untracked again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.model import Address, TrackState
from core.mail import open_backend
from core.workspace.facade import Workspace
from crmserver import RunningServer
from tests.plugins.mailservers import DovecotServer, SmtpServer
from tests.sync.env import ME, Env, mime

JANE = Address("jane.doe@fabrikam.example", "Jane Doe")


def test_cycle_on_an_exchange_mailbox(
    fresh_crm: RunningServer,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    ews_server: Any,
    tmp_path: Path,
) -> None:
    env = Env(fresh_crm, dovecot, smtp_server, tmp_path)
    env.set_incoming_filter(2)
    user = ews_server.new_user()

    def open_mailbox() -> Any:
        return open_backend(
            ews_server.url(), user=user, password=ews_server.password, auth_type="basic"
        )

    ws = Workspace(
        store_path=tmp_path / "ews" / "store.sqlite",
        open_mailbox=open_mailbox,
        crm=CrmClient(fresh_crm.url, BasicAuth(ME.email, demo_data.DEMO_PASSWORD)),
        owner=ME,
    )
    assert ws.sync_cycle().ok
    mid, raw = mime(JANE, ME, "Exchange says hello")
    with open_mailbox() as backend:
        backend.append("Inbox", raw, is_read=False)
    report = ws.sync_cycle()
    assert report.ok, report.errors
    assert report.counts["auto_tracked"] == 1
    [row] = ws.store().messages_by_message_id(mid)
    assert row.track_state is TrackState.TRACKED and len(env.emails(mid)) == 1
    ws.sync_mail()
    assert ws.store().messages_by_message_id(mid)[0].header.tracked_marker
    assert ws.untrack([row.id]).errors == ()
    assert env.emails(mid) == []
    ws.sync_mail()
    assert ws.store().messages_by_message_id(mid)[0].header.tracked_marker is None
    ws.close()
