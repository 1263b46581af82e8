"""Property tests: hostile or random input is a 4xx with the OData error body, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmserver import RunningServer

from .helpers import client

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def shared(crm_server: RunningServer) -> Iterator[httpx.Client]:
    with client(crm_server) as c:
        yield c


def assert_no_500(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.request.url, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert "error" in r.json(), r.text[:300]
        assert "Traceback" not in r.text


NAMES = st.sampled_from(
    [
        "fullname",
        "lastname",
        "emailaddress1",
        "_parentcustomerid_value",
        "statecode",
        "createdon",
        "nosuch",
        "donotemail",
        "parentcustomerid_account",
        "email_activity_parties",
        "subject",
        "_regardingobjectid_value",
        "",
        " ",
        "$",
        "(",
        ")",
        ",",
        ";",
        "asc",
        "desc",
    ]
)
SETS = st.sampled_from(["contacts", "emails", "accounts", "activityparties", "leads"])


@SETTINGS
@given(
    set_name=SETS,
    select=st.lists(NAMES, max_size=4),
    order=st.lists(NAMES, max_size=3),
    expand=st.lists(NAMES, max_size=3),
    top=st.one_of(st.none(), st.text(max_size=5)),
)
def test_random_query_options_never_500(
    shared: httpx.Client,
    set_name: str,
    select: list[str],
    order: list[str],
    expand: list[str],
    top: str | None,
) -> None:
    params = {"$select": ",".join(select), "$orderby": ",".join(order), "$expand": ",".join(expand)}
    if top is not None:
        params["$top"] = top
    assert_no_500(shared.get(set_name, params=params))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(
    [
        "lastname",
        "firstname",
        "emailaddress1",
        "statecode",
        "statuscode",
        "donotemail",
        "createdon",
        "parentcustomerid_account@odata.bind",
        "ownerid@odata.bind",
        "_parentcustomerid_value",
        "email_activity_parties",
        "nosuch",
        "@odata.type",
        "contactid",
        "subject",
        "regardingobjectid_contact_email@odata.bind",
    ]
)


@SETTINGS
@given(
    set_name=st.sampled_from(["contacts", "emails", "leads"]),
    body=st.dictionaries(KEYS, JSON, max_size=5),
)
def test_random_bodies_never_500(
    shared: httpx.Client, set_name: str, body: dict[str, object]
) -> None:
    assert_no_500(shared.post(set_name, json=body))


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "MessageId",
                "Subject",
                "From",
                "To",
                "Cc",
                "Bcc",
                "ReceivedOn",
                "Importance",
                "Body",
                "Attachments",
                "ExtraProperties",
                "SubmittedBy",
            ]
        ),
        JSON,
        max_size=8,
    )
)
def test_random_promotions_never_500(shared: httpx.Client, params: dict[str, object]) -> None:
    assert_no_500(shared.post("DeliverPromoteEmail", json=params))


@SETTINGS
@given(data=st.binary(max_size=400), boundary=st.sampled_from(["b", "batch_1", ""]))
def test_random_batches_never_500(shared: httpx.Client, data: bytes, boundary: str) -> None:
    body = b"--b\r\nContent-Type: application/http\r\n\r\n" + data + b"\r\n--b--\r\n"
    for payload in (data, body):
        r = shared.post(
            "$batch",
            content=payload,
            headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
        )
        assert_no_500(r)


@SETTINGS
@given(path=st.text(alphabet="abcdefmo()/'=$@.,-0123456789CRMicrosoftDynamics", max_size=40))
def test_random_paths_never_500(shared: httpx.Client, path: str) -> None:
    for method in ("GET", "POST", "PATCH", "DELETE"):
        assert_no_500(shared.request(method, path.lstrip("/"), json={}))
