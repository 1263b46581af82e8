"""How a profile signs in to its CRM, built in one place for the commands, ``diagnose`` and the
desktop: :func:`crm_auth_for` turns a profile's ``crm_auth`` into the Web API client's auth.

It lives here, not in ``core.crm``, because it joins the two adapters the layering keeps apart:
the profile and the keyring (``core.config``) and the CRM client and MSAL (``core.crm``).

- ``password``: HTTP Basic with the CRM password from the environment or the keyring;
- ``windows``: NTLM/Negotiate (``NegotiateAuth``) with the same password;
- ``microsoft`` / ``adfs``: MSAL (``MicrosoftSignIn``) with the profile's token cache in the
  keyring; the bearer token is renewed silently, ``SignInRequired`` when it cannot be.
"""

from __future__ import annotations

import os

from core.config import logs
from core.config.credentials import SecretKind, SecretMissing, TokenCacheStore, get_secret
from core.config.profiles import ProfileConfig, ProfileConfigError, account_name
from core.crm import BasicAuth, CrmAuth, CrmClient
from core.crm.auth import NegotiateAuth
from core.crm.signin import MicrosoftSignIn
from core.crm.token_cache import PersistentTokenCache

#: What ``trackbox`` tells a user whose Microsoft / AD FS sign-in has to be done again.
SIGN_IN_AGAIN = "sign in again: trackbox account sign-in"


def sign_in_again(profile_name: str) -> str:
    """The remedy line, naming the profile when it is not the default one."""
    suffix = f" --profile {profile_name}" if profile_name != "default" else ""
    return SIGN_IN_AGAIN + suffix


def check_ca_file(config: ProfileConfig, where: str = "<profile>") -> None:
    """ProfileConfigError when ``crm_ca_file`` names no readable file."""
    verify = config.crm_verify
    if isinstance(verify, str) and not os.access(verify, os.R_OK):
        raise ProfileConfigError(
            where,
            "crm_ca_file",
            config.crm_ca_file,
            "No readable file there: give the PEM file of the CA that signed the CRM's "
            "certificate.",
        )


def token_cache(profile_name: str) -> PersistentTokenCache:
    """The profile's MSAL token cache, read from the keyring (CredentialsUnavailable when
    there is none)."""
    return PersistentTokenCache(TokenCacheStore(profile_name))


def microsoft_sign_in(
    config: ProfileConfig,
    profile_name: str,
    *,
    org_url: str | None = None,
    resource: str | None = None,
    authority: str | None = None,
    username: str | None = None,
    cache: PersistentTokenCache | None = None,
) -> MicrosoftSignIn:
    """MSAL for the profile's CRM (or ``org_url``/``resource``: another resource, such as the
    discovery service), its client id, authority and CA file, with its keyring cache."""
    check_ca_file(config)
    return MicrosoftSignIn(
        org_url or config.crm_url,
        client_id=config.crm_client_id,
        authority=authority or config.crm_authority,
        verify=config.crm_verify,
        cache=cache if cache is not None else token_cache(profile_name),
        username=username if username is not None else config.crm_user,
        resource=resource,
        on_secret=logs.register_secret,
    )


def crm_auth_for(
    config: ProfileConfig,
    profile_name: str,
    secret: str | None = None,
    *,
    interactive: bool = False,
) -> CrmAuth:
    """The Web API client's auth for a profile. ``secret``: the CRM password (password and
    windows; default: from the environment or the keyring, SecretMissing when there is
    none). ``interactive``: when nobody is signed in (microsoft, adfs), sign in in the
    browser now instead of leaving it to the first request's SignInRequired."""
    if config.uses_oauth:
        sign_in = microsoft_sign_in(config, profile_name)
        if interactive and sign_in.account() is None:
            sign_in.sign_in_interactive(config.crm_user)
        return sign_in.bearer_auth()
    user = account_name(config, "crm")
    if secret is None:
        secret = get_secret(profile_name, SecretKind.CRM, user)
        if not secret:
            raise SecretMissing(profile_name, SecretKind.CRM.value, user)
    logs.register_secret(secret)
    if config.crm_auth == "windows":
        return NegotiateAuth(config.crm_user, secret)
    return BasicAuth(config.crm_user, secret)


def crm_client_for(config: ProfileConfig, auth: CrmAuth, *, timeout: float = 30) -> CrmClient:
    """The Web API client of a profile's CRM, trusting its CA file when it has one."""
    check_ca_file(config)
    return CrmClient(config.crm_url, auth, timeout=timeout, verify=config.crm_verify)


__all__ = [
    "SIGN_IN_AGAIN",
    "check_ca_file",
    "crm_auth_for",
    "crm_client_for",
    "microsoft_sign_in",
    "sign_in_again",
    "token_cache",
]
