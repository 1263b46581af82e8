"""The router on a user's mailbox (incoming server-side): new mail is decided by the owner's
tracking option, promoted owned by the owner with the reason kept, and a pass repeated
after a crash between promotion and recording creates no duplicate."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config.credentials import SecretKind, set_secret
from core.domain.model import TrackState
from core.mail import open_backend
from core.outbox.operations import CrmApplier
from core.store import Store
from crmserver import RunningServer
from crmserver.seed import user_id
from router.cli import STATE_FILE, main
from router.context import RouterConfigError, RouterContext, load_context
from router.processing import list_mailboxes, run_mailbox
from router.state import SqliteState
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer

from .processing_env import PROFILE, SAM, RouterEnv, mime


@pytest.fixture
def env(
    fresh_crm_https: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[RouterEnv]:
    e = RouterEnv(fresh_crm_https, dovecot, smtp_server, tmp_path)
    e.register_service()
    e.mailbox_for(SAM.email)
    yield e


def test_the_router_lists_server_side_mailboxes(env: RouterEnv) -> None:
    ctx = env.context()
    boxes = {b.address: b for b in list_mailboxes(ctx)}
    assert SAM.email in boxes and boxes[SAM.email].incoming_by_server
    assert "support@contoso.example" in boxes and boxes["support@contoso.example"].is_queue
    assert "alex.morgan@contoso.example" not in boxes  # routed through the desktop client


def test_new_mail_is_tracked_by_the_owners_option_owned_by_the_owner(env: RouterEnv) -> None:
    ctx = env.context()
    box = env.mailbox_id(SAM.email)
    env.deliver(SAM.email, mime("old@fabrikam.example", SAM.email, "Before the router")[1])
    first = run_mailbox(ctx, box)  # the baseline: mail already there is not tracked
    assert first.errors == () and first.promoted == 0
    env.set_filter(SAM.email, 0)  # all incoming e-mail
    mid, raw = mime("stranger@nowhere.example", SAM.email, "A new question")
    env.deliver(SAM.email, raw)
    run = run_mailbox(ctx, box)
    assert run.errors == () and run.promoted == 1
    [email] = env.emails(mid)
    assert email["_ownerid_value"] == user_id(SAM.email)
    assert email["statuscode"] == 4  # received
    with Store.open(ctx.state_path(box)) as store:
        assert store.tracking.state_of(mid) is TrackState.TRACKED
        [audit] = store.tracking.audit_log(mid)
        assert audit.reason.code == "all_email"


def test_the_owners_option_none_tracks_nothing_and_says_why(env: RouterEnv) -> None:
    ctx = env.context()
    box = env.mailbox_id(SAM.email)
    run_mailbox(ctx, box)
    env.set_filter(SAM.email, 4)  # no e-mail messages
    mid, raw = mime("customer@fabrikam.example", SAM.email, "Not for the CRM")
    env.deliver(SAM.email, raw)
    run = run_mailbox(ctx, box)
    assert run.errors == () and run.promoted == 0
    assert env.emails(mid) == []
    with Store.open(ctx.state_path(box)) as store:
        assert store.tracking.state_of(mid) is TrackState.NOT_TRACKED
        [audit] = store.tracking.audit_log(mid)
        assert audit.reason.code == "filter_none"


def test_a_pass_repeated_after_a_crash_creates_no_duplicate(
    env: RouterEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = env.context()
    box = env.mailbox_id(SAM.email)
    run_mailbox(ctx, box)
    env.set_filter(SAM.email, 0)
    mid, raw = mime("crash@fabrikam.example", SAM.email, "Promoted, then the worker died")
    env.deliver(SAM.email, raw)
    promote = CrmApplier._promote

    def promote_then_die(self: CrmApplier, *args: object, **kwargs: object) -> object:
        promote(self, *args, **kwargs)  # type: ignore[arg-type]
        raise SystemExit("killed between promotion and recording it")

    monkeypatch.setattr(CrmApplier, "_promote", promote_then_die)
    with pytest.raises(SystemExit):
        run_mailbox(ctx, box)
    assert len(env.emails(mid)) == 1  # the CRM has it; the router did not record it
    monkeypatch.setattr(CrmApplier, "_promote", promote)
    again = run_mailbox(ctx, box)
    assert again.errors == ()
    [email] = env.emails(mid)
    assert email["_ownerid_value"] == user_id(SAM.email)
    with Store.open(ctx.state_path(box)) as store:
        assert store.tracking.state_of(mid) is TrackState.TRACKED


def test_a_wrong_mailbox_password_is_an_alert_on_that_mailbox(env: RouterEnv) -> None:
    set_secret(PROFILE, SecretKind.MAIL, env.users[SAM.email], "not-the-password")
    ctx = env.context()
    box = env.mailbox_id(SAM.email)
    run = run_mailbox(ctx, box)
    assert run.errors and run.promoted == 0
    alerts = list(ctx.crm.query("tracelogs", filter=f"_regardingobjectid_value eq {box}"))
    assert any("incoming mail" in a["text"] for a in alerts)
    assert "not-the-password" not in " ".join(a["text"] for a in alerts)


def test_the_config_needs_the_service_secret_in_the_keyring(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text(
        '[crm]\nurl = "https://crm.example"\nclient_id = "nobody-registered-this"\n'
        f'[router]\nstate_dir = "{tmp_path}"\nkeyring_profile = "{PROFILE}"\n',
        encoding="utf-8",
    )
    with pytest.raises(RouterConfigError, match="no client secret"):
        load_context(config)
    config.write_text("[crm]\n", encoding="utf-8")
    with pytest.raises(RouterConfigError, match="state_dir"):
        load_context(config)


def test_mail_the_user_sends_from_a_mail_client_is_decided_as_outgoing(env: RouterEnv) -> None:
    ctx = env.context()
    box = env.mailbox_id(SAM.email)
    run_mailbox(ctx, box)  # the baseline of the Inbox and of Sent Items
    env.set_filter(SAM.email, 0)
    mid, raw = mime(SAM.email, "jane.doe@fabrikam.example", "Sent from my phone")
    backend = open_backend(env.dovecot.url(), user=env.users[SAM.email], password=PASSWORD)
    with backend:
        backend.append(backend.folder("sent").path, raw)
    run = run_mailbox(ctx, box)
    assert run.errors == () and run.promoted == 0
    with Store.open(ctx.state_path(box)) as store:
        [audit] = store.tracking.audit_log(mid)
        assert audit.reason.code == "outgoing_not_marked"


def _alerts(ctx: RouterContext, box: str) -> list[dict[str, Any]]:
    return list(
        ctx.crm.query(
            "tracelogs", select=["text", "tracecode"], filter=f"_regardingobjectid_value eq {box}"
        )
    )


def test_a_mailbox_that_keeps_failing_gets_one_alert_per_error_and_its_status_in_the_crm(
    env: RouterEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = env.context()
    box = env.mailbox_id(SAM.email)
    ok = run_mailbox(ctx, box)
    assert ok.errors == ()
    row = ctx.crm.get("mailboxes", box)
    assert row["processingstatecode"] == 0 and row["tbx_lastrunresult"].startswith("OK: ")
    first_success = row["lastsuccessfulsynccompletedon"]
    assert first_success

    set_secret(PROFILE, SecretKind.MAIL, env.users[SAM.email], "not-the-password")
    failing = [run_mailbox(ctx, box) for _ in range(3)]
    assert all(run.errors for run in failing)
    [alert] = [a for a in _alerts(ctx, box) if "incoming mail" in a["text"]]
    row = ctx.crm.get("mailboxes", box)
    assert row["tbx_lastrunresult"].startswith("1 error(s): incoming mail")
    assert row["lastsuccessfulsynccompletedon"] == first_success  # not a success

    state = SqliteState(env.tmp / "router-state" / STATE_FILE)
    state.record_run(failing[-1])
    capsys.readouterr()
    args = ["status", "--config", str(env.tmp / "router.toml")]
    assert main([*args, "--state-dir", str(env.tmp / "router-state")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(box))
    assert re.search(r"idle +1 +1 in last run: incoming mail", line)  # ALERTS 1, then ERRORS

    set_secret(PROFILE, SecretKind.MAIL, env.users[SAM.email], PASSWORD)
    time.sleep(1.1)  # the CRM's times are to the second: the success is after the alert
    assert run_mailbox(ctx, box).errors == ()
    set_secret(PROFILE, SecretKind.MAIL, env.users[SAM.email], "not-the-password")
    time.sleep(1.1)
    run_mailbox(ctx, box)
    again = [a for a in _alerts(ctx, box) if "incoming mail" in a["text"]]
    assert len(again) == 2  # the same error after a success is a new alert
    assert again[0]["tracecode"] == again[1]["tracecode"] == alert["tracecode"]
