"""The demo signs Alex in as a real organisation would: the emulator over HTTPS with a throwaway
CA kept in the demo's directory, an auth-code + PKCE sign-in on the emulator's own page driven
without a browser, and every request of the demo's CRM client carrying Alex's bearer JWT
(RS256, signed by the emulator's key) — with no token in any file or in the keyring."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import keyring
import pytest
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

import crmserver
from core.crm.auth import BearerAuth
from core.crm.errors import CrmCertificateError
from core.domain import demo_data
from crmserver import make_throwaway_ca
from crmserver.demo_sign_in import DemoSignInError, authorizer
from desktop.demo import TLS_DIR, DemoEnvironment, sign_in_demo_user, start_demo
from tests.memory_keyring import MemoryKeyring

ME = demo_data.ME.email
PRIYA = demo_data.COLLEAGUES[0].email


class Seen:
    """Test-only middleware: the scheme and Authorization header of every Web API request
    the server received."""

    def __init__(self, app: ASGIApp, seen: list[tuple[str, str]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope["path"]).startswith("/api/data"):
            headers = dict(scope["headers"])
            self.seen.append(
                (str(scope["scheme"]), headers.get(b"authorization", b"").decode("latin-1"))
            )
        await self.app(scope, receive, send)


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Requests to the emulators the demo starts in this test (it imports ``run_in_thread``
    from ``crmserver`` when it starts)."""
    requests: list[tuple[str, str]] = []
    real = crmserver.run_in_thread

    def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["middleware"] = [*kwargs.get("middleware", ()), Middleware(Seen, seen=requests)]
        return real(*args, **kwargs)

    monkeypatch.setattr(crmserver, "run_in_thread", watched)
    return requests


@pytest.fixture
def ring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


@pytest.fixture
def started() -> Iterator[list[DemoEnvironment]]:
    envs: list[DemoEnvironment] = []
    yield envs
    for env in envs:
        env.close()


def _claims(token: str, env: DemoEnvironment) -> dict[str, object]:
    """The token's claims, its RS256 signature checked with the emulator's published key."""
    context = ssl.create_default_context(cafile=env.ca_file)
    keys = httpx.get(
        env.crm_url + "/organizations/discovery/v2.0/keys", verify=context, timeout=30
    ).json()
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    key = jwt.PyJWKSet.from_dict(keys)[header["kid"]]
    return dict(jwt.decode(token, key, algorithms=["RS256"], audience=env.crm_url))


def test_the_demo_crm_client_sends_alex_bearer_jwt_over_https(
    tmp_path: Path, seen: list[tuple[str, str]], ring: MemoryKeyring, started: list
) -> None:
    env = start_demo(tmp_path / "demo", messages=120)
    started.append(env)
    assert env.crm_url.startswith("https://127.0.0.1:")
    assert Path(env.ca_file) == tmp_path / "demo" / TLS_DIR / "ca.pem"
    assert isinstance(env.workspace.crm.auth, BearerAuth)
    history = len(seen)  # the first start gave the demo its history (the colleague: Basic)
    assert env.workspace.crm.who_am_i().user_id
    env.workspace.sync_cycle()
    mine = seen[history:]
    assert mine and {scheme for scheme, _ in mine} == {"https"}
    assert all(auth.startswith("Bearer ") for _, auth in mine), {a[:6] for _, a in mine}
    tokens = {auth.removeprefix("Bearer ") for _, auth in mine}
    claims = _claims(tokens.pop(), env)
    assert claims["preferred_username"] == ME and claims["scp"] == "user_impersonation"
    assert claims["iss"] == f"{env.crm_url}/{claims['tid']}/v2.0"
    # The history: Alex's promotions through the bearer client, the colleague's with Basic.
    basic = [auth for _, auth in seen[:history] if auth.startswith("Basic ")]
    assert basic and {base64.b64decode(a[6:]).decode().split(":")[0] for a in basic} == {PRIYA}
    assert any(auth.startswith("Bearer ") for _, auth in seen[:history])
    # The tokens live in memory only: no file of the demo and no keyring entry holds them.
    secrets = [auth.removeprefix("Bearer ").encode() for _, auth in seen if "Bearer" in auth]
    for path in (tmp_path / "demo").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret in data for secret in secrets), path
            if not path.name.startswith("crm.sqlite"):  # the emulator's own database aside
                assert b"refresh_token" not in data and b'"RefreshToken"' not in data, path
    assert ring._secrets == {}


def test_the_throwaway_ca_is_kept_and_made_again_when_it_no_longer_serves(
    tmp_path: Path, started: list
) -> None:
    data = tmp_path / "demo"
    first = start_demo(data, messages=60)
    ca = Path(first.ca_file).read_bytes()
    first.close()
    again = start_demo(data, messages=60)
    started.append(again)
    assert Path(again.ca_file).read_bytes() == ca  # kept: a CA the user trusted stays valid
    assert again.workspace.crm.who_am_i().user_id
    again.close()
    started.clear()
    # Another CA's certificate beside our CA: not used, a new pair is made.
    other = make_throwaway_ca(tmp_path / "other")
    (data / TLS_DIR / "server.pem").write_bytes(Path(other.cert).read_bytes())
    (data / TLS_DIR / "server-key.pem").write_bytes(Path(other.key).read_bytes())
    renewed = start_demo(data, messages=60)
    started.append(renewed)
    assert Path(renewed.ca_file).read_bytes() not in (ca, Path(other.ca or "").read_bytes())
    assert renewed.workspace.crm.who_am_i().user_id


def test_the_sign_in_verifies_the_server(tmp_path: Path, started: list) -> None:
    env = start_demo(tmp_path / "demo", messages=60)
    started.append(env)
    stranger = make_throwaway_ca(tmp_path / "stranger")
    with pytest.raises(CrmCertificateError):
        sign_in_demo_user(env.crm_url, str(stranger.ca))


def test_a_wrong_password_is_a_demo_sign_in_error(tmp_path: Path, started: list) -> None:
    env = start_demo(tmp_path / "demo", messages=60)
    started.append(env)
    from core.crm.signin import MicrosoftSignIn

    with MicrosoftSignIn(
        env.crm_url, authority=env.crm_url + "/organizations", verify=env.ca_file
    ) as signer:
        context = ssl.create_default_context(cafile=env.ca_file)
        with pytest.raises(DemoSignInError) as info:
            signer.sign_in_with_auth_code(authorizer(ME, "not-the-password", context))
    assert ME in str(info.value) and "not-the-password" not in str(info.value)
    assert signer.accounts() == []


def test_the_answer_is_the_form_post_fields(tmp_path: Path, started: list) -> None:
    """What the authorizer hands MSAL: the code and state the authority posts back."""
    env = start_demo(tmp_path / "demo", messages=60)
    started.append(env)
    from core.crm.signin import MicrosoftSignIn

    with MicrosoftSignIn(
        env.crm_url, authority=env.crm_url + "/organizations", verify=env.ca_file
    ) as signer:
        flow = signer.start_auth_code_flow(login_hint=ME)
        context = ssl.create_default_context(cafile=env.ca_file)
        answer = authorizer(ME, demo_data.DEMO_PASSWORD, context)(flow.auth_uri)
        assert answer["state"] == flow.state and answer["code"]
        assert signer.finish_auth_code_flow(flow, answer).username == ME
    assert json.dumps(answer)  # plain strings only
