"""Links and redirects the CRM hands out are followed only on the CRM's own origin: a next
link, delta link or redirect to another scheme, host or port would carry the CRM's
Authorization header there. Two canned servers of the test's own on loopback: the "CRM" and
a foreign one that records what reaches it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.crm import BasicAuth, CrmClient
from core.crm.errors import CrmForeignOrigin, CrmPermanentError

#: path -> (status, headers, JSON body) that the canned CRM answers.
Answer = tuple[int, dict[str, str], dict[str, Any] | None]


class Canned:
    """A loopback HTTP server answering from ``routes`` and recording each request's path and
    whether it carried an Authorization header."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[], Answer]] = {}
        self.seen: list[tuple[str, bool]] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                canned.seen.append((self.path, "Authorization" in self.headers))
                route = canned.routes.get(self.path.split("?", 1)[0])
                status, headers, body = route() if route else (404, {}, {"error": {}})
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def crm() -> Iterator[Canned]:
    server = Canned()
    yield server
    server.close()


@pytest.fixture
def foreign() -> Iterator[Canned]:
    server = Canned()
    yield server
    server.close()


def client(crm: Canned) -> CrmClient:
    return CrmClient(crm.url, BasicAuth("me@contoso.example", "secret"), get_retries=0)


API = "/api/data/v9.2/"


def page(rows: list[dict[str, Any]], **links: str) -> Callable[[], Answer]:
    return lambda: (200, {}, {"value": rows, **{f"@odata.{k}": v for k, v in links.items()}})


def test_a_next_link_to_another_port_is_not_followed(crm: Canned, foreign: Canned) -> None:
    crm.routes[API + "contacts"] = page(
        [{"contactid": "1"}], nextLink=f"{foreign.url}{API}contacts?$skiptoken=2"
    )
    with client(crm) as c, pytest.raises(CrmForeignOrigin) as raised:
        list(c.query("contacts", select=["contactid"]))
    assert foreign.seen == []
    assert raised.value.origin == foreign.url and foreign.url in str(raised.value)
    assert isinstance(raised.value, CrmPermanentError)
    assert crm.seen == [(API + "contacts?%24select=contactid", True)]


def test_change_tracking_links_to_another_host_are_not_followed(
    crm: Canned, foreign: Canned
) -> None:
    other_host = foreign.url.replace("127.0.0.1", "localhost")
    crm.routes[API + "emails"] = page([], nextLink=f"{other_host}{API}emails?$skiptoken=2")
    crm.routes[API + "contacts"] = page([], deltaLink=f"{foreign.url}/steal?$deltatoken=1")
    with client(crm) as c:
        with pytest.raises(CrmForeignOrigin) as raised:
            c.track_changes("emails", ["subject"])
        assert raised.value.origin == other_host
        with pytest.raises(CrmForeignOrigin):
            c.track_changes("contacts", ["fullname"])
        with pytest.raises(CrmForeignOrigin):  # a stored link is never sent elsewhere either
            c.track_changes("contacts", ["fullname"], delta_link=f"{foreign.url}/steal")
    assert foreign.seen == []


def test_a_next_link_to_another_scheme_is_not_followed(crm: Canned, foreign: Canned) -> None:
    https = crm.url.replace("http://", "https://")
    crm.routes[API + "contacts"] = page([], nextLink=f"{https}{API}contacts?$skiptoken=2")
    with client(crm) as c, pytest.raises(CrmForeignOrigin) as raised:
        list(c.query("contacts"))
    assert raised.value.origin == https
    assert len(crm.seen) == 1


def test_a_redirect_to_another_origin_is_not_followed(crm: Canned, foreign: Canned) -> None:
    foreign.routes["/WhoAmI"] = lambda: (200, {}, {"UserId": "x"})
    crm.routes[API + "WhoAmI"] = lambda: (302, {"Location": f"{foreign.url}/WhoAmI"}, None)
    with client(crm) as c, pytest.raises(CrmForeignOrigin) as raised:
        c.who_am_i()
    assert raised.value.origin == foreign.url
    assert foreign.seen == []


def test_links_on_the_crms_own_origin_are_followed(crm: Canned) -> None:
    crm.routes[API + "contacts"] = lambda: (
        (200, {}, {"value": [{"n": 2}]})
        if len(crm.seen) > 1
        else (200, {}, {"value": [{"n": 1}], "@odata.nextLink": f"{crm.url}{API}contacts?p=2"})
    )
    with client(crm) as c:
        assert [r["n"] for r in c.query("contacts")] == [1, 2]
    assert [auth for _, auth in crm.seen] == [True, True]
