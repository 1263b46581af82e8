"""HTTP authentication for the fake Exchange server: Basic, Bearer and NTLM, the way IIS does it.

NTLM is verified by a real acceptor, pyspnego's ``spnego.server(protocol="ntlm")``, not by
this module: the acceptor computes the NTLMv2 response from the account's password and
compares. pyspnego finds passwords only in the file named by the environment variable
``NTLM_USER_FILE`` (lines ``DOMAIN:USER:PASSWORD``, or ``:user@domain:PASSWORD`` for a UPN); that
variable is process-wide, so one :class:`NtlmAccounts` file serves every fake server of a test
session (the fixture sets and restores the variable).

NTLM authenticates a *connection*, not a request: ``401`` + ``WWW-Authenticate: NTLM`` → the
client sends Negotiate → ``401`` with the Challenge on the same keep-alive connection → the
client sends Authenticate → verified. As IIS does by default, later requests on that connection
need no ``Authorization`` header. So the state lives in a :class:`ConnectionAuth` per connection
(``ThreadingHTTPServer`` keeps one handler instance per connection). Over TLS the acceptor also
checks the client's channel binding (``tls-server-end-point``, Extended Protection).

Bearer: tokens registered with the server (:meth:`FakeEwsServer.add_token`, any string) and,
in OAuth mode (a :class:`BearerVerifier`), Entra-style access tokens checked as Exchange Online
checks them: RS256, signed by a key in the authority's JWKS (found through its OpenID Connect
discovery document, over HTTPS), from its issuer, not expired, for the Exchange resource
(``aud`` ``https://outlook.office365.com``, or an on-premises server's URL), with
``EWS.AccessAsUser.All`` in ``scp``; the mailbox is the token's ``preferred_username``/``upn``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import spnego
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

#: Schemes a fake server can offer, in the order ``WWW-Authenticate`` lists them.
SCHEMES = ("NTLM", "Basic", "Bearer")
#: IIS's words on a refused request (its 401.1 page, shortened).
DENIED = b"401 - Unauthorized: Access is denied due to invalid credentials."
#: Exchange Online's resource: its URL and its application id, as ``aud`` may name it.
EXCHANGE_ONLINE = ("https://outlook.office365.com", "00000002-0000-0ff1-ce00-000000000000")
EWS_PERMISSION = "EWS.AccessAsUser.All"
CLOCK_SKEW = 60


class NtlmAccounts:
    """The account file pyspnego's NTLM acceptor reads (``NTLM_USER_FILE``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.touch()

    def add(self, principal: str, password: str) -> None:
        """``DOMAIN\\user`` or ``user@domain`` (UPN, empty domain) may sign in with ``password``."""
        if ":" in principal + password or "\n" in principal + password:
            raise ValueError("the NTLM account file cannot hold ':' or newlines")
        domain, sep, user = principal.rpartition("\\")
        with self._lock, self.path.open("a") as f:
            f.write(f"{domain if sep else ''}:{user}:{password}\n")

    def check_environment(self) -> None:
        """pyspnego reads the variable at every sign-in: fail loudly if a test changed it."""
        if os.environ.get("NTLM_USER_FILE") != str(self.path):
            raise RuntimeError(f"NTLM_USER_FILE must name {self.path} while the fake runs")


@dataclass
class Verdict:
    """The outcome of one request's authentication: a mailbox address, or a 401 to send."""

    user: str | None
    challenge: list[str] = field(default_factory=list)  # WWW-Authenticate values
    body: bytes = DENIED
    note: str = ""  # for the server's request log: "offer", "NTLM challenge", "refused: …"


@dataclass
class AuthLog:
    """What the server decided, for tests: successful sign-ins and refusals with the reason."""

    signins: list[tuple[str, str]] = field(default_factory=list)  # (scheme, principal)
    refusals: list[str] = field(default_factory=list)


class BearerVerifier:
    """Checks access tokens from one authority (``https://host/<tenant>``) for EWS; its
    discovery document and keys are fetched once, then again when a token names an unknown
    key. ``audiences``: the Exchange resource (on-premises: the server's URL)."""

    def __init__(
        self,
        authority: str,
        ca_file: str | Path | None,
        log: AuthLog,
        audiences: Sequence[str] = EXCHANGE_ONLINE,
    ) -> None:
        self.authority = authority.rstrip("/")
        self.audiences = [a for aud in audiences for a in (aud, aud.rstrip("/") + "/")]
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        )
        self._log = log
        self._lock = threading.Lock()
        self._issuer = ""
        self._keys: dict[str, Any] = {}

    def _key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys:
                with httpx.Client(verify=self._verify, timeout=30) as client:
                    config = client.get(f"{self.authority}/v2.0/.well-known/openid-configuration")
                    config.raise_for_status()
                    keys = client.get(config.json()["jwks_uri"])
                    keys.raise_for_status()
                self._issuer = str(config.json()["issuer"])
                self._keys = {k["kid"]: jwt.PyJWK(k).key for k in keys.json()["keys"]}
            return self._keys.get(kid)

    def user(self, token: str) -> str | None:
        """The mailbox of a valid token, else None (the reason goes to the auth log)."""
        try:
            key = self._key(str(jwt.get_unverified_header(token).get("kid", "")))
            if key is None:
                raise jwt.InvalidKeyError("unknown signing key")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audiences,
                issuer=self._issuer,
                leeway=CLOCK_SKEW,
                options={"require": ["exp", "nbf", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            self._log.refusals.append(f"bearer: {type(exc).__name__}: {exc}")
            return None
        if EWS_PERMISSION not in str(claims.get("scp", "")).split():
            self._log.refusals.append(f"bearer: scp {claims.get('scp')!r} lacks {EWS_PERMISSION}")
            return None
        user = claims.get("preferred_username") or claims.get("upn")
        if not isinstance(user, str) or "@" not in user:
            self._log.refusals.append("bearer: the token names no user")
            return None
        return user.lower()


class BearerTokens(dict[str, str]):
    """The server's bearer tokens: fixed ones (token → mailbox) and, with a
    :class:`BearerVerifier`, the authority's tokens. ``get`` is what a connection asks."""

    verifier: BearerVerifier | None = None

    def get(self, token: str, default: Any = None) -> Any:  # type: ignore[override]
        if token in self:
            return self[token]
        if self.verifier is not None and token.count(".") == 2:
            return self.verifier.user(token)
        return default


class ConnectionAuth:
    """Authentication state of one client connection."""

    def __init__(
        self,
        schemes: Sequence[str],
        *,
        basic: Callable[[str, str], str | None],
        bearer: Callable[[str], str | None],
        ntlm_mailbox: Callable[[str], str | None],
        accounts: NtlmAccounts | None,
        log: AuthLog,
        peer_cert: bytes | None = None,
    ) -> None:
        self.schemes = tuple(schemes)
        self._basic = basic
        self._bearer = bearer
        self._ntlm_mailbox = ntlm_mailbox
        self._accounts = accounts
        self._log = log
        self._cbt = _channel_bindings(peer_cert) if peer_cert else None
        self._ntlm: spnego.ContextProxy | None = None
        self.user: str | None = None  # set once NTLM has authenticated this connection

    def offer(self, note: str = "offer") -> Verdict:
        return Verdict(None, [_bare(s) for s in self.schemes], note=note)

    def check(self, header: str) -> Verdict:
        kind, _, cred = header.strip().partition(" ")
        kind = kind.lower()
        if not kind:
            return Verdict(self.user) if self.user else self.offer()
        if kind not in {s.lower() for s in self.schemes}:
            return self._refuse(f"{kind}: scheme not offered ({', '.join(self.schemes)})")
        if kind == "ntlm":
            return self._step_ntlm(cred.strip())
        user = self._basic_user(cred) if kind == "basic" else self._bearer(cred.strip())
        if user is None:
            return self._refuse(f"{kind}: credentials refused")
        self._log.signins.append((kind, user))
        return Verdict(user)

    def _basic_user(self, cred: str) -> str | None:
        try:
            user, _, password = base64.b64decode(cred).decode().partition(":")
        except ValueError:
            return None
        return self._basic(user, password)

    def _step_ntlm(self, token_b64: str) -> Verdict:
        """One leg of the handshake; a new Negotiate restarts it (and un-authenticates)."""
        assert self._accounts is not None, "NTLM offered without an account file"
        self._accounts.check_environment()
        try:
            token = base64.b64decode(token_b64, validate=True)
        except ValueError:
            return self._refuse("NTLM: token is not base64")
        if token[8:12] == b"\x01\x00\x00\x00" or self._ntlm is None:  # NEGOTIATE_MESSAGE
            self.user = None
            self._ntlm = spnego.server(
                protocol="ntlm",
                service="HTTP",
                options=spnego.NegotiateOptions.use_ntlm,
                channel_bindings=self._cbt,
            )
        ctx = self._ntlm
        try:
            out = ctx.step(token)
        except SpnegoError as exc:
            return self._refuse(f"NTLM: {exc}")
        if not ctx.complete:
            return Verdict(
                None, ["NTLM " + base64.b64encode(out or b"").decode()], b"", "NTLM challenge"
            )
        self._ntlm = None
        principal = ctx.client_principal or ""
        mailbox = self._ntlm_mailbox(principal)
        if mailbox is None:
            return self._refuse(f"NTLM: {principal} has no mailbox on this server")
        self.user = mailbox
        self._log.signins.append(("ntlm", principal))
        return Verdict(mailbox)

    def _refuse(self, why: str) -> Verdict:
        self._ntlm = None
        self.user = None
        self._log.refusals.append(why)
        return self.offer(f"refused: {why}")


def _bare(scheme: str) -> str:
    return 'Basic realm="fake-ews"' if scheme == "Basic" else scheme


def _channel_bindings(cert_der: bytes) -> GssChannelBindings:
    """RFC 5929 ``tls-server-end-point`` of our certificate, as the client computes it."""
    from cryptography import x509

    algo = x509.load_der_x509_certificate(cert_der).signature_hash_algorithm
    name = algo.name if algo is not None and algo.name not in ("md5", "sha1") else "sha256"
    digest = hashlib.new(name, cert_der).digest()
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest)
