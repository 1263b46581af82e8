"""Options › Accounts: an IMAP profile's CalDAV/CardDAV collections (issue 20) — each bad URL
explained next to its field, and the save round trip with the DAV password in the keyring
only (emulator and Dovecot on loopback, as tests/desktop/test_accounts.py)."""

from __future__ import annotations

from pathlib import Path

from core.config.credentials import SecretKind, get_secret
from core.config.profiles import Profiles
from tests.desktop.test_accounts import (  # noqa: F401  (fixtures)
    NAME,
    field,
    home,
    label,
    mail_user,
    open_dialog,
    profile_ws,
)


def test_bad_dav_urls_are_explained_and_nothing_is_saved(qtbot, profile_ws, workers) -> None:  # noqa: F811
    before = Profiles().config_path(NAME).read_text()
    dialog = open_dialog(qtbot, profile_ws, workers)
    field(dialog, "accountCarddavUrl").setText("http://dav.example.com/alex/contacts/")
    field(dialog, "accountCaldavUrl").setText("https://alex:hunter2@dav.example.com/alex/cal/")
    field(dialog, "accountDavUser").setText("alex smith")
    with qtbot.waitSignal(dialog.save_failed, timeout=5_000):
        dialog.save_button.click()
    assert "must use https://" in label(dialog, "accountCarddavUrlError").text()
    assert "Leave the user name and password out" in label(dialog, "accountCaldavUrlError").text()
    assert "hunter2" not in label(dialog, "accountCaldavUrlError").text()
    assert label(dialog, "accountDavUserError").text() == "A user name cannot contain spaces."
    assert not label(dialog, "accountCaldavTasksUrlError").isVisible()
    assert Profiles().config_path(NAME).read_text() == before


def test_dav_collections_saved_and_the_password_kept_in_the_keyring(
    qtbot,
    home: Path,  # noqa: F811
    profile_ws,  # noqa: F811
    workers,
) -> None:
    secret = "Dav-Secret-41c2"
    dialog = open_dialog(qtbot, profile_ws, workers)
    field(dialog, "accountCarddavUrl").setText("https://dav.example.com/alex/contacts/")
    field(dialog, "accountCaldavUrl").setText("http://127.0.0.1:5232/alex/calendar/")
    field(dialog, "accountCaldavTasksUrl").setText("https://dav.example.com/alex/tasks/")
    field(dialog, "accountDavUser").setText("alex")
    field(dialog, "accountDavPassword").setText(secret)
    with qtbot.waitSignal(dialog.connection_saved, timeout=20_000):
        dialog.save_button.click()
    config = Profiles().load(NAME).config
    assert config.carddav_url == "https://dav.example.com/alex/contacts/"
    assert config.caldav_url == "http://127.0.0.1:5232/alex/calendar/"
    assert config.caldav_tasks_url == "https://dav.example.com/alex/tasks/"
    assert config.dav_user == "alex"
    assert get_secret(NAME, SecretKind.DAV, "alex") == secret
    for path in home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    again = open_dialog(qtbot, profile_ws, workers)
    assert field(again, "accountCaldavUrl").text() == "http://127.0.0.1:5232/alex/calendar/"
    assert field(again, "accountDavPassword").text() == ""
