"""Make every absolute URL the emulator writes carry the scheme and host the client used.

The emulator builds ``@odata.nextLink``, ``@odata.deltaLink``, ``@odata.context``,
``OData-EntityId`` and ``Location`` from Starlette's ``request.base_url`` (scope scheme, Host
header, ``root_path``). Behind a reverse proxy those are the proxy's view, not the client's.
:class:`ForwardedMiddleware` (pure ASGI, outermost) fixes the scope:

- ``public_url`` (e.g. ``https://crm.example/crm``): a fixed public root; scheme, host and
  path prefix are taken from it for every request (a stripped prefix is put back on the path,
  as uvicorn's ``--root-path`` does).
- ``trusted`` peers (IPs, networks or ``"*"``, like uvicorn's ``forwarded_allow_ips``):
  ``Forwarded: proto=…;host=…`` (RFC 7239) or else ``X-Forwarded-Proto`` / ``X-Forwarded-Host``
  are honoured from these peers only (last element: the one the nearest proxy added) and
  ignored from anyone else.

Host names are validated before anything is written with them: a malformed ``Host``,
forwarded host or proto is answered with 400 and never echoed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

_PORT = r"(?::(?P<port>[0-9]{1,5}))?"
_REG_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?"
_HOST_RE = re.compile(rf"(?:(?P<name>{_REG_NAME})|\[(?P<ipv6>[0-9A-Fa-f:.]+)\]){_PORT}", re.ASCII)
_PREFIX_RE = re.compile(r"(?:/[A-Za-z0-9._~-]+)*/?", re.ASCII)
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", re.ASCII)
MAX_HOST_LENGTH = 255
SCHEMES = ("http", "https")


class ProxySettingError(ValueError):
    """A reverse-proxy setting is unusable: ``setting`` names it, ``value`` is what was given,
    ``reason`` says why."""

    def __init__(self, setting: str, value: str, reason: str) -> None:
        super().__init__(f"Setting {setting!r} has value {value!r}. {reason}")
        self.setting = setting
        self.value = value
        self.reason = reason


class BadForwardedValue(Exception):
    """A request's ``header`` holds an unusable value (answered with 400, not echoed)."""

    def __init__(self, header: str) -> None:
        super().__init__(f"invalid {header} header")
        self.header = header


def valid_host(value: str) -> bool:
    """True for ``name[:port]`` / ``IPv4[:port]`` / ``[IPv6][:port]`` with a port in
    1–65535, no spaces, slashes, user info or control characters."""
    if not value or len(value) > MAX_HOST_LENGTH:
        return False
    match = _HOST_RE.fullmatch(value)
    if match is None:
        return False
    if match["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            return False
    port = match["port"]
    return port is None or 1 <= int(port) <= 65535


@dataclass(frozen=True)
class PublicUrl:
    """A validated public root: ``scheme``, ``host`` (``name[:port]``) and ``prefix`` (the
    path, without a trailing slash; ``""`` at the root)."""

    scheme: str
    host: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> PublicUrl:
        def bad(reason: str) -> ProxySettingError:
            return ProxySettingError("public_url", url, reason)

        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise bad("Expected an http:// or https:// URL.")
        if parts.username is not None or parts.password is not None:
            raise bad("User info is not allowed.")
        if parts.query or parts.fragment or "?" in url or "#" in url:
            raise bad("A query or fragment is not allowed.")
        if not valid_host(parts.netloc):
            raise bad("Expected a host name or IP address and an optional port (1-65535).")
        if not _PREFIX_RE.fullmatch(parts.path):
            raise bad("The path may only hold letters, digits, '.', '_', '~', '-' and '/'.")
        return cls(parts.scheme, parts.netloc, parts.path.rstrip("/"))


class TrustedPeers:
    """Who may set forwarded headers: IP addresses and networks, or everyone (``"*"``)."""

    def __init__(self, spec: str | Sequence[str] | None) -> None:
        items = spec.split(",") if isinstance(spec, str) else list(spec or ())
        names = [item.strip() for item in items if item.strip()]
        self.everyone = "*" in names
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for name in names:
            if name == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(name, strict=False))
            except ValueError as exc:
                raise ProxySettingError(
                    "forwarded_allow_ips", name, "Expected an IP address, a network or '*'."
                ) from exc

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks)

    def __contains__(self, peer: object) -> bool:
        if self.everyone:
            return True
        if not isinstance(peer, str):
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def check_proxy_settings(public_url: str | None, trusted: str | Sequence[str] | None) -> None:
    """Raise :class:`ProxySettingError` if :class:`ForwardedMiddleware` would refuse these."""
    if public_url:
        PublicUrl.parse(public_url)
    TrustedPeers(trusted)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted or escaped:
        raise BadForwardedValue("Forwarded")
    parts.append("".join(current))
    return parts


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded``: one dict per element (lower-case keys, unquoted values)."""
    elements: list[dict[str, str]] = []
    for element in _split_outside_quotes(value, ","):
        pairs: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            pair = pair.strip(" \t")
            if not pair:
                continue
            key, eq, raw = pair.partition("=")
            if not eq or not _TOKEN_RE.fullmatch(key):
                raise BadForwardedValue("Forwarded")
            if raw.startswith('"'):
                if len(raw) < 2 or not raw.endswith('"'):
                    raise BadForwardedValue("Forwarded")
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            elif not _TOKEN_RE.fullmatch(raw):
                raise BadForwardedValue("Forwarded")
            pairs[key.lower()] = raw
        elements.append(pairs)
    return elements


def _header_values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in headers if k == name]


def _last_listed(values: list[str]) -> str | None:
    """The last comma-separated item over all occurrences of a header."""
    if not values:
        return None
    return ",".join(values).split(",")[-1].strip()


class ForwardedMiddleware:
    """See the module docstring; ``public_url`` wins over forwarded headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        public_url: str | None = None,
        trusted: str | Sequence[str] | None = None,
    ) -> None:
        self.app = app
        self.public = PublicUrl.parse(public_url) if public_url else None
        self.trusted = TrustedPeers(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            scope = self.rewrite(scope)
        except BadForwardedValue as exc:
            await _bad_request(send, f"Bad Request: invalid {exc.header} header.\n")
            return
        await self.app(scope, receive, send)

    def rewrite(self, scope: Scope) -> Scope:
        """The scope as the client addressed it; raises :class:`BadForwardedValue`."""
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        hosts = _header_values(headers, b"host")
        if len(hosts) > 1 or (hosts and not valid_host(hosts[0])):
            raise BadForwardedValue("Host")
        scheme: str | None = None
        host: str | None = None
        if self.public is not None:
            scheme, host = self.public.scheme, self.public.host
        elif self.trusted and (scope.get("client") or (None,))[0] in self.trusted:
            scheme, host = _forwarded(headers)
        if scheme is None and host is None and self.public is None:
            return scope
        scope = dict(scope)
        if scheme is not None:
            scope["scheme"] = scheme
        if host is not None:
            headers = [(k, v) for k, v in headers if k != b"host"]
            headers.append((b"host", host.encode("ascii")))
            scope["headers"] = headers
        if self.public is not None and self.public.prefix:
            prefix = self.public.prefix
            path: str = scope["path"]
            if path != prefix and not path.startswith(prefix + "/"):
                scope["path"] = prefix + path
                raw = scope.get("raw_path")
                if raw is not None:
                    scope["raw_path"] = prefix.encode("ascii") + raw
            scope["root_path"] = prefix
        return scope


def _forwarded(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """(scheme, host) a trusted proxy reports; ``None`` where it says nothing."""
    proto: str | None = None
    host: str | None = None
    standard = _header_values(headers, b"forwarded")
    if standard:
        nearest = parse_forwarded(",".join(standard))[-1]
        proto, host = nearest.get("proto"), nearest.get("host")
        if proto is not None and proto.lower() not in SCHEMES:
            raise BadForwardedValue("Forwarded")
        if host is not None and not valid_host(host):
            raise BadForwardedValue("Forwarded")
    if proto is None:
        proto = _last_listed(_header_values(headers, b"x-forwarded-proto"))
        if proto is not None and proto.lower() not in SCHEMES:
            raise BadForwardedValue("X-Forwarded-Proto")
    if host is None:
        host = _last_listed(_header_values(headers, b"x-forwarded-host"))
        if host is not None and not valid_host(host):
            raise BadForwardedValue("X-Forwarded-Host")
    return (proto.lower() if proto is not None else None), host


async def _bad_request(send: Send, message: str) -> None:
    body = message.encode("ascii")
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
