"""Profile files: layout under TRACKBOX_HOME, validation with file/key/value, no secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config.profiles import (
    ProfileConfig,
    ProfileConfigError,
    ProfileExists,
    ProfileNotFound,
    Profiles,
)

GOOD = {
    "mail_url": "imaps://mail.contoso.example:993",
    "smtp_url": "smtps://mail.contoso.example:465",
    "mail_user": "alex",
    "crm_url": "https://contoso.crm.dynamics.com",
    "crm_user": "alex.morgan@contoso.example",
}


def test_create_load_roundtrip(tmp_path: Path) -> None:
    profiles = Profiles(tmp_path)
    created = profiles.create(
        "work",
        {
            **GOOD,
            "folders": ["Inbox", "Sent Items"],
            "contacts_scope": "all",
            "options": {"dark": True},
        },
    )
    assert created.config_path == tmp_path / "profiles/work/profile.toml"
    assert created.store_path == tmp_path / "profiles/work/data/store.sqlite"
    assert created.log_dir.is_dir()
    loaded = profiles.load("work")
    assert loaded == created
    assert loaded.config.folders == ("Inbox", "Sent Items")
    assert loaded.config.sync_interval_minutes == 15
    assert profiles.names() == ["work"]
    assert profiles.load().name == "work"  # the only profile is the default
    with pytest.raises(ProfileExists):
        profiles.create("work", GOOD)


def test_trackbox_home_env_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKBOX_HOME", str(tmp_path))
    assert Profiles().config_path("x") == tmp_path / "profiles/x/profile.toml"


def test_platformdirs_layout_without_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRACKBOX_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    profiles = Profiles()
    p = profiles.create("default", GOOD)
    assert p.config_path == tmp_path / "cfg/trackbox/profiles/default.toml"
    assert p.data_dir == tmp_path / "data/trackbox/profiles/default"
    assert profiles.load().name == "default"


def test_default_profile_choice(tmp_path: Path) -> None:
    profiles = Profiles(tmp_path)
    profiles.create("a", GOOD)
    profiles.create("b", GOOD)
    with pytest.raises(ProfileNotFound, match="known profiles: a, b"):
        profiles.load()
    profiles.set_default("b")
    assert profiles.load().name == "b"
    profiles.delete("b")
    assert profiles.names() == ["a"] and profiles.load().name == "a"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('mail_url = "imaps://h"\ncrm_url = "https://c"\n', "crm_user", "required"),
        ('mail_url = "pop3://h"\ncrm_url = "https://c"\ncrm_user = "u"\n', "mail_url", "schemes"),
        (
            'mail_url = "imaps://h:99999"\ncrm_url = "https://c"\ncrm_user = "u"\n',
            "mail_url",
            "valid URL",
        ),
        (
            'mail_url = "maildir:/m"\ncrm_url = "https://c"\ncrm_user = "u"\n'
            'sync_interval_minutes = "often"\n',
            "sync_interval_minutes",
            "whole number",
        ),
        (
            'mail_url = "maildir:/m"\ncrm_url = "https://c"\ncrm_user = "u"\n'
            'include_subfolders = "yes"\n',
            "include_subfolders",
            "bool",
        ),
        (
            'mail_url = "maildir:/m"\ncrm_url = "https://c"\ncrm_user = "u"\n'
            'contacts_scope = "mine"\n',
            "contacts_scope",
            "'owned' or 'all'",
        ),
        (
            'mail_url = "maildir:/m"\ncrm_url = "https://c"\ncrm_user = "u"\ncrm_ulr = "x"\n',
            "crm_ulr",
            "Unknown key",
        ),
        (
            'mail_url = "maildir:/m"\ncrm_url = "https://c"\ncrm_user = "u"\n'
            'crm_password = "hunter2"\n',
            "crm_password",
            "keyring",
        ),
        (
            'mail_url = "maildir:/m"\ncrm_url = "https://c"\ncrm_user = "u"\n'
            'folders = ["Inbox", 3]\n',
            "folders",
            "list of non-empty strings",
        ),
    ],
)
def test_malformed_files_name_file_key_and_value(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    profiles = Profiles(tmp_path)
    path = profiles.config_path("bad")
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ProfileConfigError) as info:
        profiles.load("bad")
    message = str(info.value)
    assert str(path) in message and repr(key) in message and fragment in message
    assert info.value.key == key
    assert "hunter2" not in message


def test_not_toml_at_all(tmp_path: Path) -> None:
    profiles = Profiles(tmp_path)
    path = profiles.config_path("bad")
    path.parent.mkdir(parents=True)
    path.write_text("mail_url = [unclosed\n")
    with pytest.raises(ProfileConfigError, match="Not valid TOML") as info:
        profiles.load("bad")
    assert str(path) in str(info.value)


def test_bad_profile_name(tmp_path: Path) -> None:
    with pytest.raises(ProfileConfigError, match="Profile names"):
        Profiles(tmp_path).create("../escape", GOOD)


def test_saved_file_has_no_secret_and_reads_back(tmp_path: Path) -> None:
    config = ProfileConfig(
        mail_url='maildir:/tmp/m "quoted"',
        crm_url="http://127.0.0.1:8080",
        crm_user="alex",
        folders=("Inbox/Ü",),
    )
    p = Profiles(tmp_path).save("x", config)
    assert Profiles(tmp_path).load("x").config == config
    assert "password" not in p.config_path.read_text().lower().replace(
        "passwords are kept in the system keyring", ""
    )


# --- the connection, as Options › Accounts edits it ------------------------------------------


def test_connection_problems_name_every_bad_field() -> None:
    from core.config.profiles import connection_problems, validate

    config = validate(GOOD, "<test>")
    assert connection_problems(config, {}) == {}
    problems = connection_problems(
        config,
        {
            "mail_url": "ews+autodiscover:alex",
            "smtp_url": "smtps://mail.contoso.example:465",
            "mail_user": "alex morgan",
            "crm_url": "ftp://crm",
            "crm_user": " ",
        },
    )
    assert set(problems) == {"mail_url", "smtp_url", "mail_user", "crm_url", "crm_user"}
    assert "user@domain" in problems["mail_url"]
    assert "only with an IMAP mailbox" in problems["smtp_url"]
    assert "spaces" in problems["mail_user"]
    assert "https, http" in problems["crm_url"]
    assert problems["crm_user"] == "Expected a user name."
    for good in (
        "imap://mail.contoso.example",
        "ews://mail.contoso.example/EWS/Exchange.asmx",
        "ews+autodiscover:alex@contoso.example",
        "maildir:/home/alex/Maildir",
    ):
        smtp = "" if not good.startswith("imap") else GOOD["smtp_url"]
        user = "" if good.startswith("ews:") else GOOD["mail_user"]  # signs in as crm_user
        assert (
            connection_problems(config, {"mail_url": good, "smtp_url": smtp, "mail_user": user})
            == {}
        ), good


def test_exchange_url_options_are_checked() -> None:
    """``?auth=`` and ``?mailbox=`` on an EWS URL: what a person types is checked before it is
    saved, and a Windows sign-in name needs the mailbox's address."""
    from core.config.profiles import connection_problems, validate

    config = validate(GOOD, "<test>")
    server = "ews://mail.contoso.example/EWS/Exchange.asmx"
    for good, user in (
        (f"{server}?auth=basic", "alex@contoso.example"),
        (f"{server}?auth=ntlm&mailbox=alex@contoso.example", "CORP\\alex"),
        ("ews+autodiscover:alex@contoso.example?auth=basic", "CORP\\alex"),
    ):
        assert (
            connection_problems(config, {"mail_url": good, "smtp_url": "", "mail_user": user}) == {}
        ), good
    for bad, user, words in (
        (f"{server}?auth=kerberos", "alex@contoso.example", "expected one of ntlm, basic"),
        (f"{server}?mailbox=alex", "CORP\\alex", "is not an e-mail address"),
        (f"{server}?port=1", "alex@contoso.example", "unknown option 'port'"),
        (server, "CORP\\alex", "add ?mailbox=you@example.com"),
        (
            "ews+autodiscover:alex@contoso.example?mailbox=b@contoso.example",
            "alex",
            "autodiscover uses the address",
        ),
    ):
        problems = connection_problems(config, {"mail_url": bad, "smtp_url": "", "mail_user": user})
        assert words in problems.get("mail_url", ""), (bad, problems)


def test_insecure_schemes_are_recognised() -> None:
    from core.config.profiles import insecure_urls

    assert insecure_urls(
        "imap+insecure://127.0.0.1:1143",
        "imaps://h",
        "",
        "http://127.0.0.1:8080",
        "ews+http://h/EWS/Exchange.asmx",
    ) == [
        "imap+insecure://127.0.0.1:1143",
        "http://127.0.0.1:8080",
        "ews+http://h/EWS/Exchange.asmx",
    ]


def test_save_connection_keeps_or_moves_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.config.credentials import SecretKind, get_secret, set_secret
    from core.config.profiles import save_connection

    for var in ("TRACKBOX_CRM_PASSWORD", "TRACKBOX_MAIL_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    profiles = Profiles(tmp_path)
    profiles.create("conn", {**GOOD, "sync_interval_minutes": 20})
    set_secret("conn", SecretKind.CRM, GOOD["crm_user"], "crm-old")
    set_secret("conn", SecretKind.MAIL, "alex", "mail-old")
    # New mail user, empty passwords: the stored mail secret follows the user name.
    saved = save_connection(
        profiles, "conn", {"mail_user": "alex2", "crm_url": "https://fabrikam.example"}
    )
    assert saved.config.mail_user == "alex2" and saved.config.sync_interval_minutes == 20
    assert get_secret("conn", SecretKind.MAIL, "alex2") == "mail-old"
    assert get_secret("conn", SecretKind.MAIL, "alex") is None
    assert get_secret("conn", SecretKind.CRM, GOOD["crm_user"]) == "crm-old"
    # A typed password replaces the stored one and never reaches the file.
    save_connection(profiles, "conn", {}, crm_password="crm-new-Zq9")
    assert get_secret("conn", SecretKind.CRM, GOOD["crm_user"]) == "crm-new-Zq9"
    assert "crm-new-Zq9" not in profiles.config_path("conn").read_text()
    assert profiles.load("conn").config.crm_url == "https://fabrikam.example"
    # A bad value changes nothing, not even the keyring.
    with pytest.raises(ProfileConfigError) as bad:
        save_connection(profiles, "conn", {"crm_url": "crm"}, crm_password="never")
    assert bad.value.key == "crm_url"
    assert get_secret("conn", SecretKind.CRM, GOOD["crm_user"]) == "crm-new-Zq9"


def test_stricter_form_checks_do_not_break_files_that_loaded_before(tmp_path: Path) -> None:
    from core.config.profiles import with_connection

    profiles = Profiles(tmp_path)
    old = {
        **GOOD,
        "mail_url": "ews://mail.contoso.example/EWS/Exchange.asmx",
        "smtp_url": "smtps://mail.contoso.example:465",
        "mail_user": "Alex Morgan",
    }
    created = profiles.create("older", old)  # written by an earlier version: still loads
    assert profiles.load("older").config == created.config
    with pytest.raises(ProfileConfigError) as edited:  # but the form does not accept it
        with_connection(created.config, {"crm_url": "https://fabrikam.example"})
    assert edited.value.key == "mail_url"  # the first field in the form's order: no mailbox=
    assert "?mailbox=" in str(edited.value)
