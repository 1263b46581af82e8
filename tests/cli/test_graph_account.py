"""A Microsoft 365 (Graph) profile's rules, without servers: which profiles may read mail
through Graph (a Microsoft sign-in only), the ``graph:`` URLs a profile accepts, the scopes the
sign-in consents to, ``account add``'s refusals before any sign-in, and how the Graph token
source's failures reach the user (an expired sign-in is "sign in again", an unreachable
authority is offline). The end-to-end path: ``tests/e2e/test_graph_profile.py``."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import pytest

from core.cli import add_commands
from core.cli.context import OK, USAGE
from core.cli.sign_in import MailSignInRequired, MailTokenSource, mail_scopes
from core.config.profiles import (
    ProfileConfig,
    ProfileConfigError,
    Profiles,
    connection_problems,
    dumps,
    graph_options,
    graph_url,
    needs_mail_password,
    validate,
)
from core.crm.errors import AccountChoiceRequired, CrmUnavailable, SignInRequired
from core.crm.signin import GRAPH_MAIL_SCOPES, GRAPH_SHARED_MAIL_SCOPES
from core.domain.model import Folder
from core.domain.problems import SIGN_IN_PROBLEMS, Problem
from core.mail import MailAuthError, MailUnavailable
from core.store import Store
from core.sync.problems import problem_of
from core.workspace.signin import needs_sign_in_again

ORG = "https://contoso.crm.dynamics.com"
ME = "alex@contoso.com"


def profile(mail_url: str = "graph:", **more: object) -> dict[str, object]:
    return {"mail_url": mail_url, "crm_url": ORG, "crm_user": ME, "crm_auth": "microsoft", **more}


@pytest.mark.parametrize(
    "url",
    [
        "graph:",
        "graph:?mailbox=sales@contoso.com",
        "graph://127.0.0.1:8443/v1.0",
        "graph://graph.microsoft.us/v1.0?mailbox=sales@contoso.com",
    ],
)
def test_graph_urls_a_microsoft_profile_accepts(url: str) -> None:
    config = validate(profile(url), "p.toml")
    assert config.uses_graph_mail and not needs_mail_password(url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("graph:inbox", "expected graph: or graph:?mailbox="),
        ("graph:?mailbox=sales", "is not an e-mail address"),
        ("graph:?user=sales@contoso.com", "unknown option 'user'"),
        ("graph://alex@host/v1.0", "graph://host[:port]/v1.0"),
        ("graph://host:99999/v1.0", "graph://host[:port]/v1.0"),
    ],
)
def test_graph_urls_refused_with_what_is_wrong(url: str, words: str) -> None:
    with pytest.raises(ProfileConfigError) as refused:
        validate(profile(url), "p.toml")
    assert refused.value.key == "mail_url" and words in refused.value.expected


@pytest.mark.parametrize("kind", ["password", "windows", "adfs"])
def test_graph_mail_needs_the_microsoft_sign_in(kind: str) -> None:
    data = profile(crm_auth=kind)
    if kind == "adfs":
        data["crm_authority"] = "https://adfs.contoso.com/adfs"
    with pytest.raises(ProfileConfigError) as refused:
        validate(data, "p.toml")
    assert refused.value.key == "mail_url"
    assert 'crm_auth = "microsoft"' in refused.value.expected


def test_a_form_shows_the_sign_in_rule_next_to_the_mail_url() -> None:
    config = ProfileConfig(mail_url="imaps://mail.contoso.com", crm_url=ORG, crm_user=ME)
    problems = connection_problems(config, {"mail_url": "graph:"})
    assert list(problems) == ["mail_url"] and "Microsoft sign-in" in problems["mail_url"]


def test_the_sign_in_consents_to_the_mail_scopes_and_shared_ones_for_a_shared_mailbox() -> None:
    own = validate(profile(), "p.toml")
    shared = validate(profile("graph:?mailbox=sales@contoso.com"), "p.toml")
    imap = validate(profile("imaps://mail.contoso.com"), "p.toml")
    assert mail_scopes(own) == GRAPH_MAIL_SCOPES
    assert mail_scopes(shared) == GRAPH_MAIL_SCOPES + GRAPH_SHARED_MAIL_SCOPES
    assert mail_scopes(imap) == ()


def test_graph_url_and_graph_options_agree() -> None:
    assert graph_url() == "graph:"
    assert graph_url("https://graph.microsoft.com/v1.0/") == "graph:"
    url = graph_url("https://127.0.0.1:8443/v1.0", "sales@contoso.com")
    assert url == "graph://127.0.0.1:8443/v1.0?mailbox=sales@contoso.com"
    assert graph_options(url) == {
        "base_url": "https://127.0.0.1:8443/v1.0",
        "mailbox": "sales@contoso.com",
    }


# -- how the token source's failures reach the user --------------------------------------


def failing(error: Exception) -> MailTokenSource:
    def source() -> str:
        raise error

    return MailTokenSource(source)  # type: ignore[arg-type]


def test_an_expired_sign_in_is_a_mail_error_that_says_sign_in_again() -> None:
    expired = SignInRequired("AADSTS50173: the grant was revoked", reason="invalid_grant")
    with pytest.raises(MailSignInRequired) as raised:
        failing(expired)()
    error = raised.value
    assert isinstance(error, MailAuthError) and isinstance(error, SignInRequired)
    assert "sign in again" in str(error) and "AADSTS50173" in str(error)
    assert error.reason == "invalid_grant"
    problem = problem_of(error, "synchronising the mailbox")
    assert problem.problem is Problem.CRM_SIGN_IN_EXPIRED and problem.problem in SIGN_IN_PROBLEMS
    assert needs_sign_in_again([problem], uses_oauth=True)  # the window asks for a sign-in


def test_an_unreachable_authority_is_offline_and_other_refusals_are_mail_sign_in() -> None:
    with pytest.raises(MailUnavailable):
        failing(CrmUnavailable("connection refused"))()
    with pytest.raises(MailAuthError) as refused:
        failing(AccountChoiceRequired(("a@x.com", "b@x.com")))()
    assert not isinstance(refused.value, SignInRequired)
    assert problem_of(refused.value).problem is Problem.MAIL_SIGN_IN


# -- account add's refusals, before any sign-in -------------------------------------------


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="trackbox")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    capsys.readouterr()
    code = int(args.func(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--microsoft365", "--email", ME, "--sign-in", "adfs"], "leave out --sign-in"),
        (["--microsoft365", "--email", ME, "--mail-url", "imaps://h"], "not 'imaps://h'"),
        (["--mail-url", "imaps://h", "--shared-mailbox", "s@contoso.com"], "--shared-mailbox"),
        (["--microsoft365", "--email", ME, "--shared-mailbox", ME], "the profile's own mailbox"),
        (
            ["--microsoft365", "--email", ME]
            + ["--shared-mailbox", "s@contoso.com", "--shared-mailbox", "S@contoso.com"],
            "Listed twice",
        ),
        (["--crm-url", ORG, "--crm-user", ME], "--mail-url, or use --microsoft365"),
        (
            ["--mail-url", "graph:", "--sign-in", "password", "--crm-url", ORG]
            + ["--crm-user", ME],
            "signs in with the CRM's Microsoft sign-in",
        ),
        (["--microsoft365"], "your e-mail address with --email"),
        (["--microsoft365", "--email", ME, "--shared-mailbox", "sales"], "Not an e-mail"),
    ],
)
def test_account_add_refuses_before_signing_in(
    argv: list[str],
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path))
    code, err = run(["account", "add", *argv], capsys)
    assert code == USAGE and words in err, err
    assert "Traceback" not in err and Profiles().names() == []


# -- extra mailboxes: the profile's own mailbox with shared ones beside it ----------------


def test_extra_mailboxes_need_a_graph_mailbox_and_other_addresses() -> None:
    config = validate(profile(extra_mailboxes=["sales@contoso.com"]), "p.toml")
    assert config.extra_mailboxes == ("sales@contoso.com",)
    only_shared = validate(
        profile("graph:?mailbox=a@contoso.com", extra_mailboxes=[ME]), "p.toml"
    )  # the own mailbox beside a profile that reads only a shared one
    assert only_shared.extra_mailboxes == (ME,)
    for bad, words in (
        (profile("ews://h/EWS/Exchange.asmx?auth=oauth", extra_mailboxes=["s@c.com"]), "graph:"),
        (profile(extra_mailboxes=["sales"]), "Not an e-mail address"),
        (profile(extra_mailboxes="sales@contoso.com"), "list of non-empty strings"),
        (profile(extra_mailboxes=["s@c.com", "S@C.com"]), "Listed twice"),
        (profile(extra_mailboxes=[ME.upper()]), "own mailbox"),
        (profile("graph:?mailbox=a@c.com", extra_mailboxes=["a@c.com"]), "own mailbox"),
    ):
        with pytest.raises(ProfileConfigError, match=words):
            validate(bad, "p.toml")


def test_extra_mailboxes_consent_to_the_shared_scopes_and_stay_out_of_other_files() -> None:
    own = validate(profile(), "p.toml")
    extra = validate(profile(extra_mailboxes=["sales@contoso.com"]), "p.toml")
    assert mail_scopes(own) == GRAPH_MAIL_SCOPES
    assert mail_scopes(extra) == GRAPH_MAIL_SCOPES + GRAPH_SHARED_MAIL_SCOPES
    assert "extra_mailboxes" not in dumps(own)
    assert 'extra_mailboxes = ["sales@contoso.com"]' in dumps(extra)
    assert validate(tomllib.loads(dumps(extra)), "p.toml") == extra


def test_account_mailboxes_adds_and_removes_and_forgets_the_removed_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a profile that reads a shared mailbox already (its sign-in has the shared scopes:
    no new consent to check, no server needed)."""
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path))
    saved = Profiles().save("default", profile("graph:?mailbox=a@contoso.com"))
    with Store.open(saved.store_path) as store:
        store.upsert_folders(
            [Folder("Inbox", "Inbox"), Folder("s@contoso.com", "s@contoso.com")]
            + [Folder("s@contoso.com/Inbox", "Inbox", None, "s@contoso.com")]
        )
    code, err = run(["account", "mailboxes", "--add", "s@contoso.com", "--add", "t@c.com"], capsys)
    assert code == OK, err
    assert Profiles().load().config.extra_mailboxes == ("s@contoso.com", "t@c.com")
    code, err = run(["account", "mailboxes", "--remove", "S@contoso.com"], capsys)
    assert code == OK, err
    assert Profiles().load().config.extra_mailboxes == ("t@c.com",)
    with Store.open(saved.store_path) as store:
        assert [f.path for f in store.folders()] == ["Inbox"]
    code, err = run(["account", "mailboxes", "--remove", "nobody@c.com"], capsys)
    assert code == USAGE and "not a shared mailbox" in err
    code, err = run(["account", "mailboxes", "--add", "x@c.com", "--profile", "default"], capsys)
    assert code == OK
    Profiles().save("default", profile("imaps://mail.contoso.com", mail_user=ME))
    code, err = run(["account", "mailboxes", "--add", "s@contoso.com"], capsys)
    assert code == USAGE and "graph:" in err
