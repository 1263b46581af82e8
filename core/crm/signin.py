"""Signing in to Dynamics 365 online (Microsoft Entra ID) and to AD FS, with MSAL for Python.

Trackbox is a *public client*: :class:`MicrosoftSignIn` wraps ``msal.PublicClientApplication``
for one organisation (the scope is ``{org}/user_impersonation``), one authority and one token
cache (``core.crm.token_cache``; the keyring, never a file). A user signs in once, in the
system browser (loopback redirect, PKCE — MSAL does both), with a device code on a terminal, or
through an auth-code flow the caller drives (tests, the demo); afterwards :meth:`token` renews
the access token silently from the refresh token and raises :class:`SignInRequired` when only
the user can help (no account, the refresh token revoked or expired, ``interaction_required``).
:meth:`bearer_auth` is the ``httpx.Auth`` the Web API client uses.

One sign-in can cover the mailbox too (Microsoft 365): with ``extra_scopes`` (e.g.
:data:`GRAPH_MAIL_SCOPES`) the user consents to Microsoft Graph at the same sign-in — MSAL's
``extra_scopes_to_consent`` — while the code is redeemed for the CRM; :meth:`token_for` then
gets a Graph token silently from the same account and cache (Entra's refresh tokens work across
resources), and :meth:`token_source` is the callable a Graph mail backend asks for tokens.

Network failures while talking to the authority become ``CrmUnavailable`` (the sync goes
offline, the outbox waits), an untrusted certificate ``CrmCertificateError``, an authority
whose OpenID configuration does not read ``AuthorityError``. No token, code or refresh token
is ever logged here; ``on_secret`` lets the caller register them with its log redaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal
import requests
from msal.oauth2cli.oauth2 import BrowserInteractionTimeoutError

from core.crm.auth import BearerAuth
from core.crm.errors import (
    AccountChoiceRequired,
    AuthorityError,
    CrmCertificateError,
    CrmUnavailable,
    SignInFailed,
    SignInRequired,
)
from core.crm.token_cache import MemoryCacheStore, PersistentTokenCache

log = logging.getLogger("trackbox.signin")

#: Microsoft's documented sample public client for Dataverse (development and prototyping).
DEFAULT_CLIENT_ID = "51f81489-12ee-4a9e-aaae-a2591f45987d"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com/organizations"
#: The Dataverse permission a public client asks for ("Access Dynamics 365 as organization
#: users"); ``/.default`` is for confidential clients.
USER_IMPERSONATION = "user_impersonation"
#: Microsoft Graph, the mailbox's resource, and the delegated permissions Trackbox's mail
#: backend needs for the user's own mailbox, and for shared and delegated ones.
GRAPH = "https://graph.microsoft.com"
GRAPH_MAIL_SCOPES = (f"{GRAPH}/Mail.ReadWrite", f"{GRAPH}/Mail.Send")
GRAPH_SHARED_MAIL_SCOPES = (f"{GRAPH}/Mail.ReadWrite.Shared", f"{GRAPH}/Mail.Send.Shared")
#: Authority errors that mean "try again later", not "sign in again".
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
#: Hosts MSAL knows; any other authority is used as given (no instance discovery).
MICROSOFT_HOSTS = frozenset(msal.authority.WELL_KNOWN_AUTHORITY_HOSTS)

Verify = str | bool


class _Session(requests.Session):
    """The HTTP client MSAL uses: ``verify`` (a CA file or True) and ``timeout`` on every
    request. Set on the session alone, requests lets ``REQUESTS_CA_BUNDLE`` /
    ``CURL_CA_BUNDLE`` override ``verify`` (psf/requests#3829), so a profile's CA file
    would be ignored wherever those variables are set; per request, it holds."""

    def __init__(self, verify: Verify, timeout: float) -> None:
        super().__init__()
        self.verify = verify
        self._timeout = timeout
        retry_once = requests.adapters.HTTPAdapter(max_retries=1)  # as MSAL's own session
        self.mount("https://", retry_once)
        self.mount("http://", retry_once)

    def request(  # type: ignore[override]  # the keywords pass through unchanged
        self, method: str, url: str | bytes, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("verify", self.verify)
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, **kwargs)


class SignInAuth(BearerAuth):
    """The bearer auth of a :class:`MicrosoftSignIn`, which it keeps (``sign_in``): a new
    sign-in from the window must land in the cache the open workspace renews from."""

    def __init__(self, sign_in: MicrosoftSignIn) -> None:
        super().__init__(
            sign_in.token,
            on_unauthorized=sign_in.renew_next,
            label=f"{sign_in.kind}, user={sign_in.username or '?'}",
        )
        self.sign_in = sign_in


def graph_scopes(*permissions: str) -> tuple[str, ...]:
    """``("Mail.Read",)`` → ``("https://graph.microsoft.com/Mail.Read",)``."""
    return tuple(f"{GRAPH}/{p}" for p in permissions)


def scope_for(resource: str) -> str:
    """``https://org.crm.dynamics.com/`` → ``https://org.crm.dynamics.com/user_impersonation``."""
    return resource.rstrip("/") + "/" + USER_IMPERSONATION


def is_adfs(authority: str) -> bool:
    """An AD FS authority (``https://adfs.contoso.com/adfs``), by MSAL's convention."""
    return urlsplit(authority).path.strip("/").split("/")[0].lower() == "adfs"


@dataclass(frozen=True, slots=True)
class SignedInAccount:
    """An account in the token cache: ``username`` (the UPN / e-mail), MSAL's
    ``home_account_id`` and the authority host (``environment``)."""

    username: str
    home_account_id: str
    environment: str


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The outcome of a sign-in: who, and until when the access token is good."""

    username: str
    expires_at: datetime | None


@dataclass(frozen=True)
class DeviceFlow:
    """A started device-code sign-in: show ``message`` (or ``verification_uri`` and
    ``user_code``), then :meth:`MicrosoftSignIn.finish_device_flow` waits for the user.
    :meth:`cancel` makes that wait return (as a failed sign-in) within a second."""

    user_code: str
    verification_uri: str
    message: str
    expires_at: datetime
    interval: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    def cancel(self) -> None:
        self.raw["expires_at"] = 0


@dataclass(frozen=True)
class AuthCodeFlow:
    """A started auth-code sign-in: open ``auth_uri``; the authority redirects to
    ``redirect_uri`` with ``code`` and ``state``, which go to
    :meth:`MicrosoftSignIn.finish_auth_code_flow`."""

    auth_uri: str
    redirect_uri: str
    state: str
    raw: dict[str, Any] = field(repr=False, compare=False)


class TokenSource:
    """Access tokens for another resource (Microsoft Graph) from a :class:`MicrosoftSignIn`:
    call it for a current token (renewed silently; ``SignInRequired`` when only the user can
    help). After the resource refused a token (401), :meth:`renew_next` makes the next call
    renew it. :meth:`bearer_auth` is the same as an ``httpx.Auth``."""

    def __init__(self, sign_in: MicrosoftSignIn, scopes: Sequence[str]) -> None:
        if not scopes:
            raise ValueError("a token source needs the scopes of a resource")
        self.sign_in = sign_in
        self.scopes = tuple(scopes)
        self._renew = False

    def __call__(self) -> str:
        token = self.sign_in.token_for(self.scopes, force_refresh=self._renew)
        self._renew = False
        return token

    def renew_next(self) -> None:
        self._renew = True

    def bearer_auth(self) -> BearerAuth:
        label = f"{self.sign_in.kind}, user={self.sign_in.username or '?'}, {self.scopes[0]}"
        return BearerAuth(self, on_unauthorized=self.renew_next, label=label)

    def __repr__(self) -> str:
        return f"TokenSource({self.sign_in!r}, scopes={self.scopes!r})"


class MicrosoftSignIn:
    """MSAL for one organisation (``resource``, default ``org_url``), ``authority`` and
    token cache. ``username`` chooses among several cached accounts (case-insensitive);
    without one, a single cached account is used and several are an error.
    ``extra_scopes``: another resource's scopes (Graph's) the user consents to at sign-in.

    The MSAL application (which reads the authority's OpenID configuration over the network)
    is made on first need: listing accounts, the access token's expiry and signing out work
    offline, from the cache alone."""

    def __init__(
        self,
        org_url: str,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        authority: str = DEFAULT_AUTHORITY,
        verify: Verify = True,
        cache: PersistentTokenCache | None = None,
        username: str | None = None,
        resource: str | None = None,
        timeout: float = 30.0,
        on_secret: Callable[[str], None] | None = None,
        extra_scopes: Sequence[str] = (),
    ) -> None:
        self.org_url = org_url.rstrip("/")
        self.client_id = client_id
        self.authority = authority.rstrip("/")
        self.verify = verify
        self.cache = cache if cache is not None else PersistentTokenCache(MemoryCacheStore())
        self.username = username or None
        self.scopes = [scope_for(resource or self.org_url)]
        self.extra_scopes = [s for s in dict.fromkeys(extra_scopes) if s not in self.scopes]
        self.timeout = timeout
        self.on_secret = on_secret
        self.environment = (urlsplit(self.authority).hostname or "").lower()
        self._app: msal.PublicClientApplication | None = None
        self._lock = threading.RLock()
        self._renew = False

    def close(self) -> None:
        """Close the connections to the authority (a new call opens them again)."""
        with self._lock:
            if self._app is not None:
                self._app.http_client.close()
                self._app = None

    def __enter__(self) -> MicrosoftSignIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def kind(self) -> str:
        return "adfs" if is_adfs(self.authority) else "microsoft"

    def __repr__(self) -> str:
        return (
            f"MicrosoftSignIn({self.org_url!r}, authority={self.authority!r}, "
            f"user={self.username!r})"
        )

    # -- the MSAL application -----------------------------------------------------------

    def application(self) -> msal.PublicClientApplication:
        """The MSAL application (made once; reads the authority's configuration)."""
        with self._lock:
            if self._app is None:
                with self._authority_calls():
                    self._app = msal.PublicClientApplication(
                        self.client_id,
                        authority=self.authority,
                        http_client=_Session(self.verify, self.timeout),
                        token_cache=self.cache,
                        instance_discovery=None if self.environment in MICROSOFT_HOSTS else False,
                    )
            return self._app

    @contextmanager
    def _authority_calls(self) -> Iterator[None]:
        """Classify what MSAL raises when the authority is away or wrong."""
        try:
            yield
        except requests.exceptions.SSLError as exc:
            raise CrmCertificateError(
                f"the sign-in authority's certificate is not trusted: {type(exc).__name__}",
                url=self.authority,
            ) from None
        except requests.exceptions.RequestException as exc:
            raise CrmUnavailable(
                f"the sign-in authority is not reachable: {type(exc).__name__}",
                url=self.authority,
            ) from None
        except ValueError as exc:
            if self._app is None:
                raise AuthorityError(str(exc), authority=self.authority) from None
            raise

    # -- accounts (offline) -------------------------------------------------------------

    def accounts(self) -> list[SignedInAccount]:
        """The accounts of this authority's host in the cache."""
        found: dict[str, SignedInAccount] = {}
        for entry in self.cache.search(
            msal.TokenCache.CredentialType.ACCOUNT, query={"environment": self.environment}
        ):
            home = str(entry.get("home_account_id") or "")
            if home and home not in found:
                found[home] = SignedInAccount(
                    str(entry.get("username") or ""), home, str(entry.get("environment") or "")
                )
        return sorted(found.values(), key=lambda a: a.username.lower())

    def account(self) -> SignedInAccount | None:
        """The account this sign-in uses (None when none is cached); raises
        AccountChoiceRequired when several are and no ``username`` says which."""
        accounts = self.accounts()
        if self.username:
            wanted = self.username.lower()
            return next((a for a in accounts if a.username.lower() == wanted), None)
        if len(accounts) > 1:
            raise AccountChoiceRequired(tuple(a.username for a in accounts))
        return accounts[0] if accounts else None

    def expires_at(self, scopes: Sequence[str] | None = None) -> datetime | None:
        """When the cached access token for this organisation (or ``scopes``) expires
        (None: there is none). For diagnostics; the token itself is never shown."""
        account = self.account()
        if account is None:
            return None
        wanted = {s.lower() for s in (scopes or self.scopes)}
        latest: int | None = None
        for entry in self.cache.search(
            msal.TokenCache.CredentialType.ACCESS_TOKEN,
            query={"home_account_id": account.home_account_id, "environment": self.environment},
        ):
            target = {s.lower() for s in str(entry.get("target") or "").split()}
            if not wanted <= target:
                continue
            try:
                expires = int(entry.get("expires_on", 0))
            except (TypeError, ValueError):
                continue
            latest = expires if latest is None else max(latest, expires)
        return datetime.fromtimestamp(latest, UTC) if latest is not None else None

    # -- silent renewal ------------------------------------------------------------------

    def token(self, *, force_refresh: bool = False) -> str:
        """A current access token for the CRM: from the cache, else renewed with the
        refresh token.

        Raises SignInRequired (only the user can help), AccountChoiceRequired, CrmUnavailable
        (the authority is away), CrmCertificateError, AuthorityError."""
        with self._lock:
            token = self._silent(self.scopes, force_refresh or self._renew)
            self._renew = False
            return token

    def token_for(self, scopes: Sequence[str], *, force_refresh: bool = False) -> str:
        """A current access token for another resource's ``scopes`` (Graph's) from the
        same account and cache, never with the user: SignInRequired when the sign-in did
        not consent to them or its refresh token no longer works; else as :meth:`token`."""
        if not scopes:
            raise ValueError("token_for needs the scopes of a resource")
        with self._lock:
            return self._silent(list(scopes), force_refresh)

    def token_source(self, scopes: Sequence[str] = GRAPH_MAIL_SCOPES) -> TokenSource:
        """What a mail backend calls for Graph tokens (see :class:`TokenSource`)."""
        return TokenSource(self, scopes)

    def _silent(self, scopes: list[str], force: bool) -> str:
        """A token for ``scopes`` from the cache or the refresh token (lock held)."""
        chosen = self.account()
        if chosen is None:
            raise SignInRequired(
                "nobody is signed in" + (f" as {self.username}" if self.username else ""),
                reason="no_account",
                username=self.username,
                url=self.authority,
            )
        app = self.application()
        with self._authority_calls():
            msal_accounts = app.get_accounts(username=chosen.username or None)
            account = next(
                (a for a in msal_accounts if a.get("home_account_id") == chosen.home_account_id),
                None,
            )
            result = (
                app.acquire_token_silent_with_error(scopes, account, force_refresh=force)
                if account is not None
                else None
            )
        self._persist()
        if not result:
            raise SignInRequired(
                "no token can be renewed for this account",
                reason="no_token",
                username=chosen.username,
                url=self.authority,
            )
        if "error" in result:
            raise self._renewal_error(result, chosen.username)
        token = str(result["access_token"])
        self._tell_secret(token)
        return token

    def renew_next(self) -> None:
        """The CRM refused the current token (401): the next :meth:`token` renews it."""
        with self._lock:
            self._renew = True

    def bearer_auth(self) -> SignInAuth:
        """The Web API client's auth: a token from :meth:`token` on every request, renewed
        after a 401."""
        return SignInAuth(self)

    def _renewal_error(
        self, result: Mapping[str, Any], username: str
    ) -> SignInRequired | CrmUnavailable:
        error = str(result.get("error") or "")
        description = str(result.get("error_description") or error).splitlines()[0][:300]
        log.warning("sign-in renewal refused user=%s error=%s", username, error)
        if error in TRANSIENT_ERRORS:
            return CrmUnavailable(
                f"the sign-in authority is busy: {description}", url=self.authority
            )
        return SignInRequired(description, reason=error, username=username, url=self.authority)

    # -- interactive sign-in -------------------------------------------------------------

    def sign_in_interactive(
        self,
        login_hint: str | None = None,
        *,
        timeout: float | None = None,
        port: int | None = None,
        prompt: str | None = "select_account",
        on_browser: Callable[[], None] | None = None,
        on_no_browser: Callable[[str], None] | None = None,
    ) -> SignedIn:
        """Sign in in the system browser; MSAL listens on ``http://localhost:<port>`` for
        the redirect and uses PKCE. Blocks until the browser comes back or ``timeout``
        (SignInFailed ``timeout``). When no browser can be opened, ``on_no_browser(url)``
        can tell the user to open the address elsewhere on this machine."""
        app = self.application()

        def before_ui(**_: Any) -> None:
            if on_browser is not None:
                on_browser()

        extra: dict[str, Any] = {}
        if on_no_browser is not None:
            extra["auth_uri_callback"] = on_no_browser
        with self._checked_sign_in():
            try:
                with self._authority_calls():
                    result = app.acquire_token_interactive(
                        self.scopes,
                        extra_scopes_to_consent=self.extra_scopes or None,
                        login_hint=login_hint or self.username,
                        prompt=prompt,
                        timeout=timeout,
                        port=port,
                        on_before_launching_ui=before_ui,
                        **extra,
                    )
            except BrowserInteractionTimeoutError:
                raise SignInFailed(
                    "the sign-in in the browser was not finished in time",
                    error="timeout",
                    url=self.authority,
                ) from None
            return self._signed_in(result)

    def start_device_flow(self) -> DeviceFlow:
        """Start a device-code sign-in (terminals, machines without a browser)."""
        app = self.application()
        with self._authority_calls():
            flow = app.initiate_device_flow(self.scopes + self.extra_scopes)
        if "user_code" not in flow:
            raise SignInFailed(
                str(flow.get("error_description") or "the authority refused a device code"),
                error=str(flow.get("error") or ""),
                url=self.authority,
            )
        return DeviceFlow(
            user_code=str(flow["user_code"]),
            verification_uri=str(flow.get("verification_uri") or flow.get("verification_url")),
            message=str(flow.get("message") or ""),
            expires_at=datetime.fromtimestamp(float(flow.get("expires_at", 0)), UTC),
            interval=int(flow.get("interval", 5)),
            raw=flow,
        )

    def finish_device_flow(self, flow: DeviceFlow) -> SignedIn:
        """Wait (polling the authority) until the user approved the code, or it expired
        or was cancelled."""
        app = self.application()
        with self._authority_calls(), self._checked_sign_in():
            result = app.acquire_token_by_device_flow(flow.raw)
            return self._signed_in(result)

    def start_auth_code_flow(
        self, redirect_uri: str = "http://localhost", *, login_hint: str | None = None
    ) -> AuthCodeFlow:
        """Start an auth-code sign-in (PKCE) whose redirect the caller receives."""
        app = self.application()
        with self._authority_calls():
            flow = app.initiate_auth_code_flow(
                self.scopes + self.extra_scopes,  # MSAL's extra_scopes_to_consent, by hand
                redirect_uri=redirect_uri,
                login_hint=login_hint or self.username,
                response_mode="form_post",
            )
        return AuthCodeFlow(str(flow["auth_uri"]), redirect_uri, str(flow["state"]), flow)

    def finish_auth_code_flow(self, flow: AuthCodeFlow, response: Mapping[str, str]) -> SignedIn:
        """Redeem the redirect's parameters (``code``, ``state``… or ``error``)."""
        app = self.application()
        with self._checked_sign_in():
            try:
                with self._authority_calls():
                    result = app.acquire_token_by_auth_code_flow(
                        flow.raw,
                        dict(response),
                        scopes=self.scopes if self.extra_scopes else None,  # for the CRM
                    )
            except ValueError as exc:  # MSAL: state mismatch, a reused flow
                raise SignInFailed(
                    f"the sign-in response does not belong to this sign-in: {exc}",
                    error="state_mismatch",
                    url=self.authority,
                ) from None
            return self._signed_in(result)

    def sign_in_with_auth_code(
        self,
        authorize: Callable[[str], Mapping[str, str]],
        *,
        redirect_uri: str = "http://localhost",
        login_hint: str | None = None,
    ) -> SignedIn:
        """An auth-code sign-in in one call: ``authorize(auth_uri)`` takes the user through
        the authority's pages and returns the redirect's parameters."""
        flow = self.start_auth_code_flow(redirect_uri, login_hint=login_hint)
        return self.finish_auth_code_flow(flow, authorize(flow.auth_uri))

    @contextmanager
    def _checked_sign_in(self) -> Iterator[None]:
        """A sign-in that fails leaves the token cache as it was: MSAL stores the tokens
        before some of its own checks of the id_token fail (and before ours)."""
        before = self.cache.serialize()
        try:
            yield
        except RuntimeError as exc:  # MSAL's id_token checks: nonce, issuer, expiry
            self.cache.deserialize(before)
            log.warning("sign-in refused: the id_token failed MSAL's checks")
            raise SignInFailed(
                f"the authority's answer did not pass the id_token checks: {exc}",
                error="invalid_id_token",
                url=self.authority,
            ) from None
        except SignInFailed:
            self.cache.deserialize(before)
            raise

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        """The id_token must be issued to this application (``aud``); MSAL no longer
        checks it (since 1.38)."""
        if not claims:
            return
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.client_id not in audiences:
            log.warning("sign-in refused: the id_token was issued to another application")
            raise SignInFailed(
                "the authority's id_token was issued to another application",
                error="invalid_id_token",
                url=self.authority,
            )

    def _signed_in(self, result: Mapping[str, Any]) -> SignedIn:
        if "error" in result:
            error = str(result.get("error") or "")
            log.warning("sign-in failed error=%s", error)
            raise SignInFailed(
                str(result.get("error_description") or error).splitlines()[0][:300],
                error=error,
                url=self.authority,
            )
        for key in ("access_token", "refresh_token", "id_token"):
            if result.get(key):
                self._tell_secret(str(result[key]))
        claims = result.get("id_token_claims") or {}
        self._check_audience(claims)
        self.cache.persist()  # a sign-in the keyring cannot keep must not look like success
        username = str(
            claims.get("preferred_username") or claims.get("upn") or claims.get("unique_name") or ""
        )
        with self._lock:
            self._renew = False
            if username:
                self.username = username
        expires_in = result.get("expires_in")
        expires_at = (
            datetime.fromtimestamp(time.time() + float(expires_in), UTC)
            if isinstance(expires_in, int | float | str) and str(expires_in).isdigit()
            else None
        )
        log.info("signed in user=%s authority=%s", username or "?", self.authority)
        return SignedIn(username, expires_at)

    # -- signing out ---------------------------------------------------------------------

    def sign_out(self, account: SignedInAccount | str | None = None) -> SignedInAccount | None:
        """Forget an account (default: this sign-in's) and its tokens, here and in the
        stored cache. When the authority publishes a ``revocation_endpoint`` the refresh
        token is revoked there first, best effort (a failure is logged, not raised).
        Returns the account removed (None: it was not signed in)."""
        with self._lock:
            if isinstance(account, str):
                wanted = account.lower()
                chosen = next((a for a in self.accounts() if a.username.lower() == wanted), None)
            else:
                chosen = account or self.account()
            if chosen is None:
                return None
            owned = {"home_account_id": chosen.home_account_id, "environment": chosen.environment}
            kinds = msal.TokenCache.CredentialType
            refresh_tokens = list(self.cache.search(kinds.REFRESH_TOKEN, query=owned))
            self._revoke([str(rt.get("secret") or "") for rt in refresh_tokens])
            for rt in refresh_tokens:
                self.cache.remove_rt(rt)
            for at in list(self.cache.search(kinds.ACCESS_TOKEN, query=owned)):
                self.cache.remove_at(at)
            for idt in list(self.cache.search(kinds.ID_TOKEN, query=owned)):
                self.cache.remove_idt(idt)
            for entry in list(self.cache.search(kinds.ACCOUNT, query=owned)):
                self.cache.remove_account(entry)
            self._persist()
            log.info("signed out user=%s authority=%s", chosen.username, self.authority)
            return chosen

    def openid_configuration_url(self) -> str:
        suffix = "/.well-known/openid-configuration"
        return self.authority + (suffix if is_adfs(self.authority) else "/v2.0" + suffix)

    def _revoke(self, refresh_tokens: Sequence[str]) -> None:
        tokens = [t for t in refresh_tokens if t]
        if not tokens:
            return
        try:
            with httpx.Client(verify=self._httpx_verify(), timeout=min(self.timeout, 10.0)) as http:
                config = http.get(self.openid_configuration_url()).json()
                endpoint = config.get("revocation_endpoint") if isinstance(config, dict) else None
                if not isinstance(endpoint, str) or not endpoint.lower().startswith("https://"):
                    return
                for token in tokens:
                    http.post(
                        endpoint,
                        data={
                            "token": token,
                            "token_type_hint": "refresh_token",
                            "client_id": self.client_id,
                        },
                    )
        except (httpx.HTTPError, ValueError) as exc:
            log.info("sign-out: revoking the refresh token failed error=%s", type(exc).__name__)

    def _httpx_verify(self) -> Any:
        if isinstance(self.verify, str):
            import ssl

            return ssl.create_default_context(cafile=self.verify)
        return self.verify

    # -- helpers -------------------------------------------------------------------------

    def _persist(self) -> None:
        try:
            self.cache.persist()
        except Exception as exc:  # the keyring failed: the sign-in still works in memory
            log.warning("token cache not saved error=%s", type(exc).__name__)

    def _tell_secret(self, secret: str) -> None:
        if self.on_secret is not None:
            self.on_secret(secret)


__all__ = [
    "DEFAULT_AUTHORITY",
    "DEFAULT_CLIENT_ID",
    "GRAPH",
    "GRAPH_MAIL_SCOPES",
    "GRAPH_SHARED_MAIL_SCOPES",
    "AuthCodeFlow",
    "DeviceFlow",
    "MicrosoftSignIn",
    "SignedIn",
    "SignedInAccount",
    "TokenSource",
    "graph_scopes",
    "is_adfs",
    "scope_for",
]
