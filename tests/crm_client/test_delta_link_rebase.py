"""A stored delta link keeps working when the CRM's address changes (the demo emulator gets a
new port every launch; a Dynamics org can be renamed)."""

from __future__ import annotations

from pathlib import Path

from core.crm import BasicAuth, CrmClient
from core.crm.client import api_relative
from core.domain import demo_data
from crmserver import Settings, run_in_thread


def test_links_are_made_relative_to_the_api_root() -> None:
    token = "contacts?$select=fullname&$deltatoken=919042%2108%2f22%2f2017"
    assert api_relative(f"http://127.0.0.1:5555/api/data/v9.2/{token}") == token
    assert api_relative(f"https://org.crm4.dynamics.com/api/data/v9.0/{token}") == token
    assert api_relative(token) == token


def test_delta_link_survives_a_server_restart_on_another_port(tmp_path: Path) -> None:
    db = tmp_path / "crm.sqlite"
    auth = BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD)
    with run_in_thread(Settings(db_path=db, seed="demo")) as first:
        client = CrmClient(first.url, auth)
        full = client.track_changes("contacts", ["fullname", "emailaddress1"])
        assert full.rows and full.delta_link
        assert "127.0.0.1" not in full.delta_link  # stored without the server's address
        client.create(
            "contacts",
            {
                "firstname": "Nadia",
                "lastname": "Okoro",
                "emailaddress1": "nadia.okoro@fabrikam.example",
            },
        )
        client.close()
    with run_in_thread(Settings(db_path=db, seed="demo")) as second:
        client = CrmClient(second.url, auth)
        delta = client.track_changes(
            "contacts", ["fullname", "emailaddress1"], delta_link=full.delta_link
        )
        client.close()
    assert [r["emailaddress1"] for r in delta.rows] == ["nadia.okoro@fabrikam.example"]
