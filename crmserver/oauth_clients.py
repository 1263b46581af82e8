"""Registered OAuth clients, the redirect URIs they may use, and the scopes they may ask for.

A public client (a desktop app) may use its registered redirect URIs and, as Entra allows for
"Mobile and desktop" apps, any loopback ``http://localhost[:port][/path]`` or
``http://127.0.0.1[:port][/path]``. Scopes: ``openid profile offline_access email`` and the
resource's ``R/user_impersonation`` or ``R/.default`` (R is this server's root; Dataverse's
double-slash form ``R//user_impersonation`` is accepted too).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .oauth_errors import INVALID_SCOPE, MISSING_PARAMETER, RESOURCE_NOT_FOUND, OAuthError
from .storage import Storage

#: Microsoft's sample public client for Dataverse development; every organisation has it.
DEV_CLIENT_ID = "51f81489-12ee-4a9e-aaae-a2591f45987d"
DEV_CLIENT_NAME = "Trackbox (development)"
DEV_REDIRECT_URIS = ("http://localhost", "app://58145B91-0C36-4500-8554-080854F2AC97")

OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
PERMISSIONS = ("user_impersonation", ".default")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    name: str
    public: bool
    redirect_uris: tuple[str, ...]


def register_default_clients(storage: Storage) -> None:
    """The development client, unless the organisation already has it (kept as changed)."""
    storage.add_oauth_client(
        DEV_CLIENT_ID, DEV_CLIENT_NAME, public=True, redirect_uris=DEV_REDIRECT_URIS, replace=False
    )


def find_client(storage: Storage, client_id: str) -> OAuthClient | None:
    row = storage.oauth_client(client_id) if client_id else None
    if row is None:
        return None
    uris = tuple(u for u in str(row["redirect_uris"]).split("\n") if u)
    return OAuthClient(str(row["client_id"]), str(row["name"]), bool(row["public"]), uris)


def redirect_allowed(client: OAuthClient, uri: str) -> bool:
    if not uri or len(uri) > 2048:
        return False
    if uri in client.redirect_uris:
        return True
    if not client.public:
        return False
    try:
        parts = urlsplit(uri)
        _ = parts.port  # a malformed port raises
    except ValueError:
        return False
    return (
        parts.scheme == "http"
        and (parts.hostname or "") in LOOPBACK_HOSTS
        and not parts.username
        and not parts.password
        and not parts.fragment
        and "#" not in uri
    )


@dataclass(frozen=True)
class Scope:
    """A parsed ``scope``: the OpenID Connect scopes and the resource scopes as asked."""

    oidc: frozenset[str]
    resource: tuple[str, ...]

    @property
    def text(self) -> str:
        """The granted scope as the token response names it (the resource's)."""
        return " ".join(self.resource)

    @property
    def stored(self) -> str:
        return " ".join(sorted(self.oidc) + list(self.resource))


def parse_scope(raw: str, root: str, *, required: bool = True) -> Scope:
    """Check ``raw`` against this resource; raises ``OAuthError`` (``invalid_scope`` for an
    unknown permission or a missing resource scope, ``invalid_resource`` for another
    resource)."""
    oidc: set[str] = set()
    resource: list[str] = []
    for item in raw.split():
        if item in OIDC_SCOPES:
            oidc.add(item)
            continue
        base, slash, permission = item.rpartition("/")
        if not slash or "://" not in base:
            raise OAuthError(
                "invalid_scope",
                INVALID_SCOPE,
                f"The provided value for the input parameter 'scope' is not valid. The scope "
                f"'{item}' does not name a resource.",
            )
        if base.rstrip("/").lower() != root.lower():
            raise OAuthError(
                "invalid_resource",
                RESOURCE_NOT_FOUND,
                f"The resource principal named {base} was not found in the tenant. This can "
                "happen if the application has not been installed by the administrator of "
                "the tenant.",
            )
        if permission not in PERMISSIONS:
            raise OAuthError(
                "invalid_scope",
                INVALID_SCOPE,
                f"The provided value for the input parameter 'scope' is not valid. The scope "
                f"'{item}' is not valid: the resource offers {' and '.join(PERMISSIONS)}.",
            )
        if item not in resource:
            resource.append(item)
    if required and not resource:
        if not raw.strip():
            raise OAuthError(
                "invalid_request",
                MISSING_PARAMETER,
                "The request body must contain the following parameter: 'scope'.",
            )
        raise OAuthError(
            "invalid_scope",
            INVALID_SCOPE,
            f"The provided value for the input parameter 'scope' is not valid: ask for "
            f"'{root}/user_impersonation'.",
        )
    return Scope(frozenset(oidc), tuple(resource))


def stored_scope(text: str) -> Scope:
    """A scope kept with a code or token family (already checked)."""
    items = text.split()
    return Scope(
        frozenset(i for i in items if i in OIDC_SCOPES),
        tuple(i for i in items if i not in OIDC_SCOPES),
    )
