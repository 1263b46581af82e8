"""Hostile request bodies and query options: whatever a client sends, the answer is never a
5xx; a body that is not the expected JSON object is a 400 OData error saying what was wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmserver import RunningServer, Settings, TlsFiles, run_in_thread

from .helpers import assert_odata_error, client, promote

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
MAX_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, crm_tls: TlsFiles) -> Iterator[RunningServer]:
    """A private emulator: hostile bodies that are accepted create records."""
    path: Path = tmp_path_factory.mktemp("hostile") / "org.db"
    settings = Settings(db_path=path, seed="demo", max_request_bytes=MAX_BYTES)
    with run_in_thread(settings, tls=crm_tls) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with client(server) as c:
        yield c


@pytest.fixture(scope="module")
def targets(api: httpx.Client) -> list[tuple[str, str]]:
    """``(method, path)`` pairs whose body must be a JSON object."""
    r = api.post("contacts", json={"lastname": "Hostile"})
    assert r.status_code == 204, r.text
    contact = r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    email = promote(api)
    return [
        ("POST", "contacts"),
        ("POST", "accounts"),
        ("PATCH", f"contacts({contact})"),
        ("PATCH", f"emails({email})"),
        ("PUT", f"contacts({contact})/lastname"),
        ("PUT", f"contacts({contact})/parentcustomerid_account/$ref"),
        ("POST", "DeliverPromoteEmail"),
        ("POST", "CheckPromoteEmail"),
        ("POST", "GetTrackingTokenEmail"),
        ("POST", f"emails({email})/Microsoft.Dynamics.CRM.SendEmail"),
        ("POST", "contacts/Microsoft.Dynamics.CRM.CreateMultiple"),
        ("POST", "contacts/Microsoft.Dynamics.CRM.UpdateMultiple"),
    ]


def assert_no_5xx(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert "error" in r.json(), r.text[:300]
        assert "Traceback" not in r.text


def send(api: httpx.Client, method: str, path: str, data: bytes) -> httpx.Response:
    return api.request(method, path, content=data, headers={"Content-Type": "application/json"})


def batch(inner_method: str, inner_path: str, data: bytes, *, changeset: bool) -> bytes:
    request = (
        f"{inner_method} /api/data/v9.2/{inner_path} HTTP/1.1\r\n"
        "Content-Type: application/json\r\n\r\n"
    ).encode() + data
    part = b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if changeset:
        inner = b"--cs\r\n" + part + b"Content-ID: 1\r\n\r\n" + request + b"\r\n--cs--\r\n"
        outer = b"Content-Type: multipart/mixed; boundary=cs\r\n\r\n" + inner
    else:
        outer = part + b"\r\n" + request
    return b"--b\r\n" + outer + b"\r\n--b--\r\n"


def post_batch(api: httpx.Client, body: bytes) -> httpx.Response:
    return api.post("$batch", content=body, headers={"Content-Type": "multipart/mixed; boundary=b"})


def inner_statuses(r: httpx.Response) -> list[int]:
    return [int(line.split()[1]) for line in r.text.splitlines() if line.startswith("HTTP/1.1 ")]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
NOT_OBJECTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.lists(JSON_VALUES, max_size=4),
)
HOSTILE_BYTES = [
    b"[" * 50_000,
    b'{"a":' * 12_000,
    b"[" * 70 + b"]" * 70,
    b'{"lastname": "\xff\xfe"}',
    b"\xef\xbb\xbf{}",
    b'{"lastname": NaN}',
    b"1" * 5000,
    b"nul",
    b"\x00",
]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "null"),
        (1, "a number"),
        (2.5, "a number"),
        ("text", "a string"),
        ([], "an array"),
        ([{"lastname": "x"}], "an array"),
        (True, "a boolean"),
    ],
)
def test_a_body_that_is_not_an_object_says_what_it_is(
    api: httpx.Client, value: Any, kind: str
) -> None:
    data = json.dumps(value).encode()
    for path in ("contacts", "DeliverPromoteEmail", "CheckPromoteEmail"):
        err = assert_odata_error(send(api, "POST", path, data), 400)
        assert err["message"] == f"The request body must be a JSON object, not {kind}."


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"[" * 50_000, "nested"),
        (b"[" * 70 + b"]" * 70, "nested"),
        (b'{"lastname": "\xff"}', "UTF-8"),
        (b'{"lastname": NaN}', "not valid JSON"),
        (b'{"lastname": ', "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400_saying_what_is_wrong(
    api: httpx.Client, data: bytes, says: str
) -> None:
    err = assert_odata_error(send(api, "POST", "contacts", data), 400)
    assert says in err["message"]


def test_a_body_over_the_limit_is_413(api: httpx.Client) -> None:
    assert_odata_error(send(api, "POST", "contacts", b" " * (MAX_BYTES + 1)), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for _ in range(MAX_BYTES // 1024 + 2):
            yield b"[" * 1024

    r = api.post("contacts", content=chunks(), headers={"Content-Type": "application/json"})
    assert_odata_error(r, 413)


@SETTINGS
@given(value=JSON_VALUES, index=st.integers(min_value=0))
def test_any_json_value_is_never_a_5xx(
    api: httpx.Client, targets: list[tuple[str, str]], value: Any, index: int
) -> None:
    method, path = targets[index % len(targets)]
    assert_no_5xx(send(api, method, path, json.dumps(value).encode()))


@SETTINGS
@given(value=NOT_OBJECTS, index=st.integers(min_value=0))
def test_any_json_non_object_is_a_400(
    api: httpx.Client, targets: list[tuple[str, str]], value: Any, index: int
) -> None:
    method, path = targets[index % len(targets)]
    assert_odata_error(send(api, method, path, json.dumps(value).encode()), 400)


@SETTINGS
@given(data=st.binary(max_size=200), index=st.integers(min_value=0))
@example(data=HOSTILE_BYTES[0], index=0)
@example(data=HOSTILE_BYTES[1], index=6)
@example(data=HOSTILE_BYTES[3], index=2)
def test_any_bytes_are_never_a_5xx(
    api: httpx.Client, targets: list[tuple[str, str]], data: bytes, index: int
) -> None:
    method, path = targets[index % len(targets)]
    assert_no_5xx(send(api, method, path, data))


@SETTINGS
@given(
    data=st.one_of(st.binary(max_size=100), st.sampled_from(HOSTILE_BYTES)),
    index=st.integers(min_value=0),
    changeset=st.booleans(),
)
def test_batch_parts_with_any_body_are_never_a_5xx(
    api: httpx.Client, targets: list[tuple[str, str]], data: bytes, index: int, changeset: bool
) -> None:
    method, path = targets[index % len(targets)]
    r = post_batch(api, batch(method, path, data, changeset=changeset))
    assert_no_5xx(r)
    assert all(status < 500 for status in inner_statuses(r)), r.text[:500]


@SETTINGS
@given(data=st.binary(max_size=300))
@example(data=b"--b\r\nContent-Type: application/http\r\n\r\nPOST \xff\xfe HTTP/1.1\r\n\r\n--b--")
def test_any_batch_body_is_never_a_5xx(api: httpx.Client, data: bytes) -> None:
    r = post_batch(api, b"--b\r\n" + data + b"\r\n--b--\r\n")
    assert_no_5xx(r)
    assert all(status < 500 for status in inner_statuses(r)), r.text[:500]


QUERY_TEXT = st.text(max_size=40)
OPTIONS = st.sampled_from(["$filter", "$select", "$orderby", "$top", "$expand"])


@SETTINGS
@given(
    options=st.dictionaries(OPTIONS, QUERY_TEXT, min_size=1, max_size=3),
    entity_set=st.sampled_from(["contacts", "accounts", "emails"]),
)
def test_any_query_options_are_never_a_5xx(
    api: httpx.Client, options: dict[str, str], entity_set: str
) -> None:
    assert_no_5xx(api.get(entity_set, params=options))
