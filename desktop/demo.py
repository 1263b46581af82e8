"""The embedded demo: a CRM emulator on loopback with the demo organisation, a demo Maildir
mailbox, and a workspace for the demo user — no configuration needed.

So that the demo shows the tracking rules at work rather than an empty CRM, its first start
gives it a history (see :func:`_give_history`): the CRM already holds what Alex sent from it
(the mails carrying tracking tokens), a colleague has tracked a few mails Alex also received,
and the newest inbox mail "arrives" after a first, baseline sync — so the first sync in the
window decides on it with the real rules and shows why.

A demo is anchored on the hour it is created (:func:`demo_anchor`): its mail lies in the six
months before, so it looks recent on any day, and the CRM history, made from that mail, agrees.
The anchor is kept in the demo's directory so later starts see the same demo; a directory from
before anchors were kept has the old fixed one. ``TRACKBOX_DEMO_NOW`` sets the clock a new demo
is anchored on (tests, screenshots of a given day).

The demo's CRM is reached as a real organisation is: over HTTPS, with a throwaway CA kept in
the demo's directory (``tls/``, made again when it no longer serves), and signed in through
OAuth — an authorization code with PKCE from the emulator's own authority, MSAL driving it and
:mod:`crmserver.demo_sign_in` filling in Alex's password on the sign-in page, so no browser
opens. The tokens stay in memory: nothing is written to files or to the keyring.

The emulator is imported lazily: ``core`` is the client library and does not need the
emulator package unless the demo runs.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformdirs import user_data_path

from core.domain import demo_data
from core.domain.entities import entity, regarding_target

if TYPE_CHECKING:  # the real imports happen in start_demo, on a worker, after the window shows
    from core.crm import CrmClient
    from core.crm.signin import MicrosoftSignIn
    from core.domain.model import MessageHeader
    from core.mail.maildir import MaildirBackend
    from core.workspace.facade import Workspace
    from crmserver.tls import TlsFiles

log = logging.getLogger(__name__)


def default_demo_dir() -> Path:
    return user_data_path("trackbox", appauthor=False) / "demo"


@dataclass
class DemoEnvironment:
    data_dir: Path
    mailbox_dir: Path
    server: Any  # crmserver.RunningServer
    workspace: Workspace
    anchor: datetime  # the demo's "now": no mail is dated after it
    sign_in: MicrosoftSignIn | None = None  # Alex's OAuth sign-in (tokens in memory)

    @property
    def crm_url(self) -> str:
        return str(self.server.url)

    @property
    def ca_file(self) -> str:
        """The throwaway CA the demo's clients verify the emulator with."""
        return str(self.server.ca_file)

    def close(self) -> None:
        self.workspace.close()
        if self.sign_in is not None:
            self.sign_in.close()  # a kept-alive connection would hold the server's shutdown up
        self.server.stop()


HISTORY_MARKER = ".demo-history"
PIM_MARKER = ".demo-pim"  # the local side holds the demo's contacts, calendar, tasks
TLS_DIR = "tls"
#: A kept server certificate with less validity left than this is made again.
TLS_MARGIN = timedelta(days=1)
ANCHOR_FILE = "anchor.json"
NOW_VARIABLE = "TRACKBOX_DEMO_NOW"
NEW_ARRIVALS = 30  # the newest inbox mails held back until after the baseline sync
COLLEAGUE_TRACKED = 6  # inbox mails a colleague tracked (shown "tracked by someone else")


def start_demo(
    data_dir: Path, *, messages: int = 2000, anchor: datetime | None = None
) -> DemoEnvironment:
    """Create the demo data once (idempotent) and start the emulator on a free loopback port.

    ``anchor`` is the clock a new demo is anchored on (default :func:`demo_now`); a demo that
    exists keeps its own.
    """
    from core.crm import CrmClient
    from core.domain.model import Address
    from core.mail.demo import create_demo_mailbox
    from core.mail.maildir import MaildirBackend
    from core.private_files import make_private_dir
    from core.workspace.facade import Workspace
    from crmserver import Settings, run_in_thread

    make_private_dir(data_dir)  # the demo's mail, CRM and CA key: this user's only
    mailbox_dir = data_dir / "mailbox"
    anchor = demo_anchor(data_dir, anchor)
    create_demo_mailbox(mailbox_dir, messages=messages, anchor=anchor)
    tls = demo_tls(data_dir / TLS_DIR)
    server = run_in_thread(Settings(db_path=data_dir / "crm.sqlite", seed="demo"), tls=tls)
    me = demo_data.ME
    try:
        signer = sign_in_demo_user(server.url, str(server.ca_file))
    except BaseException:
        server.stop()
        raise
    crm = CrmClient(server.url, signer.bearer_auth(), verify=str(server.ca_file))
    workspace = Workspace(
        store_path=data_dir / "trackbox.sqlite",
        open_mailbox=lambda: MaildirBackend(mailbox_dir),
        crm=crm,
        owner=Address(me.email, me.full_name),
        mailbox_name=me.email,
    )
    environment = DemoEnvironment(data_dir, mailbox_dir, server, workspace, anchor, signer)
    if not (data_dir / HISTORY_MARKER).exists():
        try:
            _give_history(environment)
        except Exception:
            environment.close()
            raise
        (data_dir / HISTORY_MARKER).write_text("done\n", encoding="utf-8")
    if not (data_dir / PIM_MARKER).exists():  # contacts, appointments, tasks (issue 20)
        from core.workspace.pim import seed_demo

        seed_demo(data_dir, anchor)
        (data_dir / PIM_MARKER).write_text("done\n", encoding="utf-8")
    log.info(
        "demo ready: CRM at %s, mailbox at %s, anchored at %s",
        server.url,
        mailbox_dir,
        anchor.isoformat(),
    )
    return environment


def sign_in_demo_user(
    crm_url: str, ca_file: str, user: demo_data.DemoUser = demo_data.ME
) -> MicrosoftSignIn:
    """``user`` signed in to the emulator at ``crm_url`` through its OAuth authority
    (``/organizations``): auth code with PKCE, the sign-in page filled in without a browser,
    the tokens in an in-memory cache, the server verified with ``ca_file``."""
    import ssl

    from core.config import logs
    from core.crm.signin import MicrosoftSignIn
    from core.crm.token_cache import MemoryCacheStore, PersistentTokenCache
    from crmserver.demo_sign_in import authorizer

    signer = MicrosoftSignIn(
        crm_url,
        authority=crm_url.rstrip("/") + "/organizations",
        verify=ca_file,
        cache=PersistentTokenCache(MemoryCacheStore()),
        username=user.email,
        on_secret=logs.register_secret,
    )
    try:
        verify = ssl.create_default_context(cafile=ca_file)
        signer.sign_in_with_auth_code(
            authorizer(user.email, demo_data.DEMO_PASSWORD, verify), login_hint=user.email
        )
    except BaseException:
        signer.close()
        raise
    return signer


def demo_tls(directory: Path) -> TlsFiles:
    """The demo's TLS files (``crmserver.TlsFiles``): those kept in ``directory`` while they
    still serve (the key is the certificate's, the certificate was issued by the kept CA and
    is valid for :data:`TLS_MARGIN` more), else a new throwaway CA and certificate there."""
    from crmserver.tls import CA_FILE, CERT_FILE, KEY_FILE, TlsFiles, make_throwaway_ca

    kept = TlsFiles(
        cert=str(directory / CERT_FILE), key=str(directory / KEY_FILE), ca=str(directory / CA_FILE)
    )
    if _still_serves(kept):
        return kept
    log.info("demo: a new throwaway CA in %s", directory)
    return make_throwaway_ca(directory)


def _still_serves(files: TlsFiles) -> bool:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    from crmserver.tls import TlsFilesError, check_tls_files

    try:
        check_tls_files(files)
        with open(files.cert, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(str(files.ca), "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        cert.verify_directly_issued_by(ca)  # not another (older) CA's certificate
    except (TlsFilesError, OSError, ValueError, TypeError, InvalidSignature) as exc:
        if os.path.exists(files.cert):
            log.info("demo: the kept certificate is not used (%s)", type(exc).__name__)
        return False
    now = datetime.now(UTC)
    return all(
        c.not_valid_before_utc <= now and now + TLS_MARGIN < c.not_valid_after_utc
        for c in (cert, ca)
    )


def demo_now() -> datetime:
    """The clock a new demo is anchored on: ``TRACKBOX_DEMO_NOW`` (ISO 8601; a date alone is
    its midnight, a time without offset is UTC) when set, so a demo of any day can be made
    and checked without touching the system clock; else now."""
    from core.mail.demo import as_utc

    value = os.environ.get(NOW_VARIABLE, "").strip()
    if not value:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{NOW_VARIABLE} has value {value!r}. Expected an ISO 8601 date or "
            "time, such as 2026-12-06 or 2026-12-06T09:30:00+01:00."
        ) from None
    return as_utc(when)


def demo_anchor(data_dir: Path, clock: datetime | None = None) -> datetime:
    """The anchor of the demo in ``data_dir``: the recorded one, else chosen now and recorded.

    A new demo is anchored on ``clock`` (default :func:`demo_now`) rounded down to the hour,
    in UTC: no mail is in the future, and demos made in the same hour are alike. A directory
    that already holds demo data but no anchor was made with the old fixed anchor, which it
    keeps: its mailbox and CRM history were made from it.
    """
    from core.mail.demo import ANCHOR, as_utc

    path = data_dir / ANCHOR_FILE
    if path.exists():
        return _read_anchor(path)
    existing = (
        (data_dir / "mailbox" / "cur").is_dir()
        or (data_dir / HISTORY_MARKER).exists()
        or (data_dir / "crm.sqlite").exists()
    )
    if existing:
        anchor = ANCHOR
    else:
        when = as_utc(demo_now() if clock is None else clock)
        anchor = when.replace(minute=0, second=0, microsecond=0)
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    partial.write_text(json.dumps({"anchor": anchor.isoformat()}) + "\n", encoding="utf-8")
    os.replace(partial, path)  # whole or absent: a torn file would change the demo's dates
    return anchor


def _read_anchor(path: Path) -> datetime:
    from core.mail.demo import as_utc

    try:
        value = json.loads(path.read_text(encoding="utf-8"))["anchor"]
        anchor = datetime.fromisoformat(value)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"The demo's anchor in {path} cannot be read ({exc}). Delete the demo "
            "directory to make a new demo."
        ) from None
    return as_utc(anchor)


def _give_history(env: DemoEnvironment) -> None:
    """First start only: CRM history, then a baseline sync, then the newest mail arrives."""
    from core.crm import BasicAuth
    from core.crm import CrmClient as Client
    from core.domain.crm_settings import TrackingTokenSettings
    from core.domain.subjects import find_token
    from core.mail.maildir import MaildirBackend

    backend = MaildirBackend(env.mailbox_dir)
    try:
        sent = _headers(backend, backend.folder("sent").path)
        inbox = _headers(backend, "Inbox")
        settings = TrackingTokenSettings()
        crm = env.workspace.crm
        accounts = _accounts_by_contact_email(crm)
        for header in sent:  # mail sent from the CRM carries its tracking token
            if find_token(header.subject, settings):
                account = next((accounts[a.key] for a in header.to if a.key in accounts), None)
                # filed against the customer's account, as a salesperson would
                _promote(crm, backend.fetch(header.ref), header, regarding_account=account)
        inbox.sort(key=lambda header: header.date or datetime.min.replace(tzinfo=UTC))
        held, older = inbox[-NEW_ARRIVALS:], inbox[:-NEW_ARRIVALS]
        colleague = demo_data.COLLEAGUES[0]
        other = Client(  # the colleague's own client; Basic auth, which the emulator takes
            env.crm_url,
            BasicAuth(colleague.email, demo_data.DEMO_PASSWORD),
            verify=env.ca_file,
        )
        try:
            from_customers = [
                header
                for header in older
                if header.sender
                and not header.sender.email.endswith("@" + demo_data.INTERNAL_DOMAIN)
            ]
            for header in from_customers[-COLLEAGUE_TRACKED:]:
                _promote(other, backend.fetch(header.ref), header)
        finally:
            other.close()
    finally:
        backend.close()
    inbox_dir = env.mailbox_dir
    holding = env.data_dir / "arriving"
    holding.mkdir(exist_ok=True)
    files = _maildir_files(inbox_dir)
    moved = []
    for header in held:
        source = files.get(header.ref.uid)
        if source is not None:
            target = holding / source.name
            source.rename(target)
            moved.append((target, source))
    env.workspace.sync_cycle()  # the baseline: what was there before is not auto-tracked
    for target, source in moved:
        target.rename(source.parent.parent / "new" / source.name.split(":")[0])
    holding.rmdir()


def _headers(backend: MaildirBackend, folder: str) -> list[MessageHeader]:
    return [header for batch in backend.sync(folder, None) for header in batch.added]


def _maildir_files(root: Path) -> dict[str, Path]:
    """The files of the Maildir folder at ``root`` by key (one listing for all the look-ups);
    a key in both ``cur`` and ``new`` gives the one in ``cur``."""
    files: dict[str, Path] = {}
    for sub in ("new", "cur"):
        for path in (root / sub).iterdir():
            if not path.name.startswith("."):
                files[path.name.split(":", 1)[0]] = path
    return files


def _accounts_by_contact_email(crm: CrmClient) -> dict[str, str]:
    rows = crm.query(
        entity("contact").entity_set, select=["emailaddress1", "_parentcustomerid_value"]
    )
    return {
        str(r["emailaddress1"]).lower(): str(r["_parentcustomerid_value"])
        for r in rows
        if r.get("emailaddress1") and r.get("_parentcustomerid_value")
    }


def _promote(
    crm: CrmClient, raw: bytes, header: MessageHeader, regarding_account: str | None = None
) -> str:
    from core.mail.parse import parse_message

    parsed = parse_message(raw, header.ref)
    extra: dict[str, str] = {
        k: v
        for k, v in (("inreplyto", header.in_reply_to), ("conversationindex", header.thread_index))
        if v
    }
    if regarding_account:
        account = regarding_target("account")
        extra[f"{account.regarding_bind}@odata.bind"] = account.bind(regarding_account)
    return crm.deliver_promote_email(
        message_id=header.message_id,
        subject=header.subject,
        sender=header.sender or "",
        to=header.to,
        cc=header.cc,
        received_on=header.date,
        body=parsed.html or parsed.text,
        extra_properties=extra,
    )
