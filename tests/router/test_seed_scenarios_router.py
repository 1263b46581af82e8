"""The seed scenario table (issue 4; ``tests/e2e/test_seed_scenarios_e2e.py`` plays both
columns with the desktop engine) with its server-side column played by the router itself, as
issue 19 asks: X is the demo's server-side user (Hannah; her Dovecot mailbox processed by
the router, incoming and outgoing server-side, option "from leads, contacts and accounts"), C
the demo contact Jane Doe. X sends from the CRM (the router sends it), C's mail arrives in X's
Inbox, and X's own mail client puts what X writes in Sent Items. Tracked = exactly one e-mail
activity with the message's Message-ID in the CRM. The client column stays with the desktop
engine in the e2e test (client mode: the desktop sync decides)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.domain import demo_data
from core.mail import open_backend
from crmserver import RunningServer
from crmserver.seed import guid, user_id
from router.context import RouterContext
from router.processing import run_mailbox
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer

from .processing_env import SAM, RouterEnv, mime

C = demo_data.CONTACTS[0].email


class Scene:
    """X's mailbox processed by the router, and the moves of the scenarios."""

    def __init__(self, env: RouterEnv) -> None:
        self.env = env
        self.ctx: RouterContext = env.context()
        self.box = env.mailbox_id(SAM.email)
        self.contact = guid("contact", C)
        self.cycle()  # the first pass is the baseline

    def cycle(self) -> None:
        run = run_mailbox(self.ctx, self.box)
        assert run.errors == (), run.errors

    def crm_send(self, subject: str) -> str:
        """X sends from the CRM; the router sends it. Returns its Message-ID."""
        with self.env.http(SAM.email) as http:
            r = http.post(
                "emails",
                json={
                    "subject": subject,
                    "description": "<p>Sent from the CRM.</p>",
                    "email_activity_parties": [
                        {
                            "partyid_systemuser@odata.bind": f"/systemusers({user_id(SAM.email)})",
                            "participationtypemask": 1,
                        },
                        {
                            "partyid_contact@odata.bind": f"/contacts({self.contact})",
                            "participationtypemask": 2,
                        },
                    ],
                },
            )
            r.raise_for_status()
            activity = r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
            http.post(
                f"emails({activity})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": True}
            ).raise_for_status()
        self.cycle()  # the router sends it and marks it Sent
        self.cycle()  # its Sent Items copy is synced
        with self.env.http(SAM.email) as http:
            email = http.get(f"emails({activity})").json()
        assert email["statuscode"] == 3
        return str(email["messageid"])

    def subject_of(self, mid: str) -> str:
        [row] = self.env.emails(mid)
        return str(row["subject"])

    def c_writes(self, subject: str, in_reply_to: str | None = None) -> str:
        mid, raw = mime(C, SAM.email, subject)
        if in_reply_to:
            raw = f"In-Reply-To: {in_reply_to}\nReferences: {in_reply_to}\n".encode() + raw
        self.env.deliver(SAM.email, raw)
        self.cycle()
        return mid

    def client_sends(self, subject: str, in_reply_to: str | None = None) -> str:
        """X writes from a mail client: the mail goes out and a copy lands in Sent Items."""
        mid, raw = mime(SAM.email, C, subject)
        if in_reply_to:
            raw = f"In-Reply-To: {in_reply_to}\nReferences: {in_reply_to}\n".encode() + raw
        backend = open_backend(
            self.env.dovecot.url(), user=self.env.users[SAM.email], password=PASSWORD
        )
        with backend:
            backend.append(backend.folder("sent").path, raw)
        self.cycle()
        return mid

    def tracked(self, mid: str) -> bool:
        found = self.env.emails(mid)
        assert len(found) <= 1, f"{mid} is in the CRM {len(found)} times"
        return bool(found)


def _1(s: Scene) -> str:
    return s.crm_send("Quote for 200 licences")


def _2(s: Scene) -> str:
    mid = s.crm_send("Quote for 300 licences")
    return s.c_writes(f"RE: {s.subject_of(mid)}", in_reply_to=mid)


def _3(s: Scene) -> str:
    return s.c_writes("Question about your offer")


def _4a(s: Scene) -> str:
    first = s.c_writes("Delivery dates")
    assert s.tracked(first)  # server-side: C's mail is tracked by X's option
    return s.crm_send("RE: Delivery dates")


def _4b(s: Scene) -> str:
    first = s.c_writes("Installation")
    return s.client_sends("RE: Installation", in_reply_to=first)


def _5(s: Scene) -> str:
    return s.client_sends("Catching up")


def _6(s: Scene) -> str:
    mid = s.client_sends("Lunch next week")
    return s.c_writes("RE: Lunch next week", in_reply_to=mid)


#: Scenario → (play, tracked in the server-side column of the seed table).
SERVER_SIDE: dict[str, tuple[Callable[[Scene], str], bool]] = {
    "1 X sends from the CRM to C": (_1, True),
    "2 C replies to that mail": (_2, True),
    "3 C writes to X (new thread)": (_3, True),
    "4a X replies from the CRM to C's mail": (_4a, True),
    "4b X replies from the mail client to C's mail": (_4b, False),
    "5 X writes to C from the mail client": (_5, False),
    "6 C replies to that mail": (_6, True),
}


@pytest.fixture
def env(
    fresh_crm_https: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[RouterEnv]:
    e = RouterEnv(fresh_crm_https, dovecot, smtp_server, tmp_path)
    e.register_service()
    e.mailbox_for(SAM.email)
    e.set_filter(SAM.email, 2)  # from leads, contacts and accounts
    yield e


def test_the_server_side_column_of_the_seed_table_with_the_router(env: RouterEnv) -> None:
    scene = Scene(env)
    results = {name: play(scene) for name, (play, _) in SERVER_SIDE.items()}
    got = {name: scene.tracked(mid) for name, mid in results.items()}
    assert got == {name: expected for name, (_, expected) in SERVER_SIDE.items()}
