"""``trackbox-crm``: serve, seed, manage users and registered applications."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

from .storage import Storage

if TYPE_CHECKING:
    from starlette.middleware import Middleware

    from .limits import Limits
    from .tls import TlsFiles

    #: What ``add_subparsers`` returns: where each subcommand's parser is added.
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

SERVE_HELP = """\
Run the Web API server. The first line on standard output is the root URL once it listens
(https://... with TLS); with --tls-self-signed the second line is the CA certificate file
clients verify the server with.

HTTPS: --tls-cert FILE --tls-key FILE (PEM; both or neither), or --tls-self-signed DIR (a new
throwaway CA and a loopback certificate written to DIR).

Behind a reverse proxy, the URLs the server writes (@odata.nextLink, @odata.deltaLink,
@odata.context, OData-EntityId, Location) must carry the scheme and host the client used:
either --public-url https://crm.example/ (fixed), or --forwarded-allow-ips with the proxy's
address(es) to honour its Forwarded / X-Forwarded-Proto / X-Forwarded-Host headers (ignored
from anyone else). A malformed Host or forwarded host is answered with 400.

Service protection limits (Dataverse's, per user, on /api/data only): --limits off (the
default: a local emulator serves benchmarks and imports that would pass Dataverse's 6,000
requests per 300 s), --limits dataverse (Dataverse's own: requests=6000, window=300,
execution=1200, concurrent=52), or --limits requests=N,concurrent=N,window=SECONDS,
execution=SECONDS (any of them; the others keep Dataverse's values), e.g.
--limits requests=20,window=1. Over a limit the answer is 429 with Retry-After and
Dataverse's error body.
"""

LIMITS_OFF = "off"
LIMITS_DATAVERSE = "dataverse"


def _serve_limits(text: str | None) -> Limits | None:
    """The limits ``--limits`` asks for (None: off); raises
    :class:`~crmserver.limits.LimitsError` naming the part that is wrong."""
    from .limits import Limits, parse_limits

    value = LIMITS_OFF if text is None else text.strip()
    if value.lower() == LIMITS_OFF:
        return None
    if value.lower() == LIMITS_DATAVERSE:
        return Limits()
    return parse_limits(value)


def _serve_tls(args: argparse.Namespace) -> TlsFiles | None:
    """The TLS files the options ask for (a new throwaway CA for ``--tls-self-signed``);
    raises :class:`UsageError` or :class:`~crmserver.tls.TlsFilesError`."""
    from .tls import LOOPBACK_NAMES, TlsFiles, check_tls_files, make_throwaway_ca

    if args.tls_self_signed and (args.tls_cert or args.tls_key):
        raise UsageError("--tls-self-signed cannot be combined with --tls-cert/--tls-key")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together: give both or neither")
    if args.tls_cert:
        tls = TlsFiles(cert=args.tls_cert, key=args.tls_key)
    elif args.tls_self_signed:
        wildcard = args.host in ("", "0.0.0.0", "::") or args.host in LOOPBACK_NAMES
        names = LOOPBACK_NAMES if wildcard else (args.host, *LOOPBACK_NAMES)
        tls = make_throwaway_ca(args.tls_self_signed, names)
    else:
        return None
    check_tls_files(tls)
    return tls


class UsageError(Exception):
    """Options that do not go together; ``message`` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import Settings, create_app
    from .forwarded import ProxySettingError, check_proxy_settings
    from .limits import LimitsError
    from .runner import listen, root_url, server_config
    from .tls import TlsFilesError

    owner_only = tuple(n.strip() for n in (args.owner_only or "").split(",") if n.strip())
    try:
        limits = _serve_limits(args.limits)
        settings = Settings(db_path=args.db, seed=args.seed, owner_only=owner_only)
        check_proxy_settings(args.public_url, args.forwarded_allow_ips)
        tls = _serve_tls(args)
    except LimitsError as exc:
        print(
            f"error: --limits {args.limits!r}: {exc}. Expected off, dataverse, or "
            "requests=N,concurrent=N,window=SECONDS,execution=SECONDS (any of them)",
            file=sys.stderr,
        )
        return 2
    except ProxySettingError as exc:
        option = {"public_url": "--public-url", "forwarded_allow_ips": "--forwarded-allow-ips"}
        print(f"error: {option[exc.setting]} {exc.value!r}: {exc.reason}", file=sys.stderr)
        return 2
    except TlsFilesError as exc:
        print(f"error: TLS file {exc.path}: {exc.reason}", file=sys.stderr)
        return 2
    except (UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings, middleware=_limits_middleware(limits))
    config = server_config(
        app,
        tls=tls,
        public_url=args.public_url,
        forwarded_allow_ips=args.forwarded_allow_ips,
        log_level=args.log_level,
        access_log=True,
    )
    sock = listen(args.host, args.port)  # connections queue now, so the printed URL works
    host, port = sock.getsockname()[:2]
    url = root_url(host, port, "https" if tls else "http")
    print(url, flush=True)
    if args.tls_self_signed and tls is not None and tls.ca:
        print(tls.ca, flush=True)
        print(f"clients verify the server with the CA certificate {tls.ca}", file=sys.stderr)
    public = args.public_url.rstrip("/") if args.public_url else url
    print(f"Web API: {public}/api/data/v9.2/", file=sys.stderr, flush=True)
    if limits is not None:
        print(
            f"service protection limits: {limits.requests} requests and "
            f"{limits.execution:g} s of execution per {limits.window:g} s, "
            f"{limits.concurrent} at once (per user)",
            file=sys.stderr,
            flush=True,
        )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _limits_middleware(limits: Limits | None) -> list[Middleware]:
    from starlette.middleware import Middleware

    from .limits import ServiceProtection

    return [] if limits is None else [Middleware(ServiceProtection, limits=limits)]


def _seed(args: argparse.Namespace) -> int:
    from .seed import seed_bulk, seed_demo

    storage = Storage(args.db)
    started = time.perf_counter()
    if args.demo:
        seed_demo(storage)
    counts = seed_bulk(
        storage,
        accounts=args.accounts,
        contacts=args.contacts,
        leads=args.leads,
        users=args.users,
        opportunities=args.opportunities,
        incidents=args.incidents,
    )
    storage.close()
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    print(f"seeded {summary or 'nothing'} in {time.perf_counter() - started:.1f} s")
    return 0


def _read_secret(args: argparse.Namespace, what: str) -> str:
    if not args.password_stdin:
        print(f"error: pass the {what} on standard input with --password-stdin", file=sys.stderr)
        raise SystemExit(2)
    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        print(f"error: the {what} is empty", file=sys.stderr)
        raise SystemExit(2)
    return secret


def _user_add(args: argparse.Namespace) -> int:
    from .seed import add_user

    password = _read_secret(args, "password")
    first, _, last = args.name.strip().rpartition(" ")
    if not first:
        first, last = last, ""
    storage = Storage(args.db)
    try:
        uid = add_user(
            storage, first=first, last=last, email=args.email, password=password, admin=args.admin
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        storage.close()
    print(uid)
    return 0


def _user_list(args: argparse.Namespace) -> int:
    storage = Storage(args.db)
    for row in storage.query(
        "SELECT systemuserid, fullname, internalemailaddress, "
        "tbx_isadministrator, isdisabled FROM systemuser "
        "ORDER BY internalemailaddress"
    ):
        flags = ("admin " if row["tbx_isadministrator"] else "") + (
            "disabled" if row["isdisabled"] else ""
        )
        print(
            f"{row['systemuserid']}  {row['internalemailaddress']:<40} {row['fullname']}"
            f"{'  [' + flags.strip() + ']' if flags.strip() else ''}"
        )
    storage.close()
    return 0


def _app_add(args: argparse.Namespace) -> int:
    from .auth import hash_password

    secret = _read_secret(args, "client secret")
    storage = Storage(args.db)
    user = storage.scalar(
        "SELECT systemuserid FROM systemuser WHERE internalemailaddress = ? COLLATE NOCASE"
        " OR systemuserid = lower(?)",
        (args.user, args.user),
    )
    if user is None:
        print(f"error: no user with e-mail or id {args.user}", file=sys.stderr)
        storage.close()
        return 1
    storage.add_application(args.client_id, hash_password(secret), user, args.name or "")
    if args.graph_role:  # the tenant admin's consent to Graph application permissions
        storage.grant_app_roles(args.client_id, "https://graph.microsoft.com", args.graph_role)
    storage.close()
    print(f"application {args.client_id} acts as {args.user}")
    return 0


def _add_serve(sub: Subcommands) -> None:
    """``serve``: the database, where to listen, and who may read what."""
    serve = sub.add_parser(
        "serve",
        help="run the Web API server (HTTP or HTTPS)",
        description=SERVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--db", required=True, help="SQLite file of the organisation")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5555, help="0 picks a free port")
    serve.add_argument("--seed", choices=["demo"], help="seed an empty database")
    serve.add_argument("--log-level", default="warning")
    serve.add_argument(
        "--owner-only",
        metavar="ENTITIES",
        help="comma-separated user-owned entities (e.g. lead,opportunity) that "
        "only their owner may read",
    )
    _add_serve_network(serve)
    serve.set_defaults(func=_serve)


def _add_serve_network(serve: argparse.ArgumentParser) -> None:
    """How ``serve`` meets its clients: TLS, a reverse proxy in front, service protection."""
    serve.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate")
    serve.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
    serve.add_argument(
        "--tls-self-signed",
        metavar="DIR",
        help="serve HTTPS with a new throwaway CA written to DIR; prints the CA file",
    )
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="the root clients use (behind a reverse proxy), e.g. https://crm.example/",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="LIST",
        help="comma-separated proxy IPs or networks (or *) whose Forwarded / "
        "X-Forwarded-Proto / X-Forwarded-Host headers are honoured; default: nobody",
    )
    serve.add_argument(
        "--limits",
        metavar="LIMITS",
        default=LIMITS_OFF,
        help="Dataverse's service protection limits per user: off (default), dataverse "
        "(6,000 requests and 1,200 s of execution per 300 s, 52 at once), or "
        "requests=N,concurrent=N,window=SECONDS,execution=SECONDS (any of them; the others "
        "keep Dataverse's values), e.g. requests=20,window=1",
    )


def _add_seed(sub: Subcommands) -> None:
    """``seed``: how many rows of each kind (0: none)."""
    seed = sub.add_parser("seed", help="generate deterministic realistic data")
    seed.add_argument("--db", required=True)
    for name in ("accounts", "contacts", "leads", "users", "opportunities", "incidents"):
        seed.add_argument(f"--{name}", type=int, default=0)
    seed.add_argument("--demo", action="store_true", help="also seed the demo organisation")
    seed.set_defaults(func=_seed)


def _add_user(sub: Subcommands) -> None:
    """``user add`` / ``user list``: accounts that sign in."""
    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="add a user")
    add.add_argument("--db", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--password-stdin", action="store_true")
    add.add_argument("--admin", action="store_true", help="may change organisation settings")
    add.set_defaults(func=_user_add)
    lst = user.add_parser("list", help="list users")
    lst.add_argument("--db", required=True)
    lst.set_defaults(func=_user_list)


def _add_app(sub: Subcommands) -> None:
    """``app add``: a client_credentials application acting as an existing user."""
    app = sub.add_parser("app", help="registered OAuth applications").add_subparsers(
        dest="action", required=True
    )
    app_add = app.add_parser("add", help="register a client_credentials application")
    app_add.add_argument("--db", required=True)
    app_add.add_argument("--client-id", required=True)
    app_add.add_argument(
        "--user",
        required=True,
        help="e-mail or id of the user it acts as (an application user has no e-mail)",
    )
    app_add.add_argument("--name", default="")
    app_add.add_argument(
        "--graph-role",
        action="append",
        default=[],
        help="a Microsoft Graph application permission consented to it (Mail.ReadWrite, "
        "Mail.Send; repeat): its client credentials then get app-only Graph tokens",
    )
    app_add.add_argument(
        "--password-stdin", action="store_true", help="read the client secret from standard input"
    )
    app_add.set_defaults(func=_app_add)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trackbox-crm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve(sub)
    _add_seed(sub)
    _add_user(sub)
    _add_app(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
