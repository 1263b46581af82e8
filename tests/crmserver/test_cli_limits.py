"""``trackbox-crm serve --limits``: the real command in its own process enforces Dataverse's
service protection limits (429, Retry-After, Dataverse's error body) per user on the Web API
only; ``off`` (the default) and ``dataverse`` are words; a bad value exits 2 with a message."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from core.crm.client import ODATA_HEADERS
from core.domain import demo_data
from crmserver.cli import main

ME = demo_data.ME.email
PRIYA = demo_data.COLLEAGUES[0].email
API = "/api/data/v9.2/"


@contextmanager
def serving(tmp_path: Path, *options: str) -> Iterator[str]:
    """``trackbox-crm serve`` with the demo seed in a process; yields its URL."""
    command = [sys.executable, "-m", "crmserver.cli", "serve", "--db", str(tmp_path / "l.db")]
    command += ["--port", "0", "--seed", "demo", *options]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def web_api(url: str, email: str = ME) -> httpx.Client:
    return httpx.Client(
        base_url=url + API,
        auth=(email, demo_data.DEMO_PASSWORD),
        headers=ODATA_HEADERS,
        timeout=30,
    )


def test_the_nth_request_in_the_window_is_answered_429(tmp_path: Path) -> None:
    with serving(tmp_path, "--limits", "requests=3,window=30") as url, web_api(url) as me:
        answers = [me.get("WhoAmI") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        refused = me.get("WhoAmI")
        assert refused.status_code == 429, refused.text
        assert 29 <= int(refused.headers["Retry-After"]) <= 30
        assert refused.json() == {
            "error": {
                "code": "0x80072322",
                "message": "Number of requests exceeded the limit of 3 over time window of "
                "30 seconds.",
            }
        }
        # Per user: a colleague still gets through; the sign-in pages are never limited.
        with web_api(url, PRIYA) as priya:
            assert priya.get("WhoAmI").status_code == 200
        config = httpx.get(url + "/organizations/v2.0/.well-known/openid-configuration")
        assert config.status_code == 200


def test_without_limits_nothing_is_throttled(tmp_path: Path) -> None:
    with serving(tmp_path) as url, web_api(url) as me:
        assert {me.get("WhoAmI").status_code for _ in range(40)} == {200}


def test_dataverse_is_a_word_for_its_defaults(tmp_path: Path) -> None:
    with serving(tmp_path, "--limits", "dataverse") as url, web_api(url) as me:
        assert {me.get("WhoAmI").status_code for _ in range(20)} == {200}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("requests=0", "'requests' = '0': not a positive whole number"),
        ("requests=lots", "'requests' = 'lots': not a whole number"),
        ("window=-1", "'window' = '-1.0': not a positive number of seconds"),
        ("speed=3", "'speed' = '3': unknown limit"),
        ("requests", "expected requests=VALUE"),
        ("", "no limit given"),
    ],
)
def test_a_bad_value_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, says: str
) -> None:
    code = main(["serve", "--db", str(tmp_path / "e.db"), "--port", "0", "--limits", value])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: --limits {value!r}: ") and says in err, err
    assert "requests=N,concurrent=N,window=SECONDS" in err
    assert not (tmp_path / "e.db").exists()


def test_a_bad_value_exits_2_in_a_process(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crmserver.cli", "serve", "--db", str(tmp_path / "p.db")]
        + ["--port", "0", "--limits", "concurrent=1.5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "'concurrent' = '1.5': not a whole number" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_documents_limits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--limits" in out and "off (default)" in out and "dataverse" in out
    assert "requests=N,concurrent=N,window=SECONDS" in out
