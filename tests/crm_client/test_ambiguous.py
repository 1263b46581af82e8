"""How the client classifies what goes wrong between it and the CRM (issue 18, items 8-9):
"the CRM cannot be reached" (a plain ``CrmUnavailable``: the outbox goes offline) versus "this
one request failed" (``CrmRequestFailed``; for a write ``CrmAmbiguousResponse``: the CRM may
have done it). Against the emulator over HTTPS behind the fault-injecting proxy, each fault
scripted for one request, and read back through the CRM API directly."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

from core.crm import BasicAuth, CrmClient, CrmPermanentError, CrmProtocolError, CrmUnavailable
from core.crm.errors import CrmAmbiguousResponse, CrmRequestFailed
from core.domain import demo_data
from crmserver import RunningServer
from tests.fakes.fault_proxy import Fault, FaultProxy, Phase, Strike, running_fault_proxy
from tests.plugins.crm import crm_http_client, crm_ssl_context

AUTH = BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD)
BEFORE, AFTER = Phase.BEFORE, Phase.AFTER


@pytest.fixture
def proxy(crm_https: RunningServer) -> Iterator[FaultProxy]:
    with running_fault_proxy(crm_https.url, verify=crm_ssl_context(crm_https)) as running:
        yield running


@pytest.fixture
def crm(proxy: FaultProxy) -> Iterator[CrmClient]:
    with CrmClient(proxy.url, AUTH, timeout=30, get_retries=2, max_retry_wait=2) as client:
        yield client


def _promote(crm: CrmClient, mid: str) -> str:
    return crm.deliver_promote_email(
        message_id=mid,
        subject="Ambiguous",
        sender="jane.doe@fabrikam.example",
        to=[demo_data.ME.email],
        received_on=None,
        body="<p>hi</p>",
    )


def _emails_with(server: RunningServer, mid: str) -> list[str]:
    """The CRM's e-mails with this Message-ID, asked directly (not through the proxy)."""
    with crm_http_client(server) as http:
        response = http.get(
            "emails", params={"$select": "activityid", "$filter": f"messageid eq '{mid}'"}
        )
    response.raise_for_status()
    return [row["activityid"] for row in response.json()["value"]]


def _mid() -> str:
    return f"<ambiguous-{uuid.uuid4().hex}@test.example>"


def test_a_refused_connection_is_unreachable_not_a_failed_request() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    away = CrmClient(f"http://127.0.0.1:{port}", AUTH, timeout=5, get_retries=0)
    with away, pytest.raises(CrmUnavailable) as info:
        _promote(away, _mid())
    assert type(info.value) is CrmUnavailable  # the CRM is away, not one request failing


@pytest.mark.parametrize(
    ("fault", "phase", "done"),
    [
        (Fault.MALFORMED, AFTER, True),  # issue 18 item 9: the CRM has the e-mail
        (Fault.TRUNCATED, AFTER, True),
        (Fault.RESET, AFTER, True),
        (Fault.E502, AFTER, True),
        (Fault.RESET, BEFORE, False),
        (Fault.E500, BEFORE, False),
        (Fault.MALFORMED, BEFORE, False),  # a 200 the CRM never gave
    ],
)
def test_a_write_whose_answer_is_lost_or_garbled_is_ambiguous(
    proxy: FaultProxy,
    crm: CrmClient,
    crm_https: RunningServer,
    fault: Fault,
    phase: Phase,
    done: bool,
) -> None:
    mid = _mid()
    proxy.script = [Strike(fault, phase)]
    with pytest.raises(CrmAmbiguousResponse) as info:
        _promote(crm, mid)
    assert isinstance(info.value, CrmRequestFailed) and isinstance(info.value, CrmUnavailable)
    assert info.value.method == "POST"
    assert len(_emails_with(crm_https, mid)) == (1 if done else 0)
    # Sent again (as the outbox does), the CRM keeps one e-mail for the Message-ID.
    activity = _promote(crm, mid)
    assert _emails_with(crm_https, mid) == [activity]


def test_a_patch_answered_with_garbage_is_ambiguous(proxy: FaultProxy, crm: CrmClient) -> None:
    """A 200 with an HTML page (a captive portal) does not prove a PATCH was done: the upsert
    of a record on its chosen GUID (``CreateRecord``) is sent again, and done once."""
    record = str(uuid.uuid4())
    data = {"firstname": "Ambi", "lastname": "Guous", "emailaddress1": f"{record}@x.example"}
    proxy.script = [Strike(Fault.MALFORMED, BEFORE)]
    with pytest.raises(CrmAmbiguousResponse):
        crm.update("contacts", record, data, if_match=None)
    crm.update("contacts", record, data, if_match=None)  # sent again: done
    assert crm.get("contacts", record, select=["lastname"])["lastname"] == "Guous"
    found = list(
        crm.query(
            "contacts", select=["contactid"], filter=f"emailaddress1 eq '{data['emailaddress1']}'"
        )
    )
    assert [row["contactid"] for row in found] == [record]


@pytest.mark.parametrize("fault", [Fault.MALFORMED, Fault.TRUNCATED, Fault.RESET, Fault.E503])
def test_a_get_is_asked_again_after_a_failed_answer(
    proxy: FaultProxy, crm: CrmClient, fault: Fault
) -> None:
    proxy.script = [Strike(fault, AFTER), Strike(fault, BEFORE)]
    assert crm.who_am_i().user_id
    assert [f for _, path, f, _ in proxy.log if path.endswith("WhoAmI")] == [fault, fault, ""]


def test_a_get_that_keeps_failing_is_a_failed_request(proxy: FaultProxy, crm: CrmClient) -> None:
    proxy.script = [Strike(Fault.TRUNCATED, AFTER)] * 3
    with pytest.raises(CrmRequestFailed) as info:
        crm.who_am_i()
    assert not isinstance(info.value, CrmAmbiguousResponse)  # a GET changes nothing
    assert len(proxy.log) == 3


def test_a_5xx_is_a_failed_request_with_its_status(proxy: FaultProxy, crm: CrmClient) -> None:
    proxy.script = [Strike(Fault.E503, BEFORE)]
    with pytest.raises(CrmAmbiguousResponse) as info:
        crm.update("emails", str(uuid.uuid4()), {"subject": "x"})
    assert info.value.status == 503


def test_readable_json_that_is_not_the_web_api_stays_a_protocol_error(
    crm: CrmClient, proxy: FaultProxy
) -> None:
    """Asking again cannot help: permanent, as before (``CrmProtocolError``)."""
    original = proxy.forward

    def array_page(*args: object) -> object:
        answer = original(*args)  # type: ignore[arg-type]
        answer.body = b"[1, 2, 3]"
        return answer

    proxy.forward = array_page  # type: ignore[method-assign, assignment]
    with pytest.raises(CrmProtocolError) as info:
        crm.who_am_i()
    assert isinstance(info.value, CrmPermanentError)
    assert len(proxy.log) == 1  # not asked again
