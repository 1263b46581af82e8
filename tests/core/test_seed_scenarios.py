"""The seed scenarios of issue 4, played through ``decide``.

User X has a mailbox; C (Jane Doe) is a CRM contact. Server-side mode = mail processed
centrally with X's option "from leads, contacts and accounts"; client mode = X's option "none"
(manual tracking only). "– until X tracks it" means: not tracked automatically, tracked once X
presses Track.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.domain.crm_settings import IncomingFilter, UserOptions
from core.domain.model import MessageHeader
from tests.core import JANE, OPPORTUNITY, World, X, message, reply

C = JANE
MODES = {
    "server-side": IncomingFilter.FROM_LEADS_CONTACTS_ACCOUNTS,
    "client": IncomingFilter.NONE,
}
Play = Callable[[World], tuple[MessageHeader, dict[str, bool]]]


def _c_writes(world: World) -> MessageHeader:
    """C's new mail, tracked if the rules say so (as the sync engine would)."""
    mail = message("Question about your offer", sender=C)
    decision = world.decide(mail)
    if decision.track:
        world.track(mail, decision.regarding)
    return mail


def _x_writes(world: World) -> MessageHeader:
    return message("Catching up", sender=X, to=(C,))


# Each scenario sets the scene in ``world`` and returns the mail to decide on, with its context.
SCENARIOS: dict[str, tuple[Play, bool, bool]] = {
    # id: (scene, tracked in server-side mode, tracked in client mode)
    "1 X sends from the CRM to C": (
        lambda w: (w.send_from_crm("Quote for 200 licences", to=C), {"created_in_crm": True}),
        True,
        True,
    ),
    "2 C replies to that mail": (
        lambda w: (reply(w.send_from_crm("Quote for 200 licences", to=C), C), {}),
        True,
        False,
    ),
    "3 C writes to X (new thread)": (
        lambda w: (message("Question about your offer", sender=C), {}),
        True,
        False,
    ),
    "4a X replies from the CRM to C's mail": (
        lambda w: (reply(_c_writes(w), X, recipients=(C,)), {"created_in_crm": True}),
        True,
        True,
    ),
    "4b X replies from the mail client to C's mail": (
        lambda w: (reply(_c_writes(w), X, recipients=(C,)), {}),
        False,
        False,
    ),
    "5 X writes to C from the mail client": (lambda w: (_x_writes(w), {}), False, False),
    "6 C replies to that mail": (lambda w: (reply(_x_writes(w), C), {}), True, False),
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_seed_scenario(scenario: str, mode: str) -> None:
    scene, server_side, client = SCENARIOS[scenario]
    world = World(options=UserOptions(incoming_filter=MODES[mode]))
    mail, context = scene(world)
    decision = world.decide(mail, **context)
    expected = server_side if mode == "server-side" else client
    assert decision.track is expected, decision.reason
    assert decision.reason.text
    if not decision.track:
        # "– until X tracks it": pressing Track (or marking it when sending) tracks it.
        manual = world.decide(mail, manual=True, **context)
        assert manual.track and manual.reason.code == "manual"


def test_scenario_2_reason_names_sender_and_token() -> None:
    world = World(options=UserOptions(incoming_filter=IncomingFilter.FROM_LEADS_CONTACTS_ACCOUNTS))
    sent = world.send_from_crm("Quote for 200 licences", to=C)
    decision = world.decide(reply(sent, C, threaded=False))
    assert decision.track and decision.regarding == OPPORTUNITY
    assert decision.reason.text == (
        "Sender Jane Doe is a CRM contact; reply to tracked e-mail CRM:0001023 (tracking token)"
    )
    assert decision.crm_reason_code == 5


def test_scenario_2_client_mode_reply_is_correlated_but_not_tracked() -> None:
    world = World(options=UserOptions(incoming_filter=IncomingFilter.NONE))
    sent = world.send_from_crm("Quote for 200 licences", to=C)
    decision = world.decide(reply(sent, C))
    assert not decision.track and decision.reason.code == "filter_none"
    assert decision.correlation_method == "in_reply_to"  # shown as "would go with …" in GUI
    manual = world.decide(reply(sent, C), manual=True)
    assert manual.regarding == OPPORTUNITY  # tracking it by hand keeps the thread's regarding
