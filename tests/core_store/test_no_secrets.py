"""No secret reaches the profile's files or the logs: a full round (profile, keyring,
CRM calls with a bearer token and with a rejected password, address-book sync into the store)
with every logger at DEBUG writing into the profile's log file, then a byte scan."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import httpx
import keyring
import pytest

from core.config import credentials
from core.config.profiles import Profiles
from core.crm import BasicAuth, BearerAuth, CrmAuthError, CrmClient
from core.domain import demo_data
from core.store import Store
from core.sync.address_books import AddressBook
from crmserver import RunningServer
from tests.memory_keyring import MemoryKeyring


def test_no_secret_in_data_dir_or_logs(
    tmp_path: Path, crm_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in credentials.ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    profile = Profiles(tmp_path).create(
        "work",
        {
            "mail_url": f"maildir:{tmp_path / 'Maildir'}",
            "crm_url": crm_server.url,
            "crm_user": demo_data.ME.email,
        },
    )
    handler = logging.FileHandler(profile.log_path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    rejected = "wrong-" + secrets.token_hex(8)
    try:
        response = httpx.post(
            crm_server.url + "/oauth2/v2.0/token",
            data={
                "grant_type": "password",
                "username": demo_data.ME.email,
                "password": demo_data.DEMO_PASSWORD,
                "client_id": "trackbox",
            },
        )
        token = str(response.json()["access_token"])
        credentials.set_secret(profile.name, "crm", demo_data.ME.email, token)
        stored = credentials.get_secret(profile.name, "crm", demo_data.ME.email)
        assert stored == token

        with (
            Store.open(profile.store_path) as store,
            CrmClient(profile.config.crm_url, BearerAuth(lambda: token)) as crm,
        ):
            AddressBook(store, contacts_scope="all", entities=["account"]).sync(crm)
            crm.find_emails_by_message_id(["<nothing@x>"])
            store.snapshots.save("organization", {"name": "Contoso"})
        with CrmClient(profile.config.crm_url, BasicAuth(demo_data.ME.email, rejected)) as crm:
            with pytest.raises(CrmAuthError) as info:
                crm.who_am_i()
            logging.getLogger("trackbox.test").error("sync failed: %s (%r)", info.value, crm)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
        keyring.set_keyring(previous)

    assert profile.log_path.stat().st_size > 0  # the logs did get written
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert profile.store_path in files
    for path in files:
        data = path.read_bytes()
        for secret in (token, rejected):
            assert secret.encode() not in data, f"secret found in {path}"
