"""Where to sign in: ``WWW-Authenticate`` parsing (good, several schemes, malformed, hostile),
the 401 challenge of an organisation, the Global Discovery Service's instance list, and what a
user typed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.crm.challenges import MAX_HEADER, ChallengeSyntaxError, parse_challenges
from core.crm.discovery import (
    AuthorityHint,
    OrgAddress,
    SignInInputError,
    UserAddress,
    challenge,
    discover,
    environments,
    parse_sign_in_input,
)
from core.crm.errors import AuthChallengeError, CrmAuthError, CrmUnavailable, DiscoveryError
from tests.signin.canned import Canned, canned_server

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
DATAVERSE = (
    f"Bearer authorization_uri=https://login.microsoftonline.com/{TENANT}/oauth2/authorize, "
    "resource_id=https://contoso.crm.dynamics.com/"
)


# -- parsing ---------------------------------------------------------------------------------


def test_dataverse_header_with_unquoted_urls() -> None:
    [bearer] = parse_challenges(DATAVERSE)
    assert bearer.scheme == "Bearer"
    assert bearer.params == {
        "authorization_uri": f"https://login.microsoftonline.com/{TENANT}/oauth2/authorize",
        "resource_id": "https://contoso.crm.dynamics.com/",
    }


def test_several_challenges_quoted_values_and_token68() -> None:
    found = parse_challenges(
        'Basic realm="trackbox-crm", charset="UTF-8", Bearer realm="a \\"quoted\\" one", '
        'authorization_uri="https://login.example/t/oauth2/authorize"',
        "Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnagMDAu==",
        "NTLM",
    )
    assert [c.scheme for c in found] == ["Basic", "Bearer", "Negotiate", "NTLM"]
    assert found[0].params == {"realm": "trackbox-crm", "charset": "UTF-8"}
    assert found[1].params["realm"] == 'a "quoted" one'
    assert found[1].params["authorization_uri"] == "https://login.example/t/oauth2/authorize"
    assert found[2].token68 == "YIIGhgYGKwYBBQUCoIIGejCCBnagMDAu=="
    assert found[3].params == {} and found[3].token68 is None


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ('Bearer realm="never closed', "unterminated quoted string"),
        ("realm=x", "outside a challenge"),
        ("Bearer a=1, a=2", "given twice"),
        ("Bearer a=b c=d", "expected ','"),
        ("Bearer a=b\x00c", "control character"),
        ("Bearer a=b\r\nSet-Cookie: x=1", "control character"),
        ('Bearer a=x"y', "in an unquoted value"),
        ("Bearer @", "unexpected"),
        ("Bearer " + ", ".join(f"p{i}=v" for i in range(70)), "more than"),
        ("Bearer realm=" + "x" * (MAX_HEADER + 1), "longer than"),
    ],
)
def test_malformed_and_hostile_headers_say_what_is_wrong(header: str, reason: str) -> None:
    with pytest.raises(ChallengeSyntaxError) as info:
        parse_challenges(header)
    assert reason in info.value.reason


@given(st.text(max_size=300))
def test_any_text_parses_or_raises_the_typed_error(text: str) -> None:
    try:
        challenges = parse_challenges(text)
    except ChallengeSyntaxError:
        return
    for found in challenges:
        assert found.scheme


# -- the challenge of an organisation ---------------------------------------------------------


@pytest.fixture
def canned() -> Canned:
    with canned_server() as server:
        yield server  # type: ignore[misc]


def test_challenge_finds_the_authority_tenant_and_resource(canned: Canned) -> None:
    canned.headers = [("WWW-Authenticate", 'Basic realm="x"'), ("WWW-Authenticate", DATAVERSE)]
    hint = challenge(canned.url)
    assert hint == AuthorityHint(
        f"https://login.microsoftonline.com/{TENANT}", TENANT, "https://contoso.crm.dynamics.com/"
    )
    assert not hint.is_adfs
    [(method, path, headers)] = canned.seen
    assert (method, path) == ("GET", "/api/data/v9.2/")
    assert "authorization" not in {k.lower() for k in headers}  # asked without credentials


def test_adfs_challenge_quoted_and_v2_endpoint(canned: Canned) -> None:
    canned.headers = [
        (
            "WWW-Authenticate",
            'Bearer authorization_uri="https://ADFS.contoso.com/adfs/oauth2/authorize", '
            'resource_id="https://crm.contoso.com/"',
        )
    ]
    hint = challenge(canned.url)
    assert hint.authority == "https://adfs.contoso.com/adfs" and hint.is_adfs
    canned.headers = [
        (
            "WWW-Authenticate",
            "Bearer authorization_uri=https://login.example.net/common/oauth2/v2.0/authorize",
        )
    ]
    hint = challenge(canned.url)
    assert hint.authority == "https://login.example.net/common"
    assert hint.resource == canned.url + "/"  # no resource_id: the organisation itself


@pytest.mark.parametrize(
    ("status", "headers", "reason", "schemes"),
    [
        (200, [], "did not ask for a sign-in", ()),
        (401, [], "without WWW-Authenticate", ()),
        (
            401,
            [("WWW-Authenticate", "NTLM"), ("WWW-Authenticate", "Negotiate")],
            "no Bearer",
            ("NTLM", "Negotiate"),
        ),
        (401, [("WWW-Authenticate", 'Bearer realm="x"')], "no Bearer", ("Bearer",)),
        (401, [("WWW-Authenticate", 'Bearer authorization_uri="https://x/t')], "malformed", ()),
        (
            401,
            [
                (
                    "WWW-Authenticate",
                    "Bearer authorization_uri=http://login.example/t/oauth2/authorize",
                )
            ],
            "not an https:// URL",
            ("Bearer",),
        ),
        (
            401,
            [
                (
                    "WWW-Authenticate",
                    "Bearer authorization_uri=https://evil@login.example/t/oauth2/authorize",
                )
            ],
            "not an https:// URL",
            ("Bearer",),
        ),
        (
            401,
            [("WWW-Authenticate", "Bearer authorization_uri=https://login.example/t/token")],
            "does not end in /oauth2/authorize",
            ("Bearer",),
        ),
        (
            401,
            [
                (
                    "WWW-Authenticate",
                    "Bearer authorization_uri=https://login.example/oauth2/authorize",
                )
            ],
            "names no tenant",
            ("Bearer",),
        ),
        (
            401,
            [
                (
                    "WWW-Authenticate",
                    "Bearer authorization_uri=https://l.example/t/oauth2/authorize,"
                    " resource_id=javascript:x",
                )
            ],
            "resource_id",
            ("Bearer",),
        ),
    ],
)
def test_unusable_challenges_are_typed_errors(
    canned: Canned,
    status: int,
    headers: list[tuple[str, str]],
    reason: str,
    schemes: tuple[str, ...],
) -> None:
    canned.status, canned.headers = status, headers
    with pytest.raises(AuthChallengeError) as info:
        challenge(canned.url)
    assert reason in info.value.reason
    assert info.value.schemes == schemes


def test_unreachable_org_is_unavailable(canned: Canned) -> None:
    url = canned.url
    canned_port_closed = url.rsplit(":", 1)[0] + ":1"
    with pytest.raises(CrmUnavailable):
        challenge(canned_port_closed)


# -- Global Discovery -------------------------------------------------------------------------

INSTANCES = {
    "value": [
        {
            "Url": "https://contoso.crm4.dynamics.com/",
            "ApiUrl": "https://contoso.api.crm4.dynamics.com",
            "FriendlyName": "Contoso",
            "UniqueName": "org1a2b3c",
            "Version": "9.2.26011.123",
            "State": 0,
            "Id": "e2d6ee6e-0000-0000-0000-000000000000",
        },
        {
            "Url": "https://contoso-test.crm4.dynamics.com",
            "ApiUrl": "https://contoso-test.api.crm4.dynamics.com",
            "FriendlyName": "Contoso (test)",
            "UniqueName": "org9z8y",
            "Version": "9.2.26011.123",
            "State": 1,
        },
    ]
}


def test_environments_are_typed(canned: Canned) -> None:
    canned.status, canned.body = 200, json.dumps(INSTANCES).encode()
    found = environments(lambda: "token-123", canned.url)
    assert [e.url for e in found] == [
        "https://contoso.crm4.dynamics.com",
        "https://contoso-test.crm4.dynamics.com",
    ]
    assert found[0].friendly_name == "Contoso" and found[0].unique_name == "org1a2b3c"
    assert found[0].enabled and not found[1].enabled
    [(_, path, headers)] = canned.seen
    assert path == "/api/discovery/v2.0/Instances"
    assert headers["Authorization"] == "Bearer token-123"


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        b"[1, 2]",
        b'{"value": {"Url": "x"}}',
        b'{"value": ["x"]}',
        b'{"value": [{"Url": "https://ok.example", "FriendlyName": 7}]}',
        b'{"value": [{"Url": "http://plain.example"}]}',
        b'{"value": [{"Url": "https://ok.example", "State": "on"}]}',
        b"\xff\xfe",
    ],
)
def test_malformed_instance_lists_are_typed_errors(canned: Canned, body: bytes) -> None:
    canned.status, canned.body = 200, body
    with pytest.raises(DiscoveryError):
        environments(lambda: "t", canned.url)


def test_discovery_refusing_the_token_is_an_auth_error(canned: Canned) -> None:
    canned.status = 401
    with pytest.raises(CrmAuthError):
        environments(lambda: "t", canned.url)


# -- what the user typed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alex.morgan@contoso.com", UserAddress("alex.morgan@contoso.com")),
        (" https://Contoso.crm.dynamics.com/ ", OrgAddress("https://contoso.crm.dynamics.com")),
        ("contoso.crm.dynamics.com", OrgAddress("https://contoso.crm.dynamics.com")),
        ("https://crm.contoso.local/Contoso/", OrgAddress("https://crm.contoso.local/Contoso")),
    ],
)
def test_input_is_an_org_or_a_user(text: str, expected: object) -> None:
    assert parse_sign_in_input(text) == expected


@pytest.mark.parametrize("text", ["contoso", "", "ftp://x.example", "https://u:p@x.example", "a@b"])
def test_other_input_is_refused(text: str) -> None:
    with pytest.raises(SignInInputError):
        parse_sign_in_input(text)


def test_discover_from_an_org_url_needs_no_sign_in(canned: Canned) -> None:
    canned.headers = [("WWW-Authenticate", DATAVERSE)]

    def never(*args: str) -> object:
        raise AssertionError("an org URL must not sign in for discovery")

    found = discover(canned.url, discovery_token=never)  # type: ignore[arg-type]
    assert found.authority == f"https://login.microsoftonline.com/{TENANT}"
    assert [e.url for e in found.environments] == [canned.url]


def test_discover_from_an_address_lists_environments(canned: Canned) -> None:
    canned.status, canned.body = 200, json.dumps(INSTANCES).encode()
    asked: list[tuple[str, str, str]] = []

    def token_for(authority: str, scope: str, hint: str) -> object:
        asked.append((authority, scope, hint))
        return lambda: "disco-token"

    found = discover(
        "alex@contoso.com",
        discovery_url=canned.url,
        discovery_token=token_for,  # type: ignore[arg-type]
    )
    assert asked == [
        (
            "https://login.microsoftonline.com/organizations",
            canned.url + "/user_impersonation",
            "alex@contoso.com",
        )
    ]
    assert found.login_hint == "alex@contoso.com" and len(found.environments) == 2
