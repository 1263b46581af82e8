"""Exchange mailbox over EWS (exchangelib).

- Endpoint: explicit (``ews://host/EWS/Exchange.asmx``) or autodiscover from the address
  (exchangelib's SOAP autodiscover: ``https://<domain>/autodiscover/autodiscover.svc``, then
  ``autodiscover.<domain>``, then the DNS SRV record ``_autodiscover._tcp.<domain>``; it also
  learns the server version there and, unless told, probes the auth type from the EWS
  endpoint's ``WWW-Authenticate``). Auth: Basic, NTLM (user ``DOMAIN\\user``, or a UPN), or
  OAuth (``auth_type="oauth"``, ``?auth=oauth``): a bearer token from ``token=``, a callable
  asked before every operation so that a renewed token is used at once (MSAL's silent token for
  :func:`core.mail.ews_auth.ews_scope`; see :mod:`core.mail.ews_auth`), or a fixed
  ``oauth_token=``; only over HTTPS. TLS is verified against requests' CA bundle (certifi) or
  the one ``REQUESTS_CA_BUNDLE`` names.
- Failures are fast (exchangelib's fail-fast policy: the sync engine decides when to retry). An
  autodiscover that found nothing is :class:`MailUnavailable` (offline, off VPN and a domain
  without the service look the same to it) and says what was tried.
- Folders: the tree under "Top of Information Store" (``msgfolderroot``); roles come from the
  distinguished folder ids, so localised names ("Gesendete Elemente") still get theirs.
- Sync: one ``SyncFolderItems`` call per batch; the server's SyncState after each page is the
  batch's state, so an interrupted first sync resumes where it stopped. An expired state
  (``ErrorInvalidSyncStateData``) restarts the folder with ``reset``.
- Tracked marker: the category "Tracked to CRM" plus the named property ``crmid`` in
  PS_PUBLIC_STRINGS holding the activity id — where the Dynamics CRM for Outlook add-in kept it,
  so mailboxes tracked by the add-in show as tracked here and vice versa.
- Fetch uses ``MimeContent``; send is ``CreateItem`` with ``SendAndSaveCopy`` to Sent Items.
"""

from __future__ import annotations

import base64
import functools
import os
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import exchangelib as xl
from exchangelib import errors as xe
from exchangelib.extended_properties import ExtendedProperty
from exchangelib.folders import (
    DeletedItems,
    Drafts,
    FolderCollection,
    Inbox,
    JunkEmail,
    Outbox,
    SentItems,
)
from exchangelib.items import HARD_DELETE
from exchangelib.properties import DistinguishedFolderId, ItemId, Mailbox
from exchangelib.services import SyncFolderItems
from exchangelib.version import Build, Version

from core.domain.message_identity import synthetic_message_id, unusable_reason, usable_message_id
from core.domain.model import Address, Folder, FolderRole, MailRef, MessageHeader
from core.mail.base import (
    FLAGGED_KEYWORD,
    TRACKED_CATEGORY,
    FlagChange,
    MailAuthError,
    MailBackend,
    MailError,
    MailNotFound,
    MailProtocolError,
    MailUnavailable,
    SyncBatch,
    folder_path,
    tree_order,
)
from core.mail.ews_auth import TokenSource, TokenSourceCredentials
from core.mail.headers import MSGID_RE

T = TypeVar("T")


class CrmActivityId(ExtendedProperty):  # type: ignore[misc]  # exchangelib has no types
    """The CRM activity id of a tracked item (named property ``crmid``, PS_PUBLIC_STRINGS)."""

    distinguished_property_set_id = "PublicStrings"
    property_name = "crmid"
    property_type = "String"


if "crm_activity_id" not in {f.name for f in xl.Message.FIELDS}:
    xl.Message.register("crm_activity_id", CrmActivityId)


class FlagStatus(ExtendedProperty):  # type: ignore[misc]  # exchangelib has no types
    """Outlook's follow-up flag (``PR_FLAG_STATUS``: 2 flagged, 1 complete, absent or 0 not
    flagged), readable and writable on every Exchange version, unlike ``item:Flag`` (2013+)."""

    property_tag = 0x1090
    property_type = "Integer"


#: PR_FLAG_STATUS of a flagged item.
_FLAGGED = 2

if "flag_status" not in {f.name for f in xl.Message.FIELDS}:
    xl.Message.register("flag_status", FlagStatus)

_ROLES: tuple[tuple[type[Any], FolderRole], ...] = (
    (Inbox, FolderRole.INBOX),
    (SentItems, FolderRole.SENT),
    (Drafts, FolderRole.DRAFTS),
    (Outbox, FolderRole.OUTBOX),
    (DeletedItems, FolderRole.DELETED),
    (JunkEmail, FolderRole.JUNK),
)
_HEADER_FIELDS = (
    "message_id",
    "subject",
    "sender",
    "author",
    "to_recipients",
    "cc_recipients",
    "datetime_sent",
    "size",
    "has_attachments",
    "is_read",
    "conversation_index",
    "in_reply_to",
    "references",
    "categories",
    "crm_activity_id",
    "flag_status",
)
_AUTH = {"basic": xl.BASIC, "ntlm": xl.NTLM, "oauth": xl.OAUTH2}
_SCHEME_NAMES = {xl.BASIC: "Basic", xl.NTLM: "NTLM", xl.OAUTH2: "Bearer"}  # in WWW-Authenticate


class EwsBackend(MailBackend):
    """An Exchange mailbox. ``endpoint=None`` means autodiscover from ``email``. ``version``
    (``"15.1.2507.6"``) skips exchangelib's version probe on an explicit endpoint (autodiscover
    reports the version itself); ``auth_type`` is ``basic``, ``ntlm`` (the default) or
    ``oauth`` (implied by ``token`` or ``oauth_token``) — with autodiscover, no ``auth_type``
    means "ask the server". ``token``: a callable giving a current access token (OAuth)."""

    def __init__(
        self,
        *,
        endpoint: str | None,
        user: str,
        password: str = "",
        email: str | None = None,
        auth_type: str | None = None,
        token: TokenSource | None = None,
        oauth_token: str | None = None,
        version: str | None = "15.1.2507.6",
        max_connections: int = 2,
    ) -> None:
        self.email = email or user
        self._oauth: TokenSourceCredentials | None = None
        if token is None and oauth_token:
            token = lambda: oauth_token  # noqa: E731 (a fixed token: nothing renews it)
        if token is not None or (auth_type or "").lower() == "oauth":
            self._oauth = _oauth_credentials(token, endpoint)
            creds: Any = self._oauth
            auth_type = "oauth"
        else:
            creds = xl.Credentials(user, password)
        try:
            auth = _AUTH[(auth_type or "ntlm").lower()]
        except KeyError:
            raise MailProtocolError("unknown EWS auth type", server_says=str(auth_type)) from None
        ver = Version(build=Build(*map(int, version.split(".")))) if version else None
        try:
            if endpoint is None and self._oauth is not None:
                self._oauth.refresh_token()  # autodiscover signs in at once
            if endpoint is None:
                config = xl.Configuration(
                    credentials=creds,
                    auth_type=auth if auth_type else None,
                    retry_policy=xl.FailFast(),
                    max_connections=max_connections,
                )
                self.account = xl.Account(
                    self.email, config=config, autodiscover=True, access_type=xl.DELEGATE
                )
            else:
                config = xl.Configuration(
                    service_endpoint=endpoint,
                    credentials=creds,
                    auth_type=auth,
                    version=ver,
                    retry_policy=xl.FailFast(),
                    max_connections=max_connections,
                )
                self.account = xl.Account(
                    self.email, config=config, autodiscover=False, access_type=xl.DELEGATE
                )
        except xe.AutoDiscoverError as exc:
            raise _autodiscover_failed(exc, self.email) from exc
        except Exception as exc:
            raise _map_error(exc, "autodiscover" if endpoint is None else "connection") from exc
        self._by_path: dict[str, Any] = {}
        self._tree: dict[str, Any] = {}  # folder id -> exchangelib folder, from the hierarchy sync
        self._hierarchy_state: str | None = None
        self._role_by_id: dict[str, FolderRole] | None = None

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` with EWS failures as mail errors; with OAuth, with the source's current
        token, and once more with a renewed one if the server refused it."""
        if self._oauth is not None:
            self._oauth.refresh_token()
        try:
            return fn()
        except MailError:
            raise
        except xe.UnauthorizedError as exc:
            if self._oauth is not None and self._oauth.renew_after_refusal():
                return self._call_once(what, fn)
            raise self._refused(exc, what) from exc
        except Exception as exc:
            raise _map_error(exc, what) from exc

    def _call_once(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except MailError:
            raise
        except xe.UnauthorizedError as exc:
            raise self._refused(exc, what) from exc
        except Exception as exc:
            raise _map_error(exc, what) from exc

    def _refused(self, exc: xe.UnauthorizedError, what: str) -> MailError:
        """exchangelib says only "Invalid credentials"; when the server does not even offer
        our auth scheme (Basic against an NTLM-only Exchange), say so: the password is fine."""
        err = _map_error(exc, what)
        protocol = self.account.protocol
        ours = _SCHEME_NAMES.get(protocol.config.auth_type)
        if ours is None:
            return err
        offered = _offered_schemes(protocol)
        if offered and ours.lower() not in {o.lower() for o in offered}:
            err = MailAuthError(
                err.detail,
                server_says=f"{err.server_says}; the server offers "
                f"{', '.join(offered)}, not {ours}",
            )
        return err

    # --- folders -----------------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        return self._call("SyncFolderHierarchy", self._load_folders)

    def _load_folders(self) -> list[Folder]:
        """The tree from ``SyncFolderHierarchy`` on msgfolderroot: the first call lists every
        folder, later calls only what changed since (the state is kept per backend)."""
        root = self.account.msg_folder_root
        if self._role_by_id is None:
            self._role_by_id = self._distinguished_roles()
        changes = list(
            root.sync_hierarchy(
                sync_state=self._hierarchy_state,
                only_fields=["name", "folder_class", "parent_folder_id"],
            )
        )
        for kind, f in changes:
            if isinstance(f, Exception):
                raise _map_error(f, "SyncFolderHierarchy")
            if kind == "delete":
                self._tree.pop(f.id, None)
            else:
                # exchangelib parses these with the class of the synced root (MsgFolderRoot),
                # which would address them by the *distinguished* id: make plain folders.
                self._tree[f.id] = xl.Folder(
                    root=self.account.root,
                    id=f.id,
                    changekey=f.changekey,
                    name=f.name,
                    folder_class=f.folder_class,
                    parent_folder_id=f.parent_folder_id,
                )
        self._hierarchy_state = root.folder_sync_state
        roles = self._role_by_id
        by_id = self._tree
        paths: dict[str, Any] = {}
        out = []
        for f in by_id.values():
            if f.folder_class not in (None, "IPF.Note") and f.id not in roles:
                continue
            parts = [f.name]
            parent = by_id.get(f.parent_folder_id.id if f.parent_folder_id else "")
            while parent is not None:
                parts.insert(0, parent.name)
                parent = by_id.get(parent.parent_folder_id.id if parent.parent_folder_id else "")
            if roles.get(_first_id(f, by_id) or "") is FolderRole.INBOX:
                parts[0] = "Inbox"  # neutral name, whatever the server's language
            path = folder_path(parts)
            paths[path] = f
            out.append(Folder(path, parts[-1], roles.get(f.id), "/".join(parts[:-1]) or None))
        self._by_path = paths
        return sorted(out, key=lambda x: tree_order(x.path))

    def _distinguished_roles(self) -> dict[str, FolderRole]:
        """Ids of Inbox, Sent Items, … in one GetFolder (their names are localised)."""
        mailbox = Mailbox(email_address=self.account.primary_smtp_address)
        wanted = [
            cls(
                _distinguished_id=DistinguishedFolderId(
                    id=cls.DISTINGUISHED_FOLDER_ID, mailbox=mailbox
                ),
                root=self.account.root,
            )
            for cls, _ in _ROLES
        ]
        out: dict[str, FolderRole] = {}
        for (_, role), f in zip(
            _ROLES, FolderCollection(account=self.account, folders=wanted).resolve(), strict=False
        ):
            if not isinstance(f, Exception):
                out[f.id] = role
        return out

    def _folder(self, path: str) -> Any:
        if path not in self._by_path:
            self.folders()
        if path not in self._by_path:
            raise MailNotFound("no such folder", folder=path)
        return self._by_path[path]

    def create_folder(self, path: str) -> Folder:
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in self._by_path:
                self.folders()
            if sub in self._by_path:
                continue
            parent = (
                self._folder("/".join(parts[: i - 1])) if i > 1 else self.account.msg_folder_root
            )
            new = xl.Folder(parent=parent, name=parts[i - 1], folder_class="IPF.Note")
            self._call("CreateFolder", new.save)
            self._by_path.clear()
        return next(f for f in self.folders() if f.path == path)

    # --- sync --------------------------------------------------------------------------------

    def sync(self, folder: str, state: str | None, batch_size: int = 500) -> Iterator[SyncBatch]:
        f = self._folder(folder)
        fields = {
            p for p in f.normalize_fields(fields=list(_HEADER_FIELDS)) if not p.field.is_attribute
        }
        reset = False
        while True:
            svc = SyncFolderItems(account=self.account)
            try:
                call = functools.partial(
                    svc.call,
                    folder=f,
                    shape="IdOnly",
                    additional_fields=fields,
                    sync_state=state,
                    ignore=None,
                    max_changes_returned=max(1, min(batch_size, 512)),
                    sync_scope=None,
                )
                changes: list[Any] = self._call("SyncFolderItems", functools.partial(_listed, call))
            except MailProtocolError as exc:
                if "ErrorInvalidSyncStateData" in exc.server_says and state is not None:
                    state, reset = None, True  # expired or foreign state: list again
                    continue
                raise
            yield self._batch(folder, changes, svc.sync_state or state or "", reset)
            reset = False
            if svc.includes_last_item_in_range or svc.sync_state == state or not changes:
                return
            state = svc.sync_state

    def _batch(self, folder: str, changes: list[Any], state: str, reset: bool) -> SyncBatch:
        added: list[MessageHeader] = []
        changed: list[FlagChange] = []
        removed: list[MailRef] = []
        read_flags: dict[str, bool] = {}
        for kind, item in changes:
            if isinstance(item, Exception):
                raise _map_error(item, "SyncFolderItems")
            if kind == "create":
                added.append(_header(folder, item))
            elif kind == "update":
                h = _header(folder, item)
                changed.append(FlagChange(h.ref, h.is_read, h.keywords, h.tracked_marker))
            elif kind == "delete":
                removed.append(MailRef(folder, item.id))
            elif kind == "read_flag_change":
                iid, is_read = item
                read_flags[iid.id] = is_read
        if read_flags:
            changed.extend(self._read_flag_changes(folder, read_flags))
        return SyncBatch(state, tuple(added), tuple(changed), tuple(removed), reset)

    def _read_flag_changes(self, folder: str, flags: dict[str, bool]) -> list[FlagChange]:
        """ReadFlagChange carries only the flag; a FlagChange also needs the categories and
        the tracked marker: one GetItem for the whole batch."""
        ids = list(flags)
        items = self._call(
            "GetItem",
            lambda: list(
                self.account.fetch(
                    ids=[ItemId(id=i) for i in ids], only_fields=["categories", "crm_activity_id"]
                )
            ),
        )
        out = []
        for iid, item in zip(ids, items, strict=False):
            if isinstance(item, Exception):  # deleted since: the next sync reports it
                continue
            out.append(
                FlagChange(
                    MailRef(folder, iid), flags[iid], tuple(item.categories or ()), _marker(item)
                )
            )
        return out

    # --- messages ----------------------------------------------------------------------------

    def _get(self, ref: MailRef, fields: list[str]) -> Any:
        self._folder(ref.folder)
        items = self._call(
            "GetItem",
            lambda: list(self.account.fetch(ids=[ItemId(id=ref.uid)], only_fields=fields)),
        )
        if not items or isinstance(items[0], Exception):
            raise _not_found_or(items[0] if items else None, ref, "GetItem")
        return items[0]

    def fetch(self, ref: MailRef) -> bytes:
        item = self._get(ref, ["mime_content"])
        mime = item.mime_content
        return mime if isinstance(mime, bytes) else base64.b64decode(mime or b"")

    def send(self, mime: bytes) -> None:
        msg = xl.Message(account=self.account, folder=self.account.sent, mime_content=mime)
        self._call("CreateItem", msg.send_and_save)

    def append(self, folder: str, mime: bytes, *, is_read: bool = True) -> MailRef:
        f = self._folder(folder)
        msg = xl.Message(account=self.account, folder=f, mime_content=mime, is_read=is_read)
        self._call("CreateItem", msg.save)
        return MailRef(folder, msg.id)

    def move(self, ref: MailRef, folder: str) -> MailRef:
        dest = self._folder(folder)
        self._folder(ref.folder)
        res = self._call(
            "MoveItem",
            lambda: list(self.account.bulk_move(ids=[ItemId(id=ref.uid)], to_folder=dest)),
        )
        if not res or isinstance(res[0], Exception):
            raise _not_found_or(res[0] if res else None, ref, "MoveItem")
        return MailRef(folder, res[0][0])

    def delete(self, ref: MailRef) -> None:
        self._folder(ref.folder)
        res = self._call(
            "DeleteItem",
            lambda: list(
                self.account.bulk_delete(ids=[ItemId(id=ref.uid)], delete_type=HARD_DELETE)
            ),
        )
        if res and res[0] is not True:
            raise _not_found_or(
                res[0] if isinstance(res[0], Exception) else None, ref, "DeleteItem"
            )

    def set_read(self, ref: MailRef, read: bool) -> None:
        item = self._get(ref, ["is_read"])
        item.is_read = read
        self._call("UpdateItem", lambda: item.save(update_fields=["is_read"]))

    def set_flagged(self, ref: MailRef, flagged: bool) -> None:
        item = self._get(ref, ["flag_status"])
        item.flag_status = _FLAGGED if flagged else None
        self._call("UpdateItem", lambda: item.save(update_fields=["flag_status"]))

    def set_tracked(self, ref: MailRef, activity_id: str | None) -> None:
        item = self._get(ref, ["categories", "crm_activity_id"])
        cats = [c for c in (item.categories or []) if c != TRACKED_CATEGORY]
        if activity_id is not None:
            cats.append(TRACKED_CATEGORY)
        item.categories = cats or None
        item.crm_activity_id = activity_id
        self._call("UpdateItem", lambda: item.save(update_fields=["categories", "crm_activity_id"]))

    def close(self) -> None:
        try:
            self.account.protocol.close()
        except Exception:
            pass


# --- helpers --------------------------------------------------------------------------------


def _oauth_credentials(token: TokenSource | None, endpoint: str | None) -> TokenSourceCredentials:
    """OAuth needs a token source, and HTTPS: a bearer token is not sent in the clear (unless
    oauthlib's ``OAUTHLIB_INSECURE_TRANSPORT`` says so, for tests on loopback)."""
    if token is None or not callable(token):
        raise MailAuthError("the Exchange mailbox needs a token source (OAuth): sign in first")
    insecure_ok = bool(os.environ.get("OAUTHLIB_INSECURE_TRANSPORT"))
    if endpoint is not None and not endpoint.lower().startswith("https://") and not insecure_ok:
        raise MailProtocolError(
            "EWS with OAuth needs HTTPS",
            server_says=f"{endpoint}: a bearer token is not sent over plain HTTP",
        )
    return TokenSourceCredentials(token)


def _listed(call: Callable[[], Any]) -> list[Any]:
    return list(call())


def _first_id(f: Any, by_id: dict[str, Any]) -> str | None:
    """Id of the top-level ancestor of ``f`` (child of msgfolderroot)."""
    cur = f
    while cur.parent_folder_id is not None and cur.parent_folder_id.id in by_id:
        cur = by_id[cur.parent_folder_id.id]
    return str(cur.id) if cur.id is not None else None


def _addr(m: Any) -> Address | None:
    if m is None or not getattr(m, "email_address", None):
        return None
    return Address(m.email_address, m.name or "")


def _keywords(item: Any) -> tuple[str, ...]:
    """The categories, with :data:`FLAGGED_KEYWORD` when the item was fetched flagged."""
    cats = tuple(item.categories or ())
    flagged = getattr(item, "flag_status", None) == _FLAGGED
    return (*cats, FLAGGED_KEYWORD) if flagged else cats


def _marker(item: Any) -> str | None:
    activity = getattr(item, "crm_activity_id", None)
    if activity:
        return str(activity)
    return TRACKED_CATEGORY if TRACKED_CATEGORY in (item.categories or ()) else None


def _header(folder: str, item: Any) -> MessageHeader:
    """A header from EWS item properties (no MIME download for the list)."""
    refs = tuple(MSGID_RE.findall(item.references or ""))
    ci = item.conversation_index
    errors: list[str] = []
    if item.datetime_sent is None:  # Exchange drops a Date it cannot read
        errors.append("date: missing or unreadable")
    subject = " ".join((item.subject or "").split())
    sender = _addr(item.author) or _addr(item.sender)
    to = tuple(a for a in map(_addr, item.to_recipients or ()) if a)
    cc = tuple(a for a in map(_addr, item.cc_recipients or ()) if a)
    message_id = usable_message_id(item.message_id)
    if message_id is None:
        errors.insert(0, unusable_reason(item.message_id))
        # Not the item's size: Exchange counts its properties, which change with categories.
        message_id = synthetic_message_id(
            date=item.datetime_sent,
            sender=sender.email if sender else None,
            to=(a.email for a in to),
            cc=(a.email for a in cc),
            subject=subject,
            extra=(item.message_id,) if (item.message_id or "").strip() else (),
        )
    return MessageHeader(
        ref=MailRef(folder, item.id),
        message_id=message_id,
        subject=subject,
        sender=sender,
        to=to,
        cc=cc,
        date=item.datetime_sent,
        size=int(item.size or 0),
        has_attachments=bool(item.has_attachments),
        is_read=bool(item.is_read),
        thread_index=base64.b64encode(ci).decode() if ci else None,
        in_reply_to=item.in_reply_to or None,
        references=refs,
        keywords=_keywords(item),
        tracked_marker=_marker(item),
        parse_errors=tuple(errors),
    )


def _not_found_or(exc: BaseException | None, ref: MailRef, what: str) -> MailError:
    if exc is None or isinstance(exc, xe.ErrorItemNotFound | xe.ErrorInvalidIdMalformed):
        return MailNotFound("message is gone", ref=ref)
    return _map_error(exc, what)


_TRANSIENT = (
    xe.ErrorServerBusy,
    xe.ErrorTimeoutExpired,
    xe.ErrorTooManyObjectsOpened,
    xe.ErrorMailboxStoreUnavailable,
    xe.ErrorInternalServerTransientError,
    xe.ErrorMailboxMoveInProgress,
    xe.ErrorConnectionFailed,
)


def _offered_schemes(protocol: Any) -> list[str]:
    """The auth schemes the EWS endpoint offers an unauthenticated POST (``WWW-Authenticate``);
    empty if it cannot be asked."""
    try:
        with protocol.raw_session(protocol.service_endpoint) as session:
            r = session.post(protocol.service_endpoint, data=b"", allow_redirects=False, timeout=10)
    except Exception:
        return []
    header = r.headers.get("WWW-Authenticate", "") if r.status_code == 401 else ""
    return re.findall(r"(?:^|,)\s*([A-Za-z][\w-]*)(?=\s|,|$)", header)


def _autodiscover_failed(exc: xe.AutoDiscoverError, email: str = "") -> MailError:
    """exchangelib's "All steps in the autodiscover protocol failed" means no URL answered:
    the domain has no autodiscover service, or we are offline / off the VPN, or its
    certificate is not trusted — it cannot tell which, so neither can we: unavailable (as an
    unresolvable IMAP host is), with what was tried. Any other AutoDiscoverError is the
    server's answer (InvalidDomain, a redirect loop, …)."""
    words = f"{type(exc).__name__}: {exc}"
    if not str(exc).startswith("All steps in the autodiscover protocol failed"):
        return MailProtocolError("EWS autodiscover failed", server_says=words)
    domain = email.rpartition("@")[2]
    if not domain:
        return MailUnavailable("EWS autodiscover found no Exchange server", server_says=words)
    return MailUnavailable(
        f"EWS autodiscover found no Exchange server for {domain} (tried https://{domain}"
        f"/autodiscover/autodiscover.svc, https://autodiscover.{domain}/autodiscover/"
        f"autodiscover.svc, http://autodiscover.{domain} and DNS SRV _autodiscover._tcp."
        f"{domain}; none answered or its certificate is not trusted). Check the address and "
        "the network, or give the EWS URL instead (ews://host/EWS/Exchange.asmx)",
        server_says=words,
    )


def _map_error(exc: BaseException, what: str) -> MailError:
    """Classify once, at the wire (style anchors §2). In exchangelib every server response
    code is also a ``TransportError``, so codes are sorted out first."""
    words = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, xe.UnauthorizedError | xe.ErrorAccessDenied | xe.ErrorNonExistentMailbox):
        return MailAuthError(f"EWS {what} refused", server_says=words)
    if isinstance(exc, xe.AutoDiscoverError):
        return _autodiscover_failed(exc)
    if isinstance(exc, xe.ErrorItemNotFound | xe.ErrorFolderNotFound):
        return MailNotFound(f"EWS {what}: not found", server_says=words)
    if isinstance(exc, (*_TRANSIENT, xe.RateLimitError)):
        return MailUnavailable(f"EWS {what}: server busy", server_says=words)
    if isinstance(exc, xe.ResponseMessageError):
        return MailProtocolError(f"EWS {what} failed", server_says=words)
    if isinstance(exc, xe.TransportError | ConnectionError | TimeoutError | OSError):
        return MailUnavailable(f"EWS {what}: server unreachable", server_says=words)
    return MailProtocolError(f"EWS {what} failed", server_says=words)
