"""The emulator over HTTPS and behind a reverse proxy: every absolute URL it writes
(nextLink, deltaLink, @odata.context, OData-EntityId, Location) carries the scheme and host the
client used; forwarded headers count only from trusted peers; hostile hosts get 400."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from core.crm.client import ODATA_HEADERS
from core.domain import demo_data
from crmserver import (
    ProxySettingError,
    RunningServer,
    Settings,
    TlsFiles,
    make_throwaway_ca,
    run_in_thread,
)
from crmserver.cli import main
from tests.plugins.crm import crm_http_client, crm_ssl_context

from .helpers import ME

API = "/api/data/v9.2/"
PUBLIC = "https://crm.example.test"
AUTH = (ME, demo_data.DEMO_PASSWORD)


def page_through(
    c: httpx.Client, first: str, size: int, track: bool = False
) -> tuple[list[str], list[dict[str, object]]]:
    """Follow @odata.nextLink from ``first``; the links met (the last one the deltaLink when
    ``track``) and the rows."""
    prefer = f"odata.maxpagesize={size}" + (",odata.track-changes" if track else "")
    r = c.get(first, params={"$select": "name"}, headers={"Prefer": prefer})
    links: list[str] = []
    rows: list[dict[str, object]] = []
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        rows.extend(body["value"])
        links.append(body["@odata.context"])
        if "@odata.nextLink" not in body:
            if track:
                links.append(body["@odata.deltaLink"])
            return links, rows
        links.append(body["@odata.nextLink"])
        r = c.get(body["@odata.nextLink"], headers={"Prefer": prefer})


# -- HTTPS --------------------------------------------------------------------------------------


def test_https_client_pages_with_https_links(crm_https: RunningServer) -> None:
    assert crm_https.url.startswith("https://127.0.0.1:") and crm_https.ca_file
    with crm_http_client(crm_https) as c:
        links, rows = page_through(c, "accounts", size=2, track=True)
    assert len(rows) >= 6 and len(links) >= 2 * 3
    for link in links:
        assert link.startswith(crm_https.url + API), link
        assert urlsplit(link).scheme == "https"
    assert "$skiptoken=" in links[1] and "$deltatoken=" in links[-1]


def test_https_is_real_tls(crm_https: RunningServer) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(crm_https.url + "/", verify=ssl.create_default_context())
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"http://127.0.0.1:{crm_https.port}/")
    with socket.create_connection(("127.0.0.1", crm_https.port), timeout=10) as raw:
        context = crm_ssl_context(crm_https)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_created_record_urls_over_https(fresh_crm_https: RunningServer) -> None:
    with crm_http_client(fresh_crm_https) as c:
        r = c.post("accounts", json={"name": "Over TLS"})
    assert r.status_code == 204, r.text
    assert r.headers["OData-EntityId"].startswith(fresh_crm_https.url + API + "accounts(")
    assert r.headers["Location"] == r.headers["OData-EntityId"]


# -- behind a reverse proxy ---------------------------------------------------------------------


class ReverseProxy(httpx.BaseTransport):
    """What a TLS-terminating proxy at ``public`` does: the client speaks to ``public`` (and
    must never be sent anywhere else); requests go on over plain HTTP to ``backend`` with the
    public prefix stripped, optionally with forwarded headers, from ``local_address``."""

    def __init__(
        self,
        public: str,
        backend: RunningServer,
        forwarded: dict[str, str] | None = None,
        local_address: str = "127.0.0.1",
    ) -> None:
        self.public = public.rstrip("/")
        self.backend = backend
        self.forwarded = forwarded or {}
        self.inner = httpx.HTTPTransport(local_address=local_address)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        assert url.startswith(self.public + "/"), f"client sent away from the proxy: {url}"
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        headers.update(self.forwarded)
        onward = httpx.Request(
            request.method,
            self.backend.url + url.removeprefix(self.public),
            headers=headers,
            content=request.read(),
        )
        response = self.inner.handle_request(onward)
        response.read()
        return response

    def close(self) -> None:
        self.inner.close()


def proxied_client(proxy: ReverseProxy) -> httpx.Client:
    return httpx.Client(
        base_url=proxy.public + API, transport=proxy, auth=AUTH, headers=ODATA_HEADERS
    )


def assert_all_urls_public(c: httpx.Client, public: str) -> None:
    root = public.rstrip("/") + API
    links, _ = page_through(c, "accounts", size=2, track=True)
    assert "$skiptoken=" in links[1] and "$deltatoken=" in links[-1]
    created = c.post("accounts", json={"name": "Behind the proxy"})
    assert created.status_code == 204, created.text
    entity_id = created.headers["OData-EntityId"]
    assert created.headers["Location"] == entity_id
    one = c.get(entity_id, params={"$select": "name"})
    assert one.status_code == 200 and one.json()["name"] == "Behind the proxy"
    links.append(entity_id)
    links.append(one.json()["@odata.context"])
    delta = c.get(links[-3], headers={"Prefer": "odata.track-changes"}).json()
    assert [v["name"] for v in delta["value"]] == ["Behind the proxy"]
    links.append(delta["@odata.deltaLink"])
    for link in links:
        assert link.startswith(root), link


@pytest.mark.parametrize("public", [PUBLIC, PUBLIC + "/crm/"])
def test_public_url_behind_proxy(tmp_path: Path, public: str) -> None:
    settings = Settings(db_path=tmp_path / "org.db", seed="demo")
    with run_in_thread(settings, public_url=public) as server:
        with proxied_client(ReverseProxy(public, server)) as c:
            assert_all_urls_public(c, public)
        # Whoever connects directly still gets the public URLs: that root is fixed.
        with crm_http_client(server) as direct:
            body = direct.get("accounts", params={"$top": 1}).json()
        assert body["@odata.context"].startswith(public.rstrip("/") + API)


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Plain HTTP on 127.0.0.1; only the peer 127.0.0.1 is a trusted proxy."""
    settings = Settings(db_path=tmp_path_factory.mktemp("proxy") / "org.db", seed="demo")
    with run_in_thread(settings, forwarded_allow_ips="127.0.0.1") as server:
        yield server


def test_forwarded_headers_from_trusted_proxy(behind_proxy: RunningServer) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "crm.example.test"}
    with proxied_client(ReverseProxy(PUBLIC, behind_proxy, headers)) as c:
        assert_all_urls_public(c, PUBLIC)
    standard = {"Forwarded": 'for=192.0.2.60;proto=https;host="crm.example.test:8443"'}
    with proxied_client(ReverseProxy(PUBLIC + ":8443", behind_proxy, standard)) as c:
        assert_all_urls_public(c, PUBLIC + ":8443")


def test_forwarded_headers_from_untrusted_peer_are_ignored(
    behind_proxy: RunningServer, crm_server: RunningServer
) -> None:
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "Forwarded": "proto=https;host=evil.example",
    }
    # 127.0.0.2 is loopback too, but not the trusted address.
    with httpx.Client(
        transport=httpx.HTTPTransport(local_address="127.0.0.2"), auth=AUTH, headers=headers
    ) as c:
        body = c.get(behind_proxy.api_url + "accounts", params={"$top": 1}).json()
    assert body["@odata.context"].startswith(behind_proxy.url + API)
    # forwarded_allow_ips not set (uvicorn would trust loopback by default): nobody is trusted.
    with crm_http_client(crm_server) as c:
        body = c.get("accounts", params={"$top": 1}, headers=headers).json()
    assert body["@odata.context"].startswith(crm_server.url + API)


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-Host": "evil.example/phish"},
        {"X-Forwarded-Host": "evil.example other"},
        {"X-Forwarded-Host": "evil.example:99999"},
        {"X-Forwarded-Host": "evil.example:0"},
        {"X-Forwarded-Host": "evil.example:https"},
        {"X-Forwarded-Host": "user@evil.example"},
        {"X-Forwarded-Host": "evil.example\\"},
        {"X-Forwarded-Proto": "javascript"},
        {"Forwarded": 'host="evil.example/phish"'},
        {"Forwarded": 'host="evil.example'},
        {"Forwarded": "proto=ftp;host=evil.example"},
        {"Host": "evil.example/phish"},
        {"Host": "evil example"},
        {"Host": "evil.example:99999"},
    ],
)
def test_hostile_hosts_are_rejected(behind_proxy: RunningServer, header: dict[str, str]) -> None:
    r = httpx.get(behind_proxy.api_url + "accounts", auth=AUTH, headers=header)
    assert r.status_code == 400
    assert "evil" not in r.text and "javascript" not in r.text
    assert not any("evil" in v for v in r.headers.values())


@pytest.mark.parametrize("name", [b"X-Forwarded-Host", b"Host"])
def test_control_characters_in_hosts_are_rejected(behind_proxy: RunningServer, name: bytes) -> None:
    host = b"127.0.0.1" if name != b"Host" else b""
    head = b"GET /api/data/v9.2/ HTTP/1.1\r\n" + (b"Host: 127.0.0.1\r\n" if host else b"")
    head += name + b": evil.example\rLocation: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", behind_proxy.port), timeout=10) as raw:
        raw.sendall(head)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"evil" not in answer


def test_bad_proxy_settings_raise_before_start(tmp_path: Path) -> None:
    settings = Settings(db_path=tmp_path / "never.db")
    for url in ("ftp://crm.example", "https://crm.example/x?y=1", "https://a b/", "crm.example"):
        with pytest.raises(ProxySettingError) as info:
            run_in_thread(settings, public_url=url)
        assert info.value.setting == "public_url" and info.value.value == url
    with pytest.raises(ProxySettingError) as info:
        run_in_thread(settings, forwarded_allow_ips="127.0.0.1,proxy.example")
    assert info.value.setting == "forwarded_allow_ips" and info.value.value == "proxy.example"
    assert not (tmp_path / "never.db").exists()


# -- throwaway CA ---------------------------------------------------------------------------


def test_throwaway_ca_files(tmp_path: Path) -> None:
    files = make_throwaway_ca(tmp_path / "ca", hostnames=("127.0.0.1", "crm.localhost"))
    assert files.ca is not None
    assert stat.S_IMODE(os.stat(files.key).st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == [
        "ca.pem",
        "server-key.pem",
        "server.pem",
    ]
    settings = Settings(db_path=tmp_path / "org.db", seed="demo")
    with run_in_thread(settings, tls=files) as server:
        assert server.ca_file == files.ca
        with crm_http_client(server) as c:
            assert c.get("WhoAmI").status_code == 200
        context = ssl.create_default_context(cafile=files.ca)
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="crm.localhost") as tls,
        ):
            assert tls.getpeercert() is not None
        with (
            pytest.raises(ssl.SSLCertVerificationError),
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as again,
        ):
            context.wrap_socket(again, server_hostname="other.example")


# -- trackbox-crm serve -----------------------------------------------------------------------


def test_serve_tls_self_signed(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "crmserver.cli", "serve", "--db", str(tmp_path / "s.db")]
    command += ["--port", "0", "--seed", "demo", "--tls-self-signed", str(tmp_path / "tls")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        ca_file = proc.stdout.readline().strip()
        assert url.startswith("https://127.0.0.1:"), url
        assert Path(ca_file) == tmp_path / "tls" / "ca.pem"
        context = ssl.create_default_context(cafile=ca_file)
        with httpx.Client(verify=context, auth=AUTH, headers=ODATA_HEADERS) as c:
            r = c.get(
                url + API + "accounts",
                params={"$select": "name"},
                headers={"Prefer": "odata.maxpagesize=2"},
            )
        assert r.status_code == 200, r.text
        assert r.json()["@odata.nextLink"].startswith(url + API)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def serve(tmp_path: Path, *options: str) -> int:
    return main(["serve", "--db", str(tmp_path / "e.db"), "--port", "0", *options])


def test_serve_refuses_bad_tls_options(
    tmp_path: Path, crm_tls: TlsFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    other = make_throwaway_ca(tmp_path / "other")
    assert serve(tmp_path, "--tls-cert", crm_tls.cert, "--tls-key", other.key) == 2
    err = capsys.readouterr().err
    assert other.key in err and "is not the private key of the certificate" in err
    assert serve(tmp_path, "--tls-cert", crm_tls.cert) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
    missing = str(tmp_path / "missing.pem")
    assert serve(tmp_path, "--tls-cert", missing, "--tls-key", crm_tls.key) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err
    assert serve(tmp_path, "--tls-cert", crm_tls.key, "--tls-key", crm_tls.key) == 2
    assert "not a PEM certificate" in capsys.readouterr().err
    assert serve(tmp_path, "--public-url", "ftp://crm.example") == 2
    assert "--public-url 'ftp://crm.example'" in capsys.readouterr().err
    assert serve(tmp_path, "--forwarded-allow-ips", "proxy.example") == 2
    assert "--forwarded-allow-ips 'proxy.example'" in capsys.readouterr().err
    assert not (tmp_path / "e.db").exists()


def test_serve_mismatched_key_exits_nonzero_in_a_process(tmp_path: Path, crm_tls: TlsFiles) -> None:
    other = make_throwaway_ca(tmp_path / "other")
    done = subprocess.run(
        [sys.executable, "-m", "crmserver.cli", "serve", "--db", str(tmp_path / "m.db")]
        + ["--port", "0", "--tls-cert", crm_tls.cert, "--tls-key", other.key],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and done.stdout == ""
    assert "is not the private key of the certificate" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_help_mentions_https_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--tls-cert",
        "--tls-key",
        "--tls-self-signed",
        "--public-url",
        "--forwarded-allow-ips",
    ):
        assert option in out
