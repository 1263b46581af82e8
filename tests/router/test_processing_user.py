"""The router on a user's mailbox (incoming server-side): new mail is decided by the owner's
tracking option, promoted owned by the owner with the reason kept, and a pass repeated
after a crash between promotion and recording creates no duplicate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config.credentials import SecretKind, set_secret
from core.domain.model import TrackState
from core.mail import open_backend
from core.outbox.operations import CrmApplier
from core.store import Store
from crmserver import RunningServer
from crmserver.seed import user_id
from router.context import RouterConfigError, load_context
from router.processing import list_mailboxes, run_mailbox
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
