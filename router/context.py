"""What the router works with: the CRM signed in as the organisation's service, each
mailbox's mail server, and where per-mailbox sync state lives.

The service signs in with OAuth client credentials (an application user in the CRM, allowed
to read and file every user's mail). Secrets — the client secret and each mailbox's IMAP
password — come from the keyring (``core.config.credentials``, profile ``router`` by
default), filled by the administrator; never from the config file, the CRM or a log.

The config file (TOML)::

    [crm]
    url = "https://org.crm.dynamics.com"
    client_id = "trackbox-router"
    token_url = "https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token"  # optional
    ca_file = "/etc/ssl/private-ca.pem"                                          # optional

    [router]
    state_dir = "/var/lib/trackbox-router"
    keyring_profile = "router"                                                   # optional

    [mailboxes."support@contoso.example"]        # a mailbox's address (or its mailboxid)
    url = "imaps://mail.contoso.example"
    user = "support@contoso.example"              # optional, default the key
    smtp_url = "smtps://mail.contoso.example"     # optional (outgoing)

    [graph]                                       # optional: Microsoft 365 mailboxes
    client_id = "trackbox-router"                 # optional, default [crm] client_id
    token_url = "https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token"  # optional
    base_url = "https://graph.microsoft.com/v1.0"  # optional
    ca_file = "/etc/ssl/graph-proxy-ca.pem"       # optional, added to [crm] ca_file

The keyring holds the client secret under (``trackbox:router:crm``, client id) and each
mailbox's password under (``trackbox:router:mail``, its IMAP user name).

A mailbox with no ``[mailboxes]`` entry is processed by its CRM mail server profile
(``mailbox.emailserverprofile``): *Exchange Online* (``servertype`` 3) goes through Microsoft
Graph with the ``[graph]`` application's app-only token (client credentials for
``https://graph.microsoft.com/.default``; application permissions Mail.ReadWrite and Mail.Send
consented by the tenant's admin) at ``/users/{address}``, sending with ``sendMail``. Other
profiles need a ``[mailboxes]`` entry.

Both the service's CRM client and its Graph mailboxes ask the worker's per-request windows
before every request (:mod:`router.request_limits`).
"""

from __future__ import annotations

import ssl
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from core.config.credentials import SecretKind, get_secret
from core.crm import CrmClient
from core.crm.auth import BearerAuth
from core.crm.errors import CrmAuthError
from core.crm.throttle import Throttle
from core.domain.mailbox_delivery import MailboxDelivery
from core.mail import MailAuthError, MailBackend, open_backend
from core.mail.graph import GraphBackend
from core.mail.graph_http import DEFAULT_BASE_URL
from router.limits import MAX_REQUEST_WAIT_S
from router.request_limits import limit_graph, limited_crm_transport

DEFAULT_PROFILE = "router"
#: ``emailserverprofile.servertype`` of Exchange Online (processed through Graph).
EXCHANGE_ONLINE = 3
#: The resource an app-only Graph token is asked for (whatever URL Graph is reached at).
GRAPH_RESOURCE = "https://graph.microsoft.com"
#: Seconds before a token's expiry at which a new one is asked for.
TOKEN_MARGIN = 60.0


class RouterConfigError(Exception):
    """The config file is missing, unreadable, or lacks what the router needs."""


@dataclass(frozen=True, slots=True)
class MailServer:
    """Where one mailbox's mail is: its backend URL, the user name it signs in with (the
    keyring entry of its password) and, for sending, an SMTP URL."""

    url: str
    user: str
    smtp_url: str | None = None


class ClientCredentials:
    """An app-only access token for the service (``client_credentials`` grant), kept until a
    minute before it expires. Thread-safe; the secret is never in ``repr``."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        secret: str,
        *,
        scope: str,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = secret
        self.scope = scope
        self.verify = verify
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClientCredentials({self.client_id!r})"

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._token, lifetime = self._request()
                self._expires = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN)
            return self._token

    def forget(self) -> None:
        """Drop the cached token (the CRM refused it): the next request asks again."""
        with self._lock:
            self._token = None

    def _request(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._secret,
            "scope": self.scope,
        }
        response = httpx.post(self.token_url, data=form, verify=self.verify, timeout=30)
        if response.status_code != 200:
            raise CrmAuthError(f"the service's sign-in was refused (HTTP {response.status_code})")
        body = response.json()
        return str(body["access_token"]), float(body.get("expires_in") or 300)


@dataclass(frozen=True)
class GraphAccess:
    """Microsoft Graph with application permissions: where it is and an app-only token."""

    token: Callable[[], str]
    base_url: str = DEFAULT_BASE_URL
    verify: ssl.SSLContext | bool = True

    def open(self, address: str) -> MailBackend:
        """The mailbox ``address`` through ``/users/{address}``."""
        backend = GraphBackend(self.base_url, address, token=self._token, verify=self.verify)
        limit_graph(backend, address)  # the mailbox's request and send windows
        return backend

    def _token(self) -> str:
        try:
            return self.token()
        except CrmAuthError as exc:  # the sign-in is the service's: a mailbox-side error
            raise MailAuthError(f"the service's Graph sign-in was refused: {exc}") from exc


@dataclass
class RouterContext:
    """The router's collaborators. ``crm`` is signed in as the service; ``servers`` maps a
    mailbox's id or address to its mail server; ``secret(user)`` reads a mailbox password
    from the keyring; ``state_dir`` holds one SQLite state per mailbox; ``graph``: Microsoft
    365 mailboxes (by their server profile) through Graph."""

    crm: CrmClient
    state_dir: Path
    servers: Mapping[str, MailServer] = field(default_factory=dict)
    secret: Callable[[str], str | None] = lambda _user: None
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    graph: GraphAccess | None = None

    def server_of(self, box: MailboxDelivery) -> MailServer | None:
        return self.servers.get(box.mailbox_id) or self.servers.get(box.address)

    def server_type(self, box: MailboxDelivery) -> int | None:
        """The ``servertype`` of the mailbox's CRM mail server profile (None: it has none)."""
        row = self.crm.get("mailboxes", box.mailbox_id, select=["_emailserverprofile_value"])
        profile = row.get("_emailserverprofile_value")
        if not profile:
            return None
        found = self.crm.get("emailserverprofiles", str(profile), select=["servertype"])
        kind = found.get("servertype")
        return int(kind) if kind is not None else None

    def open_mailbox(self, box: MailboxDelivery) -> MailBackend:
        """The mailbox's backend, signed in with the service's own credentials for it: its
        ``[mailboxes]`` entry, else its server profile (Exchange Online: Graph)."""
        server = self.server_of(box)
        if server is None:
            kind = self.server_type(box)
            if kind == EXCHANGE_ONLINE and self.graph is not None:
                return self.graph.open(box.address)
            if kind == EXCHANGE_ONLINE:
                raise MailAuthError(
                    f"the mailbox {box.address} is on Exchange Online: the config needs [graph]"
                )
            raise MailAuthError(f"no mail server is configured for the mailbox {box.address}")
        password = self.secret(server.user)
        if password is None:
            raise MailAuthError(f"no password for {server.user} in the keyring")
        options = dict(self.backend_options)
        if server.smtp_url:
            options["smtp_url"] = server.smtp_url
        return open_backend(server.url, user=server.user, password=password, **options)

    def state_path(self, mailbox_id: str) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return self.state_dir / f"mailbox-{mailbox_id}.sqlite"

    @property
    def address_book_path(self) -> Path:
        """One address-book cache for all mailboxes (the organisation's records)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return self.state_dir / "address-book.sqlite"


def load_context(config_path: Path) -> RouterContext:
    """Read the config file (see the module docstring) and sign the service in lazily."""
    try:
        config = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RouterConfigError(f"cannot read {config_path}: {exc}") from exc
    crm_section = _section(config, "crm")
    router_section = _section(config, "router")
    profile = str(router_section.get("keyring_profile") or DEFAULT_PROFILE)
    state_dir = Path(_required(router_section, "state_dir", "router")).expanduser()
    crm = _service_client(crm_section, profile)
    servers = {
        str(key): _server(str(key), value) for key, value in _section(config, "mailboxes").items()
    }
    graph_section = _section(config, "graph")
    return RouterContext(
        crm=crm,
        state_dir=state_dir,
        servers=servers,
        secret=lambda user: get_secret(profile, SecretKind.MAIL, user),
        graph=_graph(graph_section, crm_section, profile) if "graph" in config else None,
    )


def _verify(*ca_files: object) -> ssl.SSLContext | bool:
    """The system's CAs, or a context trusting these CA files."""
    files = [str(f) for f in ca_files if f]
    if not files:
        return True
    context = ssl.create_default_context(cafile=files[0])
    for extra in files[1:]:
        context.load_verify_locations(cafile=extra)
    return context


def _graph(section: Mapping[str, Any], crm_section: Mapping[str, Any], profile: str) -> GraphAccess:
    """Graph with the service's application permissions (app-only, client credentials)."""
    crm_url = _required(crm_section, "url", "crm").rstrip("/")
    client_id = str(section.get("client_id") or _required(crm_section, "client_id", "crm"))
    secret = get_secret(profile, SecretKind.CRM, client_id)
    if secret is None:
        raise RouterConfigError(
            f"no client secret for {client_id} in the keyring (trackbox:{profile}:crm)"
        )
    verify = _verify(crm_section.get("ca_file"), section.get("ca_file"))
    token_url = section.get("token_url") or crm_section.get("token_url")
    token = ClientCredentials(
        str(token_url or f"{crm_url}/oauth2/v2.0/token"),
        client_id,
        secret,
        scope=f"{GRAPH_RESOURCE}/.default",
        verify=verify,
    )
    base_url = str(section.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    return GraphAccess(token, base_url, verify)


def _service_client(section: Mapping[str, Any], profile: str) -> CrmClient:
    url = _required(section, "url", "crm").rstrip("/")
    client_id = _required(section, "client_id", "crm")
    secret = get_secret(profile, SecretKind.CRM, client_id)
    if secret is None:
        raise RouterConfigError(
            f"no client secret for {client_id} in the keyring (trackbox:{profile}:crm)"
        )
    ca_file = section.get("ca_file")
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
    )
    token = ClientCredentials(
        str(section.get("token_url") or f"{url}/oauth2/v2.0/token"),
        client_id,
        secret,
        scope=f"{url}/.default",
        verify=verify,
    )
    auth = BearerAuth(token, on_unauthorized=token.forget, label=f"service {client_id}")
    # Every request asks the identity's window first; a 429 pauses the identity everywhere. The
    # client's own gate waits out a Retry-After no longer than a job may hold its lock.
    return CrmClient(
        url,
        auth,
        verify=verify,
        transport=limited_crm_transport(url, verify),
        throttle=Throttle(background_wait=MAX_REQUEST_WAIT_S),
    )


def _server(key: str, value: Any) -> MailServer:
    if not isinstance(value, Mapping):
        raise RouterConfigError(f"[mailboxes.{key!r}] must be a table")
    smtp = value.get("smtp_url")
    return MailServer(
        url=_required(value, "url", f"mailboxes.{key}"),
        user=str(value.get("user") or key),
        smtp_url=str(smtp) if smtp else None,
    )


def _section(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = config.get(name, {})
    if not isinstance(value, Mapping):
        raise RouterConfigError(f"[{name}] must be a table")
    return value


def _required(section: Mapping[str, Any], key: str, where: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RouterConfigError(f"[{where}] needs {key}")
    if key == "state_dir" or key.endswith("url") or key == "client_id":
        return value.strip()
    return value


__all__ = [
    "ClientCredentials",
    "GraphAccess",
    "MailServer",
    "RouterConfigError",
    "RouterContext",
    "load_context",
]
