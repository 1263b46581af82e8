"""Authentication for the Web API client, as ``httpx.Auth`` flows.

``BasicAuth`` serves the emulator (and on-premises IFD-less test setups); ``BearerAuth`` takes
a token *provider* (``core.crm.signin.MicrosoftSignIn.token``: MSAL's silent renewal) for
Dynamics 365 online and AD FS; ``NegotiateAuth`` is Windows sign-in (NTLM / Negotiate) for
Dynamics 365 on-premises. None ever shows its secret in ``repr`` or ``describe()``.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from collections.abc import Callable, Generator

import httpx
import spnego
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

from core.crm.errors import CrmAuthError


class CrmAuth(httpx.Auth):
    """Base of the client's auth flows; ``describe()`` is safe to log."""

    def describe(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


class BasicAuth(CrmAuth):
    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self._inner = httpx.BasicAuth(user, password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield from self._inner.auth_flow(request)

    def describe(self) -> str:
        return f"BasicAuth(user={self.user!r})"


class BearerAuth(CrmAuth):
    """``token_provider()`` returns a current access token; it is called for every request
    (providers cache). After a 401 the client calls ``on_unauthorized`` (e.g. drop the
    cached token) and retries once with a fresh token."""

    def __init__(
        self,
        token_provider: Callable[[], str],
        *,
        on_unauthorized: Callable[[], None] | None = None,
        label: str = "",
    ) -> None:
        self.token_provider = token_provider
        self.on_unauthorized = on_unauthorized
        self.label = label

    def describe(self) -> str:
        return f"BearerAuth({self.label})" if self.label else "BearerAuth"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token_provider()}"
        response = yield request
        if response.status_code == 401 and self.on_unauthorized is not None:
            self.on_unauthorized()
            request.headers["Authorization"] = f"Bearer {self.token_provider()}"
            yield request


#: The handshakes ``NegotiateAuth`` speaks, in the order it prefers them when offered both.
NEGOTIATE_SCHEMES = ("Negotiate", "NTLM")
#: Legs of a handshake before giving up (NTLM needs 2, SPNEGO over NTLM 2-3).
MAX_LEGS = 4


class NegotiateAuth(CrmAuth):
    """Windows sign-in (IIS "Windows Authentication") with pyspnego: NTLM, or Negotiate
    (SPNEGO; Kerberos when the machine has it, else NTLM inside SPNEGO).

    The handshake authenticates a *connection*: the request goes out without credentials;
    a ``401`` offering ``Negotiate``/``NTLM`` starts a context whose tokens travel in
    ``Authorization`` on the same keep-alive connection (``401`` + challenge, then the
    authenticate message) until the server answers. IIS then lets later requests on that
    connection through without a header; when a request lands on a new connection the
    handshake simply runs again. Over HTTPS the context carries the channel binding
    (``tls-server-end-point`` of the server's certificate, RFC 5929), which Extended
    Protection requires. ``protocol``: "auto" (Negotiate if offered, else NTLM),
    "negotiate" or "ntlm". ``user`` is ``DOMAIN\\user``, ``user@domain`` or a bare name
    with ``domain``. The password is handed to pyspnego only; nothing here logs.
    """

    requires_response_body = True  # read the 401 so its connection goes back to the pool

    def __init__(
        self, user: str, password: str, domain: str | None = None, *, protocol: str = "auto"
    ) -> None:
        if protocol not in ("auto", "negotiate", "ntlm"):
            raise ValueError(f"protocol must be auto, negotiate or ntlm, not {protocol!r}")
        self.user = f"{domain}\\{user}" if domain and "\\" not in user and "@" not in user else user
        self.protocol = protocol
        self._password = password

    def describe(self) -> str:
        return f"NegotiateAuth(user={self.user!r}, protocol={self.protocol})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        if response.status_code != 401:
            return
        scheme = self._scheme(offered_schemes(response))
        if scheme is None:
            return  # not a Windows sign-in: the client reports the 401 as it is
        try:
            context = spnego.client(
                self.user,
                self._password,
                hostname=request.url.host or "unspecified",
                service="HTTP",
                protocol=scheme.lower(),
                channel_bindings=_channel_bindings(response),
            )
            token = context.step()
            for _ in range(MAX_LEGS):
                if token is None:
                    return
                request.headers["Authorization"] = f"{scheme} {base64.b64encode(token).decode()}"
                response = yield request
                answer = _server_token(response, scheme)
                if response.status_code != 401:
                    if answer is not None and not context.complete:
                        context.step(answer)  # the server's last leg (mutual authentication)
                    return
                if answer is None or context.complete:
                    return  # refused: the 401 goes to the caller
                token = context.step(answer)
        except SpnegoError as exc:
            # pyspnego's messages name the failing step, never the password.
            raise CrmAuthError(
                f"{scheme} sign-in failed: {type(exc).__name__}: {exc}",
                method=request.method,
                url=str(request.url.copy_with(query=None)),
            ) from None

    def _scheme(self, offered: tuple[str, ...]) -> str | None:
        wanted = {"auto": NEGOTIATE_SCHEMES, "negotiate": ("Negotiate",), "ntlm": ("NTLM",)}
        lowered = {s.lower() for s in offered}
        for scheme in wanted[self.protocol]:
            if scheme.lower() in lowered:
                return scheme
        return None


def offered_schemes(response: httpx.Response) -> tuple[str, ...]:
    """The schemes of a response's ``WWW-Authenticate`` headers (first word of each
    challenge; a comma-separated header counts each challenge)."""
    found: list[str] = []
    for header in response.headers.get_list("WWW-Authenticate"):
        for part in header.split(","):
            word = part.strip().split(" ", 1)[0]
            if word and "=" not in word:
                found.append(word)
    return tuple(found)


def _server_token(response: httpx.Response, scheme: str) -> bytes | None:
    for header in response.headers.get_list("WWW-Authenticate"):
        kind, _, value = header.strip().partition(" ")
        if kind.lower() == scheme.lower() and value.strip():
            try:
                return base64.b64decode(value.strip(), validate=True)
            except ValueError:
                return None
    return None


def _channel_bindings(response: httpx.Response) -> GssChannelBindings | None:
    """``tls-server-end-point`` of the connection's server certificate (None over HTTP)."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    # httpcore's sync stream gives the ssl.SSLSocket as "socket" (its "ssl_object" is the
    # private _ssl object); other transports give an ssl.SSLObject as "ssl_object".
    tls = stream.get_extra_info("socket")
    if not isinstance(tls, ssl.SSLSocket):
        tls = stream.get_extra_info("ssl_object")
    if not isinstance(tls, ssl.SSLSocket | ssl.SSLObject):
        return None
    cert = tls.getpeercert(binary_form=True)
    if not cert:
        return None
    return GssChannelBindings(application_data=b"tls-server-end-point:" + _cert_hash(cert))


def _cert_hash(cert_der: bytes) -> bytes:
    """RFC 5929: the certificate's signature hash, SHA-256 for MD5/SHA-1 (or none known)."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        algorithm = x509.load_der_x509_certificate(cert_der).signature_hash_algorithm
    except (ValueError, UnsupportedAlgorithm):
        algorithm = None
    name = algorithm.name if algorithm is not None else "sha256"
    return hashlib.new("sha256" if name in ("md5", "sha1") else name, cert_der).digest()


__all__ = ["BasicAuth", "BearerAuth", "CrmAuth", "NegotiateAuth", "offered_schemes"]
