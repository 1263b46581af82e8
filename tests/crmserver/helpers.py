"""Shared helpers for the emulator's HTTP conformance tests."""

from __future__ import annotations

import uuid

import httpx

from core.domain import demo_data
from crmserver import RunningServer
from tests.plugins.crm import crm_http_client

ME = demo_data.ME.email
PRIYA = demo_data.COLLEAGUES[0].email
TOMAS = demo_data.COLLEAGUES[1].email
JANE = "jane.doe@fabrikam.example"
RUTH = "ruth.alvarez@adventure-works.example"


def client(server: RunningServer, email: str = ME) -> httpx.Client:
    return crm_http_client(server, email)


def unique_message_id() -> str:
    return f"<{uuid.uuid4()}@test.example>"


def promote(c: httpx.Client, **params: object) -> str:
    body = {"MessageId": unique_message_id(), "Subject": "Test", "From": JANE, "To": ME}
    body.update(params)
    r = c.post("DeliverPromoteEmail", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["EmailId"])


def assert_odata_error(r: httpx.Response, status: int) -> dict[str, str]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"code", "message"}
    assert "Traceback" not in r.text
    return err  # type: ignore[no-any-return]
