"""The steps of a Microsoft / AD FS sign-in that the desktop runs on its workers: the same as
``trackbox account add --sign-in microsoft|adfs`` and ``account sign-in|sign-out``, as plain
functions (the CLI's own helpers print and are private to it).

The caller makes the ``MicrosoftSignIn`` objects (``core.cli.sign_in.microsoft_sign_in``, the
one place that joins a profile, its keyring cache and MSAL) and says how the user takes part
(``Interact``: the system browser, or a device code the GUI shows). Nothing here is Qt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from core.crm import CrmClient
from core.crm.discovery import AuthorityHint, Environment, challenge, environments
from core.crm.errors import AuthChallengeError, SignInRequired
from core.crm.signin import MicrosoftSignIn, SignedIn, SignInAuth
from core.crm.token_cache import PersistentTokenCache
from core.domain.problems import Problem, SyncProblem

log = logging.getLogger(__name__)

#: The user's part of a sign-in (browser or device code), run on the worker.
Interact = Callable[[MicrosoftSignIn], SignedIn]
#: Makes the sign-in for a resource (an org URL, or the discovery service) at an authority.
Signer = Callable[[str, str], MicrosoftSignIn]
Verify = str | bool


class WrongSignInKind(Exception):
    """The organisation signs in another way than the one chosen: ``offered`` is the kind it
    asks for (``windows``, ``adfs``, ``microsoft``) or ``""`` when its answer names none."""

    def __init__(self, org_url: str, chosen: str, offered: str, reason: str = "") -> None:
        super().__init__(f"{org_url} does not sign in with {chosen}: {reason or offered}")
        self.org_url = org_url
        self.chosen = chosen
        self.offered = offered
        self.reason = reason


class WrongAccount(Exception):
    """The browser signed in as someone else than the profile's user (signed out again)."""

    def __init__(self, signed_in: str, expected: str) -> None:
        super().__init__(f"signed in as {signed_in}, expected {expected}")
        self.signed_in = signed_in
        self.expected = expected


@dataclass(frozen=True, slots=True)
class Connected:
    """A finished sign-in to an organisation: where, who, at which authority, and the CRM's
    user id (WhoAmI answered with the new token)."""

    org_url: str
    username: str
    authority: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Environments:
    """The environments an e-mail address can reach, after signing in for discovery."""

    found: tuple[Environment, ...]
    username: str
    authority: str


@dataclass(frozen=True, slots=True)
class SignInStatus:
    """What Options › Accounts shows: the kind, the account (None: nobody signed in) and
    when the access token expires — never the token."""

    kind: str
    username: str | None
    expires_at: datetime | None


def authority_of(org_url: str, kind: str, verify: Verify) -> str:
    """The authority an organisation's 401 challenge names, checked against ``kind``.
    WrongSignInKind when it offers Windows sign-in only, or the other OAuth kind."""
    try:
        hint: AuthorityHint = challenge(org_url, verify)
    except AuthChallengeError as exc:
        windows = {"ntlm", "negotiate"} & {s.lower() for s in exc.schemes}
        raise WrongSignInKind(org_url, kind, "windows" if windows else "", exc.reason) from None
    if kind == "adfs" and not hint.is_adfs:
        raise WrongSignInKind(org_url, kind, "microsoft", hint.authority)
    if kind == "microsoft" and hint.is_adfs:
        raise WrongSignInKind(org_url, kind, "adfs", hint.authority)
    return hint.authority


def who_am_i(sign_in: MicrosoftSignIn, verify: Verify) -> str:
    """The CRM user id the new sign-in is (it works end to end)."""
    with CrmClient(sign_in.org_url, sign_in.bearer_auth(), timeout=30, verify=verify) as crm:
        return crm.who_am_i().user_id


def connect_org(
    signer: Signer, org_url: str, authority: str, interact: Interact, verify: Verify
) -> Connected:
    """Sign in to ``org_url``: silently when the cache already holds the account (after a
    discovery sign-in), else with the user; then WhoAmI."""
    sign_in = signer(org_url, authority)
    try:
        sign_in.token()
        username = sign_in.username or ""
    except SignInRequired:
        username = interact(sign_in).username
    try:
        user_id = who_am_i(sign_in, verify)
    finally:
        sign_in.close()
    return Connected(org_url, username or sign_in.username or "", authority, user_id)


def find_environments(
    signer: Signer, discovery_url: str, authority: str, interact: Interact, verify: Verify
) -> Environments:
    """Sign in for the Global Discovery Service and list the user's environments."""
    discovery = signer(discovery_url, authority)
    try:
        signed = interact(discovery)
        found = environments(discovery.token, discovery_url, verify)
    finally:
        discovery.close()
    return Environments(tuple(found), signed.username or discovery.username or "", authority)


def keep_cache(cache: PersistentTokenCache, store: PersistentTokenCache) -> None:
    """Copy a sign-in made before the profile existed into the profile's cache (the
    keyring); CredentialsError when the keyring cannot keep it."""
    store.deserialize(cache.serialize())
    store.has_state_changed = True
    store.persist()


def status_of(sign_in: MicrosoftSignIn) -> SignInStatus:
    """The account and its token's expiry, from the cache alone (works offline)."""
    account = sign_in.account()
    expires = sign_in.expires_at() if account is not None else None
    return SignInStatus(sign_in.kind, account.username if account else None, expires)


def sign_in_again(sign_in: MicrosoftSignIn, interact: Interact, expected: str) -> SignedIn:
    """Sign in again as the profile's user; another account is signed out again
    (WrongAccount), as ``trackbox account sign-in`` does."""
    signed = interact(sign_in)
    if signed.username and expected and signed.username.lower() != expected.lower():
        sign_in.sign_out(signed.username)
        sign_in.username = expected
        raise WrongAccount(signed.username, expected)
    return signed


def needs_sign_in_again(problems: Iterable[SyncProblem], uses_oauth: bool) -> bool:
    """Whether only a new Microsoft / AD FS sign-in helps: an expired or revoked sign-in,
    or any refused sign-in of an OAuth profile (the CRM turned the token down)."""
    kinds = {p.problem for p in problems}
    if Problem.CRM_SIGN_IN_EXPIRED in kinds:
        return True
    return uses_oauth and Problem.CRM_SIGN_IN in kinds


def workspace_sign_in(auth: object) -> MicrosoftSignIn | None:
    """The MicrosoftSignIn behind a CRM client's auth (``MicrosoftSignIn.bearer_auth``), so
    that a new sign-in lands in the cache the open workspace renews from."""
    return auth.sign_in if isinstance(auth, SignInAuth) else None


__all__ = [
    "Connected",
    "Environments",
    "Interact",
    "SignInStatus",
    "Signer",
    "WrongAccount",
    "WrongSignInKind",
    "authority_of",
    "connect_org",
    "find_environments",
    "keep_cache",
    "needs_sign_in_again",
    "sign_in_again",
    "status_of",
    "who_am_i",
    "workspace_sign_in",
]
