"""How a profile signs in to its CRM, built in one place for the commands, ``diagnose`` and the
desktop: :func:`crm_auth_for` turns a profile's ``crm_auth`` into the Web API client's auth.

It lives here, not in ``core.crm``, because it joins the two adapters the layering keeps apart:
the profile and the keyring (``core.config``) and the CRM client and MSAL (``core.crm``).

- ``password``: HTTP Basic with the CRM password from the environment or the keyring;
- ``windows``: NTLM/Negotiate (``NegotiateAuth``) with the same password;
- ``microsoft`` / ``adfs``: MSAL (``MicrosoftSignIn``) with the profile's token cache in the
  keyring; the bearer token is renewed silently, ``SignInRequired`` when it cannot be.

A Microsoft 365 mailbox (``mail_url = "graph:"``) has no password either: the same sign-in
consents to Graph's mail scopes (:func:`mail_scopes`) and :func:`open_mail` gives the Graph
backend its tokens from the same account and cache; a token only a new sign-in can give is a
:class:`MailSignInRequired` — a mail error that is classified, reported and exits as the
expired sign-in it is ("sign in again").
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from typing import Any

from core.config import logs
from core.config.credentials import SecretKind, SecretMissing, TokenCacheStore, get_secret
from core.config.profiles import ProfileConfig, ProfileConfigError, account_name, graph_options
from core.crm import BasicAuth, CrmAuth, CrmAuthError, CrmClient, CrmUnavailable
from core.crm.auth import NegotiateAuth
from core.crm.errors import SignInRequired
from core.crm.signin import (
    GRAPH_MAIL_SCOPES,
    GRAPH_SHARED_MAIL_SCOPES,
    MicrosoftSignIn,
    SignInAuth,
    TokenSource,
)
from core.crm.token_cache import PersistentTokenCache
from core.mail import MailAuthError, MailBackend, MailUnavailable, open_backend

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
        extra_scopes=mail_scopes(config),
    )


def mail_scopes(config: ProfileConfig) -> tuple[str, ...]:
    """The mail scopes the profile's sign-in consents to besides the CRM's: none for a
    mailbox with a password; Exchange Online's EWS permission for ``?auth=oauth``; for Graph
    the user's own mail, plus the shared-mailbox permissions for ``graph:?mailbox=…`` or
    ``extra_mailboxes``."""
    if not config.mail_signs_in_with_microsoft:
        return ()
    if not config.uses_graph_mail:
        from core.mail.ews_auth import ews_scope  # exchangelib: only for such a profile

        return (ews_scope(),)
    shared = "mailbox" in graph_options(config.mail_url) or bool(config.extra_mailboxes)
    return GRAPH_MAIL_SCOPES + (GRAPH_SHARED_MAIL_SCOPES if shared else ())


class MailSignInRequired(MailAuthError, SignInRequired):
    """No Graph token without the user (revoked, expired, never consented): a mail error
    where the mailbox is being read (the sync goes on without it), and the expired sign-in
    it is everywhere it is classified (``core.sync.problems``: "sign in again", the
    credentials exit code, the window's sign-in prompt)."""

    def __init__(self, cause: SignInRequired) -> None:
        MailAuthError.__init__(self, "no Graph token: sign in again", server_says=cause.message)
        self.reason = cause.reason
        self.username = cause.username
        self.url = cause.url

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.detail


class MailTokenSource:
    """A mailbox's ``token`` callable (Graph, EWS with ``?auth=oauth``) over a sign-in's
    :class:`TokenSource`, with
    the sign-in's errors as mail errors: SignInRequired as :class:`MailSignInRequired`, an
    unreachable authority as MailUnavailable (offline, not a refusal), any other refusal as
    MailAuthError."""

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def __call__(self) -> str:
        try:
            return self.source()
        except SignInRequired as exc:
            raise MailSignInRequired(exc) from exc
        except CrmUnavailable as exc:
            raise MailUnavailable(
                "no mail token: the sign-in authority is not reachable", server_says=str(exc)
            ) from exc
        except CrmAuthError as exc:
            raise MailAuthError("no mail token", server_says=str(exc)) from exc


def graph_verify(config: ProfileConfig) -> ssl.SSLContext | bool:
    """What the Graph backend verifies the endpoint's certificate with: the profile's CA
    file (``crm_ca_file``: a private CA or a TLS-inspecting proxy), else the system's CAs."""
    verify = config.crm_verify
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


def open_mail(
    config: ProfileConfig,
    profile_name: str,
    *,
    password: str = "",
    sign_in: MicrosoftSignIn | None = None,
) -> MailBackend:
    """The profile's mailbox: a Graph mailbox with tokens from ``sign_in`` (default: the
    profile's own, from its keyring cache), any other with ``password`` (and SMTP for IMAP).
    Raises MailError (MailSignInRequired when nobody is signed in), ProfileError,
    CredentialsError."""
    if config.mail_signs_in_with_microsoft:
        signer = sign_in if sign_in is not None else microsoft_sign_in(config, profile_name)
        tokens = MailTokenSource(signer.token_source(mail_scopes(config)))
        if config.uses_graph_mail:
            return _open_graph(config, tokens)
        return open_backend(config.mail_url, user=account_name(config, "mail"), token=tokens)
    options: dict[str, Any] = {}
    if config.smtp_url and config.mail_url.split(":", 1)[0].lower().startswith("imap"):
        options["smtp_url"] = config.smtp_url
    user = account_name(config, "mail")
    return open_backend(config.mail_url, user=user, password=password, **options)


def _open_graph(config: ProfileConfig, tokens: MailTokenSource) -> MailBackend:
    """The Graph mailbox; with ``extra_mailboxes``, one backend over it and them
    (:class:`~core.mail.multi.MultiMailbox`: each under a folder named by its address,
    opened on first use, with the same tokens)."""
    verify = graph_verify(config)
    primary = open_backend(config.mail_url, token=tokens, verify=verify)
    if not config.extra_mailboxes:
        return primary
    from core.mail.multi import MultiMailbox

    def opener(address: str) -> Callable[[], MailBackend]:
        return lambda: open_backend(config.mail_url, token=tokens, verify=verify, mailbox=address)

    return MultiMailbox(primary, {a: opener(a) for a in config.extra_mailboxes})


def sign_in_of(auth: CrmAuth) -> MicrosoftSignIn | None:
    """The MicrosoftSignIn behind a CRM auth (None for a password or Windows sign-in)."""
    return auth.sign_in if isinstance(auth, SignInAuth) else None


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
    "MailTokenSource",
    "MailSignInRequired",
    "check_ca_file",
    "crm_auth_for",
    "crm_client_for",
    "graph_verify",
    "mail_scopes",
    "microsoft_sign_in",
    "open_mail",
    "sign_in_again",
    "sign_in_of",
    "token_cache",
]
