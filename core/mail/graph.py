"""Microsoft 365 mailbox over Microsoft Graph (v1.0), for when EWS is gone.

- Mailbox: the signed-in user's (``/me``) or, with ``mailbox=``, a shared or delegated one
  (``/users/{address}``; the token then needs ``Mail.ReadWrite.Shared``/``Mail.Send.Shared``).
  The token comes from a callable asked before every request (MSAL's silent acquisition), so a
  renewed token is used at once. Wire, limits and errors: :mod:`core.mail.graph_http`.
- Folders: ``mailFolders`` and their ``childFolders``; the well-known folders are found by
  their well-known names in one ``$batch`` and get neutral paths (``Inbox``, ``Sent Items``,
  ``Drafts``, ``Outbox``, ``Deleted Items``, ``Junk``, ``Archive``) whatever their localised
  display name, which stays the folder's ``name``. Paths are resolved to Graph ids on every
  listing, so a folder renamed or moved elsewhere shows under its new path.
- Sync: per-folder delta (``/mailFolders/{id}/messages/delta``) with ``$select`` of exactly
  the header's fields, the activity id and size as expanded extended properties, one page of
  ``Prefer: odata.maxpagesize=batch_size`` per batch; state and created-versus-changed:
  :mod:`core.mail.graph_items`. An expired link (410) starts a new round with ``reset``; the
  store keeps tracked state by Message-ID, so nothing tracked is lost.
- Tracked marker: the category "Tracked to Dynamics 365" plus the named property ``crmid``
  (PS_PUBLIC_STRINGS) holding the activity id; :meth:`GraphBackend.set_tracked_many` marks many
  through ``$batch``.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

from core.domain.model import Folder, FolderRole, MailRef, MessageHeader
from core.mail.base import (
    FLAGGED_KEYWORD,
    FlagChange,
    MailBackend,
    MailError,
    MailNotFound,
    MailProtocolError,
    SyncBatch,
    folder_path,
    tree_order,
)
from core.mail.graph_http import (
    DEFAULT_BASE_URL,
    DeltaGone,
    GraphHttp,
    SubResponse,
    TokenSource,
    Verify,
    error_of,
)
from core.mail.graph_items import (
    ACTIVITY_PROPERTY,
    HEADER_EXPAND,
    HEADER_SELECT,
    TRACKED_CATEGORIES,
    TRACKED_CATEGORY_365,
    KnownIds,
    change_of,
    dump_state,
    header_of,
    id_key,
    load_state,
)
from core.prefetch import prefetched

__all__ = ["TRACKED_CATEGORY_365", "GraphBackend"]

#: Well-known folder name -> (neutral path, role).
WELL_KNOWN: dict[str, tuple[str, FolderRole | None]] = {
    "inbox": ("Inbox", FolderRole.INBOX),
    "sentitems": ("Sent Items", FolderRole.SENT),
    "drafts": ("Drafts", FolderRole.DRAFTS),
    "outbox": ("Outbox", FolderRole.OUTBOX),
    "deleteditems": ("Deleted Items", FolderRole.DELETED),
    "junkemail": ("Junk", FolderRole.JUNK),
    "archive": ("Archive", None),
}
_FOLDER_SELECT = "id,displayName,parentFolderId,childFolderCount"
_FOLDER_PAGE = "100"
_MAX_PAGE = 1000
#: Per mailbox (base URL + prefix, case-folded): its top-level folder ids when asked, and
#: the well-known names of those ids (:meth:`GraphBackend._roles`).
_known_roles: dict[str, tuple[frozenset[str], dict[str, str]]] = {}
_known_lock = threading.Lock()


class GraphBackend(MailBackend):
    """A Microsoft 365 mailbox through Graph. ``token``: returns a valid Graph access token
    (raises :class:`~core.mail.base.MailAuthError` when the user must sign in again);
    ``verify``: httpx's (a CA bundle or an ``ssl.SSLContext`` for tests); ``sleep`` is how a
    ``Retry-After`` is waited out."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        mailbox: str | None = None,
        *,
        token: TokenSource,
        verify: Verify = True,
        timeout: float = 60.0,
        tracked_category: str = TRACKED_CATEGORY_365,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"verify": verify, "timeout": timeout}
        if sleep is not None:
            kwargs["sleep"] = sleep
        self.http = GraphHttp(base_url, mailbox, token, **kwargs)
        self.mailbox = mailbox
        self.tracked_category = tracked_category
        self._ids: dict[str, str] = {}  # path -> folder id

    # --- folders -----------------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        top = list(self._list("/mailFolders", "list folders"))
        roles = self._roles(frozenset(str(row["id"]) for row in top))
        out: list[Folder] = []
        ids: dict[str, str] = {}
        level: list[tuple[str | None, dict[str, Any]]] = [(None, row) for row in top]
        while level:
            parents: list[tuple[str, dict[str, Any]]] = []
            for parent, row in level:
                fid, name = str(row["id"]), str(row.get("displayName") or "")
                known = roles.get(fid) if parent is None else None
                own = WELL_KNOWN[known][0] if known else folder_path([name])
                path = f"{parent}/{own}" if parent else own
                ids[path] = fid
                role = WELL_KNOWN[known][1] if known else None
                out.append(Folder(path, name, role, parent))
                if row.get("childFolderCount"):
                    parents.append((path, row))
            level = [
                (path, child)
                for path, row in parents
                for child in self._list(f"/mailFolders/{_q(row['id'])}/childFolders", "list")
            ]
        self._ids = ids
        return sorted(out, key=lambda f: tree_order(f.path))

    def _list(self, path: str, what: str) -> Iterator[dict[str, Any]]:
        url: str | None = self.http.url(path)
        params: dict[str, str] | None = {"$top": _FOLDER_PAGE, "$select": _FOLDER_SELECT}
        while url:
            body = self.http.json("GET", url, what=what, params=params)
            yield from body.get("value") or ()
            url, params = self._same_server(body.get("@odata.nextLink")), None

    def _roles(self, top: frozenset[str]) -> dict[str, str]:
        """Ids of the well-known folders, asked by name in one ``$batch`` (their display
        names are localised); a mailbox without one (no Archive) answers 404 for it. Kept
        for the process per mailbox while its top-level folders stay the same ones (the
        well-known folders are top-level, and their ids do not change): a sync cycle opens
        a new backend each time, and this saves it a round trip."""
        key = f"{self.http.base}{self.http.prefix}".casefold()
        with _known_lock:
            cached = _known_roles.get(key)
        if cached is not None and cached[0] == top:
            return cached[1]
        names = list(WELL_KNOWN)
        answers = self.http.batch(
            [{"method": "GET", "url": f"/mailFolders/{n}?$select=id"} for n in names],
            what="well-known folders",
        )
        found: dict[str, str] = {}
        for name, answer in zip(names, answers, strict=True):
            if answer.status == 200 and isinstance(answer.body, dict):
                found[str(answer.body["id"])] = name
            elif answer.status != 404:
                raise _member_error(answer, "well-known folders")
        with _known_lock:
            _known_roles[key] = (top, found)
        return found

    def _folder_id(self, path: str) -> str:
        if path not in self._ids:
            self.folders()
        if path not in self._ids:
            raise MailNotFound("no such folder", folder=path)
        return self._ids[path]

    def create_folder(self, path: str) -> Folder:
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in self._ids:
                self.folders()
            if sub in self._ids:
                continue
            parent = (
                f"/mailFolders/{_q(self._ids['/'.join(parts[: i - 1])])}/childFolders"
                if i > 1
                else "/mailFolders"  # a new top-level folder
            )
            try:
                self.http.request(
                    "POST",
                    self.http.url(parent),
                    what="create folder",
                    json_body={"displayName": parts[i - 1].replace("\u2215", "/")},
                )
            except MailProtocolError as exc:
                if "ErrorFolderExists" not in exc.server_says:  # made meanwhile elsewhere
                    raise
            self._ids.clear()
        return next(f for f in self.folders() if f.path == path)

    # --- sync --------------------------------------------------------------------------------

    def sync(self, folder: str, state: str | None, batch_size: int = 500) -> Iterator[SyncBatch]:
        fid = self._folder_id(folder)
        loaded = load_state(state) if state else None
        if loaded is not None and not self._link_of(loaded[0], fid):
            loaded = None  # the folder was deleted and made again, or the state is foreign
        reset = state is not None and loaded is None
        link, known = loaded if loaded is not None else (None, KnownIds())
        while True:
            try:
                yield from self._round(folder, fid, link, known, batch_size, reset)
                return
            except DeltaGone:
                if link is None:
                    raise
                link, known, reset = None, KnownIds(), True  # expired: a new round from scratch

    def _round(
        self,
        folder: str,
        fid: str,
        link: str | None,
        known: KnownIds,
        batch_size: int,
        reset: bool,
    ) -> Iterator[SyncBatch]:
        """Pages of one delta round from ``link`` (None: a new round), one batch each; a row
        is "added" unless the caller was given its id before (then "changed")."""
        for body, following in prefetched(
            self._pages(fid, link, batch_size), 1, name="graph-delta-pages"
        ):
            added, changed, removed = [], [], []
            for row in body.get("value") or ():
                key = id_key(str(row["id"]))
                if "@removed" in row:
                    if key in known:
                        known.discard(key)
                        removed.append(MailRef(folder, str(row["id"])))
                elif key in known:
                    changed.append(_with_flag(change_of(folder, row), row))
                else:
                    known.add(key)
                    added.append(_with_flag(header_of(folder, row), row))
            batch = SyncBatch(
                dump_state(following, known), tuple(added), tuple(changed), tuple(removed), reset
            )
            yield batch
            reset = False

    def _pages(
        self, fid: str, link: str | None, batch_size: int
    ) -> Iterator[tuple[dict[str, Any], str]]:
        """The pages of a delta round, each with the link that follows it (the last one's is
        the delta link). Run a page ahead of their use (:func:`prefetched`): the next page
        is on its way while this one becomes headers."""
        prefer = {"Prefer": f"odata.maxpagesize={max(1, min(batch_size, _MAX_PAGE))}"}
        params: dict[str, str] | None = None
        if link is None:
            link = self.http.url(f"/mailFolders/{_q(fid)}/messages/delta")
            params = {"$select": ",".join((*HEADER_SELECT, "flag")), "$expand": HEADER_EXPAND}
        while True:
            body = self.http.json("GET", link, what="delta", params=params, headers=prefer)
            following = self._same_server(
                body.get("@odata.nextLink") or body.get("@odata.deltaLink")
            )
            if following is None:
                raise MailProtocolError("Graph delta: a page without a next or delta link")
            yield body, following
            if "@odata.nextLink" not in body:
                return
            link, params = following, None

    def _link_of(self, link: str, fid: str) -> bool:
        """Whether a stored link is a delta link of folder ``fid`` on our server."""
        if self._same_server(link) is None:
            return False
        return f"/mailFolders/{fid}/messages/delta" in unquote(urlsplit(link).path)

    def _same_server(self, link: Any) -> str | None:
        """A link from an answer or a state, if it points at our Graph (the bearer token is
        never sent anywhere else)."""
        if not isinstance(link, str) or not link.startswith(self.http.base + "/"):
            return None
        return link

    # --- messages ----------------------------------------------------------------------------

    def _message(self, ref: MailRef, tail: str = "") -> str:
        return self.http.url(f"/messages/{_q(ref.uid)}{tail}")

    def fetch(self, ref: MailRef) -> bytes:
        return self.http.request("GET", self._message(ref, "/$value"), what="fetch MIME").content

    def send(self, mime: bytes) -> None:
        """``sendMail`` with the MIME (base64, ``text/plain``); Exchange takes the recipients
        from To/Cc/Bcc and saves the copy in Sent Items itself."""
        self.http.request("POST", self.http.url("/sendMail"), what="sendMail", text=_b64(mime))

    def append(self, folder: str, mime: bytes, *, is_read: bool = True) -> MailRef:
        """Create the message from MIME in ``folder``. Graph makes every message created this
        way a draft (``isDraft``: Outlook shows it unsent, "[Draft]", and offers to send it);
        v1.0 has no way to import a MIME message as received mail. New drafts are read, so an
        unread one costs a second request."""
        fid = self._folder_id(folder)
        made = self.http.json(
            "POST",
            self.http.url(f"/mailFolders/{_q(fid)}/messages"),
            what="create message",
            text=_b64(mime),
        )
        ref = MailRef(folder, str(made["id"]))
        if not is_read and made.get("isRead", True):
            self.set_read(ref, False)
        return ref

    def move(self, ref: MailRef, folder: str) -> MailRef:
        """Graph gives a moved message a new id."""
        fid = self._folder_id(folder)
        body = {"destinationId": fid}
        moved = self.http.json("POST", self._message(ref, "/move"), what="move", json_body=body)
        return MailRef(folder, str(moved["id"]))

    def delete(self, ref: MailRef) -> None:
        """``DELETE``: out of every folder (into Recoverable Items, where only an
        administrator or Outlook's "Recover deleted items" reaches it), not into Deleted
        Items."""
        self.http.request("DELETE", self._message(ref), what="delete")

    def set_read(self, ref: MailRef, read: bool) -> None:
        self.http.request("PATCH", self._message(ref), what="set read", json_body={"isRead": read})

    def set_flagged(self, ref: MailRef, flagged: bool) -> None:
        status = "flagged" if flagged else "notFlagged"
        body = {"flag": {"flagStatus": status}}
        self.http.request("PATCH", self._message(ref), what="set flag", json_body=body)

    def copy(self, ref: MailRef, folder: str) -> MailRef:
        """``copy``: the server copies (attachments, properties) and gives the copy's id."""
        body = {"destinationId": self._folder_id(folder)}
        made = self.http.json("POST", self._message(ref, "/copy"), what="copy", json_body=body)
        return MailRef(folder, str(made["id"]))

    def set_tracked(self, ref: MailRef, activity_id: str | None) -> None:
        """The category plus the activity id; untracking removes the category and empties
        the property (v1.0 cannot delete an extended property; empty reads as untracked)."""
        failed = self.set_tracked_many([(ref, activity_id)])
        if failed:
            raise failed[ref]

    def set_tracked_many(
        self, marks: Iterable[tuple[MailRef, str | None]]
    ) -> dict[MailRef, MailError]:
        """Mark or unmark many messages in two ``$batch`` rounds per 20 (read the categories,
        then write them with the property). Returns the refs that failed, with why (a message
        gone is :class:`MailNotFound`); a failure of the whole batch raises."""
        todo = list(dict(marks).items())
        reads = self.http.batch(
            [
                {"method": "GET", "url": f"/messages/{_q(r.uid)}?$select=categories"}
                for r, _ in todo
            ],
            what="read categories",
        )
        failed: dict[MailRef, MailError] = {}
        writes: list[tuple[MailRef, dict[str, Any]]] = []
        for (ref, activity), answer in zip(todo, reads, strict=True):
            if answer.status != 200 or not isinstance(answer.body, dict):
                failed[ref] = _member_error(answer, "set tracked", ref)
                continue
            writes.append((ref, self._marking(answer.body, activity)))
        answers = self.http.batch(
            [{"method": "PATCH", "url": f"/messages/{_q(r.uid)}", "body": b} for r, b in writes],
            what="set tracked",
        )
        for (ref, _), answer in zip(writes, answers, strict=True):
            if answer.status >= 300:
                failed[ref] = _member_error(answer, "set tracked", ref)
        return failed

    def _marking(self, row: dict[str, Any], activity: str | None) -> dict[str, Any]:
        drop = {self.tracked_category, *TRACKED_CATEGORIES}
        categories = [c for c in row.get("categories") or () if c not in drop]
        if activity is not None:
            categories.append(self.tracked_category)
        return {
            "categories": categories,
            "singleValueExtendedProperties": [{"id": ACTIVITY_PROPERTY, "value": activity or ""}],
        }

    def close(self) -> None:
        self.http.close()


_Flaggable = TypeVar("_Flaggable", MessageHeader, FlagChange)


def _with_flag(item: _Flaggable, row: dict[str, Any]) -> _Flaggable:
    """``item`` with :data:`FLAGGED_KEYWORD` among its keywords when the row is flagged."""
    flag = row.get("flag")
    if isinstance(flag, dict) and flag.get("flagStatus") == "flagged":
        return replace(item, keywords=(*item.keywords, FLAGGED_KEYWORD))
    return item


def _q(graph_id: Any) -> str:
    return quote(str(graph_id), safe="-_=")


def _b64(mime: bytes) -> str:
    return base64.b64encode(mime).decode("ascii")


def _member_error(answer: SubResponse, what: str, ref: MailRef | None = None) -> MailError:
    err = error_of(answer.status, answer.body, answer.headers, what)
    err.ref = ref
    return err
