"""Finding where to sign in and which CRM to use, from what a user types.

- An organisation's URL: :func:`challenge` asks its Web API without credentials; Dataverse
  (and an AD FS-backed on-premises CRM) answers ``401`` with ``WWW-Authenticate: Bearer
  authorization_uri=<authority>/oauth2/authorize, resource_id=<org>/`` — the authority (with
  the tenant) and the resource to ask a token for. An on-premises CRM with Windows sign-in
  offers ``Negotiate``/``NTLM`` instead: :class:`AuthChallengeError` lists the schemes.
- An e-mail address: sign in at the ``organizations`` authority, then :func:`environments`
  lists the instances the user can reach from the Global Discovery Service.

:func:`parse_sign_in_input` decides which of the two a user typed; :func:`discover` runs the
whole thing, given a way to get a token for the discovery service.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from core.crm.challenges import ChallengeSyntaxError, parse_challenges
from core.crm.client import API_PATH, _untrusted
from core.crm.errors import (
    AuthChallengeError,
    CrmCertificateError,
    CrmUnavailable,
    DiscoveryError,
)
from core.crm.wire import error_for

DEFAULT_DISCOVERY_URL = "https://globaldisco.crm.dynamics.com"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com/organizations"
INSTANCES_PATH = "/api/discovery/v2.0/Instances"
_AUTHORIZE_SUFFIXES = ("/oauth2/v2.0/authorize", "/oauth2/authorize")
_EMAIL = re.compile(r"^[^@\s/:]+@[^@\s/:]+\.[^@\s/:]+$")

Verify = ssl.SSLContext | str | bool
TokenProvider = Callable[[], str]


@dataclass(frozen=True, slots=True)
class AuthorityHint:
    """Where an organisation's users sign in: ``authority`` (for MSAL, e.g.
    ``https://login.microsoftonline.com/<tenant>`` or ``https://adfs.contoso.com/adfs``), its
    ``tenant`` (the first path segment: a GUID, a domain, or ``adfs``) and the ``resource`` to
    ask a token for (``https://org.crm.dynamics.com/``)."""

    authority: str
    tenant: str
    resource: str

    @property
    def is_adfs(self) -> bool:
        return self.tenant.lower() == "adfs"


@dataclass(frozen=True, slots=True)
class Environment:
    """One instance from the Global Discovery Service. ``state`` 0 is enabled."""

    url: str
    api_url: str
    friendly_name: str
    unique_name: str
    version: str
    state: int

    @property
    def enabled(self) -> bool:
        return self.state == 0


@dataclass(frozen=True, slots=True)
class OrgAddress:
    """The user typed an organisation's URL (normalised: lower-case scheme and host, no
    query, no trailing slash)."""

    url: str


@dataclass(frozen=True, slots=True)
class UserAddress:
    """The user typed an e-mail address: find the organisation through discovery."""

    email: str


@dataclass(frozen=True, slots=True)
class Discovered:
    """What :func:`discover` found: the ``authority`` to sign in at, the ``login_hint`` (the
    typed address, if any) and the ``environments`` to pick from (one, for an org URL)."""

    authority: str
    login_hint: str | None
    environments: tuple[Environment, ...]
    hint: AuthorityHint | None = None


class SignInInputError(ValueError):
    """What the user typed is neither an ``https://`` URL nor an e-mail address."""

    def __init__(self, text: str) -> None:
        super().__init__(f"{text!r} is neither an https:// address nor an e-mail address")
        self.text = text


def parse_sign_in_input(text: str) -> OrgAddress | UserAddress:
    """An organisation URL (``https://org.crm.dynamics.com``, or a bare host name with a
    dot) or an e-mail address; SignInInputError otherwise."""
    value = text.strip()
    if _EMAIL.match(value):
        return UserAddress(value)
    candidate = value if "://" in value else f"https://{value}"
    parts = urlsplit(candidate)
    if parts.scheme.lower() not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
        raise SignInInputError(text)
    if "://" not in value and "." not in parts.hostname:
        raise SignInInputError(text)
    # An on-premises organisation may sit under a path (https://crm.contoso.com/Contoso).
    path = parts.path.rstrip("/")
    return OrgAddress(urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", "")))


def challenge(org_url: str, verify: Verify = True, *, timeout: float = 15.0) -> AuthorityHint:
    """Ask ``{org}/api/data/v9.2/`` without credentials and read the Bearer challenge.

    Raises AuthChallengeError (no 401, no Bearer challenge, a malformed or unusable one;
    ``schemes`` lists what the server offered), CrmCertificateError, CrmUnavailable."""
    url = org_url.rstrip("/") + API_PATH
    response = _get(url, verify, timeout=timeout)
    if response.status_code != 401:
        raise AuthChallengeError(
            "the server did not ask for a sign-in (expected HTTP 401)",
            url=url,
            status=response.status_code,
        )
    headers = response.headers.get_list("WWW-Authenticate")
    if not headers:
        raise AuthChallengeError("HTTP 401 without WWW-Authenticate", url=url, status=401)
    try:
        challenges = parse_challenges(*headers)
    except ChallengeSyntaxError as exc:
        raise AuthChallengeError(
            f"malformed WWW-Authenticate: {exc}", url=url, status=401
        ) from None
    schemes = tuple(c.scheme for c in challenges)
    bearer = [c for c in challenges if c.is_scheme("Bearer") and "authorization_uri" in c.params]
    if not bearer:
        raise AuthChallengeError(
            "no Bearer challenge with authorization_uri (offered: "
            + (", ".join(schemes) or "nothing")
            + ")",
            schemes=schemes,
            url=url,
            status=401,
        )
    params = bearer[0].params
    authority, tenant = _authority(params["authorization_uri"], url, schemes)
    resource = params.get("resource_id")
    if resource is not None and not _is_https_url(resource):
        raise AuthChallengeError(
            f"resource_id {resource!r} is not an https:// URL", schemes=schemes, url=url
        )
    return AuthorityHint(authority, tenant, resource or org_url.rstrip("/") + "/")


def _authority(uri: str, url: str, schemes: tuple[str, ...]) -> tuple[str, str]:
    if not _is_https_url(uri):
        raise AuthChallengeError(
            f"authorization_uri {uri!r} is not an https:// URL", schemes=schemes, url=url
        )
    parts = urlsplit(uri)
    path = parts.path.rstrip("/")
    for suffix in _AUTHORIZE_SUFFIXES:
        if path.lower().endswith(suffix):
            path = path[: -len(suffix)]
            break
    else:
        raise AuthChallengeError(
            f"authorization_uri {uri!r} does not end in /oauth2/authorize",
            schemes=schemes,
            url=url,
        )
    tenant = path.strip("/").split("/", 1)[0]
    if not tenant:
        raise AuthChallengeError(
            f"authorization_uri {uri!r} names no tenant", schemes=schemes, url=url
        )
    return urlunsplit(("https", parts.netloc.lower(), path, "", "")), tenant


def _is_https_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return False
    del port
    return (
        parts.scheme.lower() == "https"
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and not parts.query
        and not parts.fragment
    )


def environments(
    token_provider: TokenProvider,
    discovery_url: str = DEFAULT_DISCOVERY_URL,
    verify: Verify = True,
    *,
    timeout: float = 30.0,
) -> list[Environment]:
    """The instances the signed-in user can reach (``GET {discovery}/api/discovery/v2.0/
    Instances`` with a token for ``{discovery}/user_impersonation``).

    Raises DiscoveryError (not a list of instances), CrmAuthError, CrmUnavailable…"""
    url = discovery_url.rstrip("/") + INSTANCES_PATH
    response = _get(
        url,
        verify,
        timeout=timeout,
        headers={"Authorization": f"Bearer {token_provider()}", "Accept": "application/json"},
    )
    if response.status_code >= 400:
        raise error_for(response, "GET", url)
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DiscoveryError(f"not JSON: {exc}", url=url, status=response.status_code) from None
    values = body.get("value") if isinstance(body, dict) else None
    if not isinstance(values, list):
        raise DiscoveryError("no 'value' list of instances", url=url)
    return [_environment(item, url) for item in values]


def _environment(item: Any, url: str) -> Environment:
    if not isinstance(item, Mapping):
        raise DiscoveryError("an instance is not a JSON object", url=url)
    strings = {}
    for key in ("Url", "ApiUrl", "FriendlyName", "UniqueName", "Version"):
        value = item.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise DiscoveryError(f"instance field {key} is not a string", url=url)
        strings[key] = value
    if not _is_https_url(strings["Url"]):
        raise DiscoveryError(f"instance Url {strings['Url']!r} is not an https:// URL", url=url)
    state = item.get("State", 0)
    if not isinstance(state, int) or isinstance(state, bool):
        raise DiscoveryError("instance field State is not a number", url=url)
    return Environment(
        url=strings["Url"].rstrip("/"),
        api_url=strings["ApiUrl"].rstrip("/") or strings["Url"].rstrip("/"),
        friendly_name=strings["FriendlyName"],
        unique_name=strings["UniqueName"],
        version=strings["Version"],
        state=state,
    )


def discover(
    text: str,
    *,
    verify: Verify = True,
    authority: str = DEFAULT_AUTHORITY,
    discovery_url: str = DEFAULT_DISCOVERY_URL,
    discovery_token: Callable[[str, str, str], TokenProvider],
) -> Discovered:
    """Where to sign in for what the user typed. An org URL: its challenge (no sign-in yet).
    An e-mail address: ``discovery_token(authority, scope, login_hint)`` signs in at
    ``authority`` (``organizations``) for the discovery service's scope and returns a token
    provider; the environments come from the Global Discovery Service."""
    target = parse_sign_in_input(text)
    if isinstance(target, OrgAddress):
        hint = challenge(target.url, verify)
        host = urlsplit(target.url).hostname or target.url
        only = Environment(target.url, target.url, host, host, "", 0)
        return Discovered(hint.authority, None, (only,), hint)
    scope = discovery_url.rstrip("/") + "/user_impersonation"
    provider = discovery_token(authority, scope, target.email)
    found = environments(provider, discovery_url, verify)
    return Discovered(authority, target.email, tuple(found))


def _get(
    url: str, verify: Verify, *, timeout: float, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    context = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
    try:
        with httpx.Client(verify=context, timeout=timeout, follow_redirects=False) as http:
            return http.get(url, headers=dict(headers or {}))
    except httpx.TransportError as exc:
        cls = CrmCertificateError if _untrusted(exc) else CrmUnavailable
        raise cls(f"{type(exc).__name__}: {exc}", method="GET", url=url) from None


__all__ = [
    "DEFAULT_AUTHORITY",
    "DEFAULT_DISCOVERY_URL",
    "AuthorityHint",
    "Discovered",
    "Environment",
    "OrgAddress",
    "SignInInputError",
    "UserAddress",
    "challenge",
    "discover",
    "environments",
    "parse_sign_in_input",
]
