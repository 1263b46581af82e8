"""Every incoming option × sender kind × kind of mail, checked against the table a user reads
in docs/tracking-rules.md (so the page and the code cannot drift apart)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from core.domain.crm_settings import IncomingFilter, OrgSettings, UserOptions
from core.domain.model import Address, MessageHeader
from tests.core import INTERN, JANE, KENJI, PRIYA, STRANGER, World, message, reply

DOC = Path(__file__).resolve().parents[2] / "docs" / "tracking-rules.md"

SENDERS: dict[str, Address] = {
    "internal sender": INTERN,
    "CRM contact": JANE,
    "CRM lead": KENJI,
    "CRM user": PRIYA,
    "unknown sender": STRANGER,
}
MAILS = ("new thread", "token reply", "thread reply", "smart-match reply")
EXPECTED_METHOD = {
    "token reply": "token",
    "thread reply": "in_reply_to",
    "smart-match reply": "smart_match",
    "new thread": None,
}


def read_matrix(marker: str) -> dict[tuple[str, str], list[bool]]:
    """The table after ``<!-- matrix:marker -->``: (sender, mail) → tracked per option 0–4."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- matrix:{marker} -->")
    table: dict[tuple[str, str], list[bool]] = {}
    for line in lines[start + 3 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert all(c in ("T", "–") for c in cells[2:]), line
        table[(cells[0], cells[1])] = [c == "T" for c in cells[2:]]
    return table


DEFAULT_TABLE = read_matrix("default")
IGNORE_TABLE = {**DEFAULT_TABLE, **read_matrix("ignore-internal")}


def test_tables_cover_every_case() -> None:
    assert set(DEFAULT_TABLE) == set(itertools.product(SENDERS, MAILS))
    assert all(len(row) == 5 for row in DEFAULT_TABLE.values())


def build_mail(world: World, sender: Address, kind: str) -> MessageHeader:
    original = world.send_from_crm("Quote for 200 licences", to=sender)
    if kind == "new thread":
        return message("Lunch on Friday?", sender=sender)
    if kind == "token reply":
        return reply(original, sender, threaded=False)
    if kind == "thread reply":
        return reply(original, sender, keep_token=False)
    return reply(original, sender, keep_token=False, threaded=False)


@pytest.mark.parametrize("ignore_internal", [False, True], ids=["internal-on", "ignore-internal"])
@pytest.mark.parametrize("option", list(IncomingFilter), ids=lambda o: o.name)
@pytest.mark.parametrize("kind", MAILS)
@pytest.mark.parametrize("sender_kind", list(SENDERS))
def test_matrix(sender_kind: str, kind: str, option: IncomingFilter, ignore_internal: bool) -> None:
    world = World(
        org=OrgSettings(smart_matching=True, ignore_internal_email=ignore_internal),
        options=UserOptions(incoming_filter=option),
    )
    mail = build_mail(world, SENDERS[sender_kind], kind)
    decision = world.decide(mail)
    table = IGNORE_TABLE if ignore_internal else DEFAULT_TABLE
    expected = table[(sender_kind, kind)][option.value]
    assert decision.track is expected, decision.reason
    assert decision.reason.text  # always a sentence for the banner
    assert decision.correlation_method == EXPECTED_METHOD[kind]
    if decision.track and kind != "new thread":
        assert decision.regarding is not None and decision.regarding.name == "200 licences"
    # Whatever the option, the user can still track it by hand.
    assert world.decide(mail, manual=True).track


def test_token_only_table() -> None:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index("<!-- matrix:token-only -->")
    rows = {}
    for line in lines[start + 3 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = (cells[1] == "T", cells[2] == "T")
    assert len(rows) == 4
    for token_only in (False, True):
        world = World(org=OrgSettings(token_only=token_only))
        sent = world.send_from_crm("Quote for 200 licences", to=JANE)
        token = sent.subject.split()[-1]
        mails = {
            "reply with the token": reply(sent, JANE),
            "reply without token, same thread": reply(sent, JANE, keep_token=False),
            "new mail with a pasted token": message(f"Invoice {token}", sender=JANE),
            "new mail, no token": message("Invoice", sender=JANE),
        }
        for name, mail in mails.items():
            assert world.decide(mail).track is rows[name][token_only], (name, token_only)
