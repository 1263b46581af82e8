"""A draft saved while the mailbox was away reaches its Drafts folder with the next sync
cycle that reaches the mailbox, even when its compose window was closed meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient

from core.domain.model import Address
from core.mail import MailUnavailable
from core.mail.drafts import Draft
from core.workspace.drafts import DraftBox, new_draft_id
from crmserver import RunningServer
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer
from tests.sync.env import Env


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    yield Env(fresh_crm, dovecot, smtp_server, tmp_path)


def _drafts_on_server(env: Env, user: str) -> list[bytes]:
    with IMAPClient(env.dovecot.host, env.dovecot.imap_port, ssl=False) as imap:
        imap.login(user, PASSWORD)
        imap.select_folder("Drafts", readonly=True)
        found = imap.fetch(imap.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        return [v[b"BODY[HEADER.FIELDS (SUBJECT)]"] for v in found.values()]


def test_a_draft_saved_offline_reaches_drafts_with_the_next_cycle(env: Env) -> None:
    ws, user = env.workspace("drafts")
    assert ws.sync_cycle().ok  # the mailbox's folders, Drafts among them, are known
    reachable = ws.open_mailbox

    def away() -> object:
        raise MailUnavailable("the mail server is away")

    ws.open_mailbox = away  # type: ignore[assignment]
    box = DraftBox.of(ws)
    draft_id = new_draft_id()
    box.save(draft_id, Draft(to=(Address("jane@fabrikam.example"),), subject="Offline draft"))
    with pytest.raises(MailUnavailable):
        box.push(draft_id)  # the window's own try: the mailbox is away
    assert _drafts_on_server(env, user) == []

    ws.open_mailbox = reachable  # back; the compose window is long closed
    assert ws.sync_cycle().ok
    (subject,) = _drafts_on_server(env, user)
    assert b"Offline draft" in subject
    assert ws.sync_cycle().ok  # caught up: no second copy
    assert len(_drafts_on_server(env, user)) == 1
    ws.close()
