"""The sign-in keys of a profile: defaults, validation with file/key/value, TOML round trip, and
old profiles that do not have them."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config.profiles import (
    DEFAULT_AUTHORITY,
    DEFAULT_CLIENT_ID,
    DEFAULT_DISCOVERY_URL,
    ProfileConfigError,
    Profiles,
    validate,
    with_sign_in,
)
from core.crm import discovery, signin

BASE = {
    "mail_url": "imaps://mail.contoso.example:993",
    "crm_url": "https://contoso.crm.dynamics.com",
    "crm_user": "alex.morgan@contoso.example",
}
OLD_FILE = """# Trackbox profile. Passwords are kept in the system keyring, never here.
mail_url = "imaps://mail.contoso.example:993"
crm_url = "https://contoso.crm.dynamics.com"
crm_user = "alex.morgan@contoso.example"
folders = ["Inbox"]
"""


def test_defaults_match_the_sign_in_code() -> None:
    assert DEFAULT_CLIENT_ID == signin.DEFAULT_CLIENT_ID == "51f81489-12ee-4a9e-aaae-a2591f45987d"
    assert DEFAULT_AUTHORITY == signin.DEFAULT_AUTHORITY == discovery.DEFAULT_AUTHORITY
    assert DEFAULT_DISCOVERY_URL == discovery.DEFAULT_DISCOVERY_URL


def test_an_old_profile_loads_and_saves_unchanged(tmp_path: Path) -> None:
    profiles = Profiles(tmp_path)
    path = profiles.config_path("old")
    path.parent.mkdir(parents=True)
    path.write_text(OLD_FILE, encoding="utf-8")
    loaded = profiles.load("old").config
    assert loaded.crm_auth == "password" and not loaded.uses_oauth
    assert (loaded.crm_client_id, loaded.crm_authority) == (DEFAULT_CLIENT_ID, DEFAULT_AUTHORITY)
    assert loaded.crm_ca_file == "" and loaded.crm_verify is True
    assert loaded.crm_discovery_url == DEFAULT_DISCOVERY_URL
    profiles.save("old", loaded)
    text = path.read_text(encoding="utf-8")
    assert "crm_auth" not in text and "crm_client_id" not in text  # defaults stay out
    assert profiles.load("old").config == loaded


def test_sign_in_keys_round_trip(tmp_path: Path) -> None:
    profiles = Profiles(tmp_path)
    ca = tmp_path / "ca.pem"
    settings = {
        "crm_auth": "adfs",
        "crm_client_id": "trackbox-desktop",
        "crm_authority": "https://adfs.contoso.local/adfs",
        "crm_ca_file": str(ca),
        "crm_discovery_url": "https://disco.contoso.local",
    }
    saved = profiles.save("onprem", {**BASE, **settings})
    loaded = profiles.load("onprem").config
    assert loaded == saved.config
    assert {k: getattr(loaded, k) for k in settings} == settings
    assert loaded.uses_oauth and loaded.crm_verify == str(ca)
    text = saved.config_path.read_text(encoding="utf-8")
    assert (
        'crm_auth = "adfs"' in text and 'crm_authority = "https://adfs.contoso.local/adfs"' in text
    )


@pytest.mark.parametrize(
    ("changes", "key", "expected"),
    [
        (
            {"crm_auth": "kerberos"},
            "crm_auth",
            "Expected one of password, microsoft, adfs, windows",
        ),
        ({"crm_auth": 1}, "crm_auth", "Expected a string"),
        ({"crm_auth": "microsoft", "crm_client_id": "my-app"}, "crm_client_id", "is a GUID"),
        ({"crm_client_id": "has space"}, "crm_client_id", "application (client) id"),
        ({"crm_client_id": ""}, "crm_client_id", "application (client) id"),
        ({"crm_authority": "http://login.example/t"}, "crm_authority", "https:// URL"),
        ({"crm_authority": "https://login.example"}, "crm_authority", "with its tenant"),
        ({"crm_authority": "https://login.example/t?x=1"}, "crm_authority", "https:// URL"),
        ({"crm_auth": "adfs"}, "crm_authority", "https://<AD FS host>/adfs"),
        (
            {"crm_auth": "adfs", "crm_authority": "https://adfs.contoso.local/common"},
            "crm_authority",
            "AD FS",
        ),
        ({"crm_discovery_url": "globaldisco"}, "crm_discovery_url", "https:// URL"),
        ({"crm_ca_file": "relative/ca.pem"}, "crm_ca_file", "absolute path"),
    ],
)
def test_bad_sign_in_values_name_file_key_and_value(
    changes: dict[str, object], key: str, expected: str
) -> None:
    with pytest.raises(ProfileConfigError) as info:
        validate({**BASE, **changes}, "/p/profile.toml")
    assert info.value.key == key
    assert expected in info.value.expected
    assert "/p/profile.toml" in str(info.value)


def test_windows_and_microsoft_profiles_validate() -> None:
    windows = validate({**BASE, "crm_auth": "windows", "crm_user": "CONTOSO\\alexm"}, "<t>")
    assert windows.crm_auth == "windows" and not windows.uses_oauth
    tenant = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47"
    online = validate({**BASE, "crm_auth": "microsoft", "crm_authority": tenant}, "<t>")
    assert online.uses_oauth and online.crm_authority == tenant
    assert validate({**BASE, "crm_ca_file": "~/ca.pem"}, "<t>").crm_verify != "~/ca.pem"


def test_with_sign_in_accepts_only_sign_in_keys() -> None:
    config = validate(BASE, "<t>")
    changed = with_sign_in(config, {"crm_auth": "microsoft"})
    assert changed.crm_auth == "microsoft" and changed.crm_url == config.crm_url
    with pytest.raises(ProfileConfigError) as info:
        with_sign_in(config, {"crm_url": "https://other.example"})
    assert info.value.key == "crm_url"
