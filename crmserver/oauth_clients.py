"""Registered OAuth clients, the redirect URIs they may use, and the scopes they may ask for.

A public client (a desktop app) may use its registered redirect URIs and, as Entra allows for
"Mobile and desktop" apps, any loopback ``http://localhost[:port][/path]`` or
``http://127.0.0.1[:port][/path]``. Scopes: ``openid profile offline_access email`` and the
resource's ``R/user_impersonation`` or ``R/.default`` (R is this server's root; Dataverse's
double-slash form ``R//user_impersonation`` is accepted too); where the endpoint allows it,
Microsoft Graph's mail permissions too (``https://graph.microsoft.com/Mail.ReadWrite`` …) and
Exchange Online's EWS permission (``https://outlook.office365.com/EWS.AccessAsUser.All``), as
Entra issues tokens for all of them from one sign-in.
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


#: The other resource this authority issues tokens for, as Entra does: Microsoft Graph, with
#: the delegated permissions a mail client asks for (``.default``: all of them).
GRAPH = "https://graph.microsoft.com"
GRAPH_PERMISSIONS = (
    "Mail.Read",
    "Mail.ReadWrite",
    "Mail.Send",
    "Mail.ReadWrite.Shared",
    "Mail.Send.Shared",
    "User.Read",
    "Calendars.ReadWrite",
    "Contacts.ReadWrite",
    "Tasks.ReadWrite",
    ".default",
)
#: Exchange Online's EWS (a hybrid tenant's on-premises EWS asks for the same permission on
#: its own server's URL, which this authority does not know): one delegated permission.
EWS = "https://outlook.office365.com"
EWS_PERMISSIONS = ("EWS.AccessAsUser.All", ".default")
_CANONICAL = {p.lower(): p for p in GRAPH_PERMISSIONS + EWS_PERMISSIONS + PERMISSIONS}
#: The resources of a scope item: this server (the CRM), Graph or EWS.
CRM_RESOURCE = "crm"
GRAPH_RESOURCE = "graph"
EWS_RESOURCE = "ews"
#: The other resources: their root URL (a token's ``aud``) and delegated permissions.
_OTHER: dict[str, tuple[str, tuple[str, ...]]] = {
    GRAPH_RESOURCE: (GRAPH, GRAPH_PERMISSIONS),
    EWS_RESOURCE: (EWS, EWS_PERMISSIONS),
}
_BY_ROOT = {root: name for name, (root, _) in _OTHER.items()}
CONSENT_REQUIRED = 65001


def _split(item: str) -> tuple[str, str]:
    """``R/permission`` → (``R`` without trailing slashes, ``permission``)."""
    base, _, permission = item.rpartition("/")
    return base.rstrip("/"), permission


def resource_of(item: str) -> str:
    """The resource of a checked scope item: Graph's, EWS's, else this server's."""
    return _BY_ROOT.get(_split(item)[0].lower(), CRM_RESOURCE)


def audience_of(resource: str) -> str | None:
    """The ``aud`` of a token for ``resource``; ``None`` for this server (its root)."""
    return _OTHER[resource][0] if resource in _OTHER else None


def _offered(resource: str) -> tuple[str, ...]:
    return _OTHER[resource][1] if resource in _OTHER else PERMISSIONS


@dataclass(frozen=True)
class Scope:
    """A parsed ``scope``: the OpenID Connect scopes and the resource scopes as asked (in
    order; each item names its resource, see :func:`resource_of`)."""

    oidc: frozenset[str]
    resource: tuple[str, ...]

    @property
    def text(self) -> str:
        """The granted scope as the token response names it (the resource's)."""
        return " ".join(self.resource)

    @property
    def stored(self) -> str:
        return " ".join(sorted(self.oidc) + list(self.resource))

    @property
    def resources(self) -> tuple[str, ...]:
        """The resources named, in the order first asked."""
        return tuple(dict.fromkeys(resource_of(i) for i in self.resource))

    def only(self, resource: str) -> Scope:
        """The OpenID Connect scopes and this resource's items."""
        return Scope(self.oidc, tuple(i for i in self.resource if resource_of(i) == resource))

    def named(self, resource: str) -> frozenset[str]:
        """The permissions of ``resource`` as named (canonical spelling)."""
        return frozenset(
            _CANONICAL.get(_split(i)[1].lower(), "")
            for i in self.resource
            if resource_of(i) == resource
        ) - {""}

    def permissions(self, resource: str) -> frozenset[str]:
        """The permissions granted on ``resource`` (``.default`` stands for all of them;
        the CRM has one, ``user_impersonation``, whichever way it was asked for, and a
        grant that named no resource at all was for the CRM, as its token)."""
        named = self.named(resource)
        if resource == CRM_RESOURCE:
            return frozenset({"user_impersonation"} if named or not self.resource else ())
        if ".default" in named:
            return frozenset(_offered(resource)) - {".default"}
        return named

    def scp(self, resource: str) -> str:
        """The ``scp`` claim of a token for ``resource``: its permissions, without the
        resource prefix, space separated (in a fixed order)."""
        if resource == CRM_RESOURCE:
            return "user_impersonation"
        granted = self.permissions(resource)
        return " ".join(p for p in _offered(resource) if p in granted)

    def covers(self, asked: Scope) -> bool:
        """Whether this consent includes every resource item of ``asked``; asking for a
        resource's ``.default`` means whatever was consented to on it, as at Entra."""
        for resource in asked.resources:
            granted = self.permissions(resource)
            wanted = asked.named(resource) - {".default"}
            if resource == CRM_RESOURCE:
                wanted = frozenset()
            if not granted or not wanted <= granted:
                return False
        return True


def consent_required(client_id: str, asked: Scope) -> OAuthError:
    """Entra's answer to a token for permissions the user never consented to (AADSTS65001)."""
    return OAuthError(
        "invalid_grant",
        CONSENT_REQUIRED,
        f"The user or administrator has not consented to use the application with ID "
        f"'{client_id}' for '{asked.text}'. Send an interactive authorization request for "
        "this user and resource.",
    )


def parse_scope(raw: str, root: str, *, required: bool = True, graph: bool = False) -> Scope:
    """Check ``raw`` against this resource (and Graph's and EWS's permissions when ``graph``,
    i.e. at Entra, not AD FS); raises
    ``OAuthError`` (``invalid_scope`` for an unknown permission or a missing resource scope,
    ``invalid_resource`` for another resource)."""
    oidc: set[str] = set()
    resource: list[str] = []
    for item in raw.split():
        if item in OIDC_SCOPES:
            oidc.add(item)
            continue
        _check_item(item, root, graph)
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


def _check_item(item: str, root: str, graph: bool) -> None:
    """One resource scope item: a known resource and one of its permissions."""
    base, slash, permission = item.rpartition("/")
    if not slash or "://" not in base:
        raise OAuthError(
            "invalid_scope",
            INVALID_SCOPE,
            f"The provided value for the input parameter 'scope' is not valid. The scope "
            f"'{item}' does not name a resource.",
        )
    target = base.rstrip("/").lower()
    if target == root.lower():
        offered: tuple[str, ...] = PERMISSIONS
    elif graph and target in _BY_ROOT and base.lower() == target:
        offered = _offered(_BY_ROOT[target])
    else:
        raise OAuthError(
            "invalid_resource",
            RESOURCE_NOT_FOUND,
            f"The resource principal named {base} was not found in the tenant. This can "
            "happen if the application has not been installed by the administrator of "
            "the tenant.",
        )
    if permission.lower() not in {p.lower() for p in offered}:
        raise OAuthError(
            "invalid_scope",
            INVALID_SCOPE,
            f"The provided value for the input parameter 'scope' is not valid. The scope "
            f"'{item}' is not valid: the resource offers {', '.join(offered)}.",
        )


def stored_scope(text: str) -> Scope:
    """A scope kept with a code or token family (already checked)."""
    items = text.split()
    return Scope(
        frozenset(i for i in items if i in OIDC_SCOPES),
        tuple(i for i in items if i not in OIDC_SCOPES),
    )
