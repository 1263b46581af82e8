"""The ``account`` commands: ``add`` (with the first Microsoft / AD FS sign-in, which finds the
authority or the environment), ``sign-in`` and ``sign-out``; each returns an exit code.

``add --microsoft365 --email you@contoso.com``: Outlook mail and Dynamics 365 with one sign-in
— the address finds the environments (discovery), the sign-in consents to the CRM and to
Microsoft Graph's mail permissions, and the profile gets the environment and ``graph:``."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.cli.context import CREDENTIALS, OFFLINE, OK, CliError, load_profile, warn_insecure
from core.cli.sign_in import (
    check_ca_file,
    mail_scopes,
    microsoft_sign_in,
    sign_in_again,
    token_cache,
)
from core.config.credentials import (
    ENV_VARS,
    CredentialsError,
    SecretKind,
    delete_secret,
    from_environment,
    set_secret,
)
from core.config.profiles import (
    GRAPH_SIGN_IN,
    OAUTH_KINDS,
    ProfileConfig,
    ProfileError,
    Profiles,
    account_name,
    graph_options,
    graph_url,
    is_graph,
    needs_mail_password,
    validate,
)
from core.crm import CrmClient
from core.crm.discovery import (
    Environment,
    OrgAddress,
    environments,
    parse_sign_in_input,
)
from core.crm.errors import (
    CrmAuthError,
    CrmCertificateError,
    CrmError,
    CrmUnavailable,
    SignInRequired,
)
from core.crm.signin import MicrosoftSignIn, SignedIn
from core.workspace.signin import WrongSignInKind, authority_of

#: Stands in for what a Microsoft sign-in finds (the org, the user) while the rest of the
#: profile is checked before the browser opens.
_PLACEHOLDER_URL = "https://crm.placeholder.invalid"
_PLACEHOLDER_USER = "someone@placeholder.invalid"
#: How long a browser sign-in may take before the command gives up.
BROWSER_TIMEOUT = 600.0


def account_add(args: argparse.Namespace) -> int:
    profiles = Profiles()
    name = args.profile or "default"
    mail_url = _mail_url(args)
    kind = args.sign_in or (GRAPH_SIGN_IN if is_graph(mail_url) else "password")
    oauth = kind in OAUTH_KINDS
    data = _profile_data(args, mail_url, kind, oauth)
    try:
        if profiles.config_path(name).exists() and not args.replace:
            raise CliError(
                f"Profile {name!r} exists already; pass --replace to overwrite it "
                "or --profile NAME for another one."
            )
        config = validate(data, profiles.config_path(name))
        check_ca_file(config, str(profiles.config_path(name)))
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    warn_insecure(mail_url, args.smtp_url or "", args.crm_url or "")
    if oauth:
        data.update(_sign_in_new(name, config, args))
    stored = _store_secrets(name, args, mail_url, data["crm_user"], oauth)
    if config.has_dav:
        stored.append(_store_dav_secret(name, config))
    try:
        profile = profiles.save(name, data)
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    where = "the system keyring" if any(stored) else "nowhere (taken from the environment)"
    if oauth and not stored:
        where = "the system keyring (the CRM sign-in)"
    print(f"Profile {name!r} saved ({profile.config_path}); passwords kept in {where}.")
    return OK


def _mail_url(args: argparse.Namespace) -> str:
    """The new profile's mail URL: ``--mail-url``; with ``--microsoft365``, ``graph:`` (or
    the Graph endpoint ``--mail-url`` gives). ``--shared-mailbox`` must go with Graph."""
    microsoft365 = getattr(args, "microsoft365", False)
    shared = getattr(args, "shared_mailbox", None) or []
    url = args.mail_url or ""
    if microsoft365:
        if args.sign_in and args.sign_in != GRAPH_SIGN_IN:
            raise CliError("Microsoft 365 signs in with a Microsoft account: leave out --sign-in.")
        if url and not is_graph(url):
            raise CliError(
                f"--microsoft365 reads the mailbox through Microsoft Graph, not {url!r}: "
                "leave out --mail-url (or give a graph:// endpoint)."
            )
        url = url or graph_url()
    elif not url:
        raise CliError("Give the mailbox with --mail-url, or use --microsoft365.")
    if shared and not is_graph(url):
        raise CliError("--shared-mailbox is for a Microsoft 365 mailbox (--microsoft365).")
    return url


def _profile_data(
    args: argparse.Namespace, mail_url: str, kind: str, oauth: bool
) -> dict[str, Any]:
    """The new profile's keys from the command line; for a Microsoft / AD FS sign-in, the
    placeholders stand in for the CRM and the user it finds."""
    if not args.crm_url and not (oauth and args.crm_user and "@" in args.crm_user):
        raise CliError(
            "Give the CRM's address with --crm-url (or --org-url)"
            + (", or your e-mail address with --email to find it." if oauth else ".")
        )
    if not args.crm_user and not oauth:
        raise CliError("Give the CRM user name with --crm-user.")
    data: dict[str, Any] = {
        "mail_url": mail_url,
        "crm_url": args.crm_url or _PLACEHOLDER_URL,
        "crm_user": args.crm_user or _PLACEHOLDER_USER,
        "crm_auth": kind,
    }
    for key, value in (
        ("crm_client_id", args.client_id),
        ("crm_authority", args.authority),
        ("crm_ca_file", args.ca_file),
        ("crm_discovery_url", args.discovery_url),
    ):
        if value:
            data[key] = value
    if args.mail_user:
        data["mail_user"] = args.mail_user
    if args.smtp_url:
        data["smtp_url"] = args.smtp_url
    for key in ("carddav_url", "caldav_url", "caldav_tasks_url", "dav_user"):
        value = getattr(args, key, "") or ""
        if value:
            data[key] = value
    if args.folder:
        data["folders"] = list(args.folder)
    shared = getattr(args, "shared_mailbox", None)
    if shared:
        data["extra_mailboxes"] = [a.strip() for a in shared]
    return data


def _store_secrets(
    name: str, args: argparse.Namespace, mail_url: str, crm_user: str, oauth: bool
) -> list[bool]:
    """Ask for and store the new profile's passwords; whether each was stored (not taken from
    the environment)."""
    stored: list[bool] = []
    try:
        if not oauth:
            stored.append(_store_secret(name, SecretKind.CRM, args.crm_user, "CRM"))
        if needs_mail_password(mail_url):
            mail_user = args.mail_user or crm_user
            stored.append(_store_secret(name, SecretKind.MAIL, mail_user, "mail"))
    except CredentialsError as exc:
        raise CliError(
            f"The passwords could not be stored, so profile {name!r} was not saved: {exc}",
            CREDENTIALS,
        ) from None
    return stored


def _store_dav_secret(name: str, config: ProfileConfig) -> bool:
    """Ask for and store the CalDAV/CardDAV password (whether it was stored)."""
    try:
        return _store_secret(name, SecretKind.DAV, account_name(config, "dav"), "CalDAV/CardDAV")
    except CredentialsError as exc:
        raise CliError(
            f"The passwords could not be stored, so profile {name!r} was not saved: {exc}",
            CREDENTIALS,
        ) from None


def _sign_in_new(name: str, config: ProfileConfig, args: argparse.Namespace) -> dict[str, str]:
    """Sign in for a new Microsoft / AD FS profile: find the authority (from the org's
    challenge) or the org (from the user's environments), sign in, check with WhoAmI.
    Returns the profile's ``crm_url``, ``crm_user`` and ``crm_authority``."""
    try:
        cache = token_cache(name)
    except CredentialsError as exc:
        raise CliError(f"The sign-in cannot be kept: {exc}", CREDENTIALS) from None
    authority = args.authority or config.crm_authority
    user = args.crm_user or ""
    with _sign_in_errors(name):
        if args.crm_url:
            target = parse_sign_in_input(args.crm_url)
            if not isinstance(target, OrgAddress):
                raise CliError(f"--crm-url expects the CRM's address, not {args.crm_url!r}.")
            org_url = target.url
            if not args.authority:
                authority = _authority_from_challenge(org_url, config)
            sign_in = microsoft_sign_in(
                config, name, org_url=org_url, authority=authority, username=user, cache=cache
            )
            signed = _interactive(sign_in, args, user)
        else:
            found, signed = _environments_of(name, config, args, authority, cache)
            org_url = _pick_environment(found, args.environment).url
            sign_in = microsoft_sign_in(
                config,
                name,
                org_url=org_url,
                authority=authority,
                username=signed.username or user,
                cache=cache,
            )
            try:
                sign_in.token()  # the same account, another resource: no second sign-in
            except SignInRequired:
                signed = _interactive(sign_in, args, user)
        username = signed.username or sign_in.username or user
        with CrmClient(org_url, sign_in.bearer_auth(), timeout=30, verify=config.crm_verify) as crm:
            me = crm.who_am_i()
        print(f"Signed in to {org_url} as {username} (CRM user {me.user_id}).")
        if config.mail_signs_in_with_microsoft:
            _check_mail_consent(sign_in, config)
    return {"crm_url": org_url, "crm_user": username, "crm_authority": authority}


def _check_mail_consent(sign_in: MicrosoftSignIn, config: ProfileConfig) -> None:
    """The same sign-in gives a token for the mailbox (Graph, or EWS with ``?auth=oauth``:
    the user, or the tenant's administrator, consented to the mail permissions): found now,
    not at the first sync."""
    what = "Microsoft Graph" if config.uses_graph_mail else "Exchange Web Services"
    scopes = mail_scopes(config)
    try:
        sign_in.token_for(scopes)
    except SignInRequired as exc:
        raise CliError(
            f"Signed in, but not allowed to read the mailbox through {what} "
            f"({', '.join(s.rsplit('/', 1)[1] for s in scopes)}): {exc}. Your administrator "
            "may have to consent to these permissions for the app.",
            CREDENTIALS,
        ) from None
    if not config.uses_graph_mail:
        print("Mail: Exchange through EWS, with the same sign-in.")
        return
    shared = graph_options(config.mail_url).get("mailbox")
    print(f"Mail: Microsoft 365 through Microsoft Graph{f' ({shared})' if shared else ''}.")
    if config.extra_mailboxes:
        print(f"Shared mailboxes: {', '.join(config.extra_mailboxes)}.")


def _authority_from_challenge(org_url: str, config: ProfileConfig) -> str:
    """The authority the org's 401 challenge names (``authority_of``), its refusals in the
    CLI's words."""
    try:
        return authority_of(org_url, config.crm_auth, config.crm_verify)
    except WrongSignInKind as exc:
        if exc.offered == "microsoft":
            message = f"{org_url} signs in at {exc.reason}, not AD FS: use --sign-in microsoft."
        elif exc.offered == "adfs":
            message = f"{org_url} signs in with AD FS ({exc.reason}): use --sign-in adfs."
        else:
            advice = " It offers Windows sign-in: use --sign-in windows." if exc.offered else ""
            message = f"{org_url} does not say where to sign in: {exc.reason}.{advice}"
        raise CliError(message) from None


def _environments_of(
    name: str, config: ProfileConfig, args: argparse.Namespace, authority: str, cache: Any
) -> tuple[list[Environment], SignedIn]:
    """Sign in for the Global Discovery Service and list the user's environments."""
    discovery = microsoft_sign_in(
        config,
        name,
        org_url=config.crm_discovery_url,
        authority=authority,
        username=args.crm_user,
        cache=cache,
    )
    signed = _interactive(discovery, args, args.crm_user)
    found = environments(discovery.token, config.crm_discovery_url, config.crm_verify)
    return found, signed


def _pick_environment(found: list[Environment], wanted: str | None) -> Environment:
    if not found:
        raise CliError("This account can reach no Dynamics 365 environment.")
    listing = "; ".join(f"{e.unique_name} ({e.friendly_name}, {e.url})" for e in found)
    if wanted:
        key = wanted.strip().lower().rstrip("/")
        for env in found:
            if key in (env.unique_name.lower(), env.friendly_name.lower(), env.url.lower()):
                return env
        raise CliError(f"No environment {wanted!r}. This account can reach: {listing}.")
    if len(found) == 1:
        return found[0]
    if not sys.stdin.isatty():
        raise CliError(f"Choose an environment with --environment NAME: {listing}.")
    for number, env in enumerate(found, start=1):
        print(f"  {number}. {env.friendly_name} — {env.unique_name} ({env.url})")
    answer = input(f"Environment [1-{len(found)}]: ").strip()
    if not answer.isdigit() or not 1 <= int(answer) <= len(found):
        raise CliError(f"{answer!r} is not one of 1-{len(found)}.")
    return found[int(answer) - 1]


def _interactive(sign_in: MicrosoftSignIn, args: argparse.Namespace, hint: str | None) -> SignedIn:
    """A sign-in with a device code (``--device-code``) or in the system browser."""
    if getattr(args, "device_code", False):
        flow = sign_in.start_device_flow()
        print(flow.message or f"Open {flow.verification_uri} and enter {flow.user_code}.")
        sys.stdout.flush()
        try:
            return sign_in.finish_device_flow(flow)
        except KeyboardInterrupt:
            flow.cancel()
            raise
    print("Opening the system browser to sign in…", file=sys.stderr)

    def no_browser(url: str) -> None:
        print(
            "No browser could be opened here. Open this address in a browser on this "
            f"computer, or run again with --device-code:\n{url}",
            file=sys.stderr,
        )

    return sign_in.sign_in_interactive(
        hint or None, timeout=BROWSER_TIMEOUT, on_no_browser=no_browser
    )


@contextmanager
def _sign_in_errors(profile: str) -> Iterator[None]:
    """Sign-in failures as CLI errors with their exit codes."""
    try:
        yield
    except CrmCertificateError as exc:
        raise CliError(
            f"The certificate is not trusted ({exc}); give the CA with --ca-file.", OFFLINE
        ) from None
    except CrmUnavailable as exc:
        raise CliError(f"Not reachable now: {exc}", OFFLINE) from None
    except CrmAuthError as exc:
        raise CliError(f"Sign-in failed: {exc}", CREDENTIALS) from None
    except CredentialsError as exc:
        raise CliError(str(exc), CREDENTIALS) from None
    except (CrmError, ProfileError, ValueError) as exc:
        raise CliError(str(exc)) from None


def account_sign_in(args: argparse.Namespace) -> int:
    """Sign in again (Microsoft / AD FS profiles): the browser, or a device code."""
    _, profile = load_profile(args.profile)
    cfg = profile.config
    if not cfg.uses_oauth:
        raise CliError(
            f"Profile {profile.name!r} signs in with a password"
            f"{' (Windows sign-in)' if cfg.crm_auth == 'windows' else ''}: "
            "set it with 'trackbox account add --replace'."
        )
    with _sign_in_errors(profile.name):
        sign_in = microsoft_sign_in(cfg, profile.name)
        signed = _interactive(sign_in, args, cfg.crm_user)
        if signed.username and signed.username.lower() != cfg.crm_user.lower():
            sign_in.sign_out(signed.username)
            raise CliError(
                f"Signed in as {signed.username}, but profile {profile.name!r} is "
                f"{cfg.crm_user}'s: signed out again. Sign in as {cfg.crm_user}.",
                CREDENTIALS,
            )
    print(f"Signed in to {cfg.crm_url} as {signed.username or cfg.crm_user}.")
    return OK


def account_sign_out(args: argparse.Namespace) -> int:
    """Forget the CRM sign-in (tokens, or the stored password). The queue is kept."""
    _, profile = load_profile(args.profile)
    cfg = profile.config
    try:
        if cfg.uses_oauth:
            with _sign_in_errors(profile.name):
                removed = microsoft_sign_in(cfg, profile.name).sign_out()
            if removed is None:
                print(f"Nobody was signed in to the CRM in profile {profile.name!r}.")
            else:
                print(
                    f"Signed out {removed.username}: its tokens are gone from the keyring. "
                    "Queued CRM operations wait for the next sign-in."
                )
            return OK
        delete_secret(profile.name, SecretKind.CRM, account_name(cfg, "crm"))
    except CredentialsError as exc:
        raise CliError(str(exc), CREDENTIALS) from None
    print(f"The CRM password of {cfg.crm_user} is forgotten; 'trackbox account add' sets it.")
    return OK


def account_mailboxes(args: argparse.Namespace) -> int:
    """List, add or remove the shared mailboxes of a Microsoft 365 profile. Adding the first
    one needs the shared-mailbox permissions: checked now (exit 4, "sign in again", when the
    sign-in has not consented to them; the profile is saved all the same)."""
    profiles, profile = load_profile(args.profile)
    cfg = profile.config
    extras = _edited_extras(list(cfg.extra_mailboxes), args.add or (), args.remove or ())
    code = OK
    if extras != list(cfg.extra_mailboxes):
        try:
            profile = profiles.save(profile.name, {**cfg.to_dict(), "extra_mailboxes": extras})
        except ProfileError as exc:
            raise CliError(str(exc)) from None
        removed = [a for a in cfg.extra_mailboxes if a not in extras]
        _forget_mailboxes(profile.store_path, removed)
        if mail_scopes(profile.config) != mail_scopes(cfg):
            code = _consented(profile.name, profile.config)
    shown = ", ".join(profile.config.extra_mailboxes) or "none"
    print(f"Shared mailboxes of profile {profile.name!r}: {shown}.")
    return code


def _edited_extras(extras: list[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    for address in remove:
        found = [a for a in extras if a.casefold() == address.strip().casefold()]
        if not found:
            raise CliError(f"{address!r} is not a shared mailbox of this profile.")
        extras.remove(found[0])
    for address in add:
        if address.strip().casefold() not in {a.casefold() for a in extras}:
            extras.append(address.strip())
    return extras


def _forget_mailboxes(store_path: Path, addresses: list[str]) -> None:
    """A removed mailbox's folders and mail leave the local store (tracked state stays: it
    is kept by Message-ID, and the CRM has the e-mails)."""
    if not addresses or not store_path.exists():
        return
    from core.store import Store

    with Store.open(store_path) as store:
        paths = [
            f.path
            for f in store.folders()
            if any(f.path == a or f.path.startswith(a + "/") for a in addresses)
        ]
        store.remove_folders(paths)


def _consented(name: str, config: ProfileConfig) -> int:
    """Whether the profile's sign-in gives a token for its (new) mail scopes."""
    try:
        with microsoft_sign_in(config, name) as sign_in:
            sign_in.token_for(mail_scopes(config))
    except (SignInRequired, CrmAuthError) as exc:
        print(
            f"trackbox: the sign-in has not consented to the shared-mailbox permissions "
            f"({exc}): {sign_in_again(name)}",
            file=sys.stderr,
        )
        return CREDENTIALS
    except (CrmUnavailable, CredentialsError) as exc:
        print(f"trackbox: the permissions could not be checked now: {exc}", file=sys.stderr)
        return OFFLINE
    return OK


def _store_secret(profile: str, kind: SecretKind, user: str, label: str) -> bool:
    if from_environment(kind) is not None:
        return False  # scripts and CI: the variable is used by every command, nothing stored
    if not sys.stdin.isatty():
        raise CliError(
            f"No terminal to ask for the {label} password of {user!r}: set {ENV_VARS[kind.value]}.",
            CREDENTIALS,
        )
    secret = getpass.getpass(f"{label} password for {user}: ")
    if not secret:
        raise CliError(f"An empty {label} password was given.", CREDENTIALS)
    return set_secret(profile, kind, user, secret)


__all__ = [
    "BROWSER_TIMEOUT",
    "account_add",
    "account_mailboxes",
    "account_sign_in",
    "account_sign_out",
]
