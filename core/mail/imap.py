"""IMAP mailbox (imapclient) with SMTP for sending (:mod:`core.mail.smtp`).

Sync follows RFC 4549 ("Synchronization Operations for Disconnected IMAP4 Clients") with the
CONDSTORE shortcut of RFC 7162:

- The state holds UIDVALIDITY, the highest UID seen, HIGHESTMODSEQ at the time of the sync and
  the set of known UIDs as a compact sequence set (``1:4000,4002:9000``).
- New UIDVALIDITY: the batch says ``reset`` and the folder is listed again; refs embed the
  UIDVALIDITY (``"<uidvalidity>:<uid>"``) so a stale ref can never name another message.
- New mail: ``UID SEARCH UID last+1:*``. Removed mail: only when ``EXISTS`` differs from what we
  expect, ``UID SEARCH ALL`` against the known set. Changed flags: ``UID SEARCH MODSEQ n``
  under CONDSTORE; without it, the flags of every known message are reported (correct, costlier).
- Headers come as ``BODY.PEEK[HEADER.FIELDS (...)]``: only what the list needs travels.

``$CRMTracked`` is set as a keyword when the folder's PERMANENTFLAGS allow keywords (``\\*``).

Every operation (connect and login, SELECT, SEARCH, a FETCH batch, STORE, APPEND, ...) runs
under a total deadline (:mod:`core.mail.deadline_socket`, 120 s by default): a server that
trickles its answers costs at most that, then ``MailUnavailable`` says the deadline passed.
A header batch (500 messages, well under 1 MB) fits it on any working line; a message body
and an APPEND get time for their size on top (at 64 KB/s); IDLE gets its wait on top.
"""

from __future__ import annotations

import contextlib
import functools
import re
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from imapclient import DRAFT, SEEN, IMAPClient
from imapclient import exceptions as imap_exc

from core.domain.model import Folder, FolderRole, MailRef, MessageHeader
from core.mail.base import (
    FLAGGED_KEYWORD,
    TRACKED_KEYWORD,
    FlagChange,
    MailAuthError,
    MailBackend,
    MailError,
    MailNotFound,
    MailProtocolError,
    MailUnavailable,
    SyncBatch,
    folder_path,
    role_for_name,
    tree_order,
)
from core.mail.deadline_socket import (
    DEFAULT_COMMAND_DEADLINE,
    CommandClock,
    MailDeadlineExceeded,
    deadline_behind,
    deadline_for,
    seconds_text,
)
from core.mail.imap_state import decode_state, encode_state, seqset_to_uids, uids_to_seqset
from core.mail.imap_wire import (
    DeadlineIMAPClient,
    body_fetch,
    chunks,
    create,
    error_text,
    fetch_range,
    flags_of,
    header_fetch,
    is_read,
    keywords,
)
from core.mail.parse import parse_headers
from core.mail.smtp import SmtpSender

T = TypeVar("T")

_FIELDS = (
    b"BODY.PEEK[HEADER.FIELDS (FROM SENDER TO CC SUBJECT DATE MESSAGE-ID IN-REPLY-TO "
    b"REFERENCES THREAD-INDEX CONTENT-TYPE CONTENT-DISPOSITION)]"
)
# What a header sync fetches of each message (bench/mail_sync.py asks the same).
HEADER_ITEMS = b"FLAGS RFC822.SIZE " + _FIELDS
_SPECIAL_USE = {
    b"\\sent": "sent",
    b"\\drafts": "drafts",
    b"\\trash": "deleted",
    b"\\junk": "junk",
    b"\\inbox": "inbox",
}
_UID_RESP = re.compile(rb"\[(?:APPENDUID|COPYUID) (\d+) (?:[\d:,]+ )?(\d+)\]")


class ImapBackend(MailBackend):
    """An IMAP account; ``security`` is ``"tls"`` (implicit), ``"starttls"`` (required) or
    ``"none"`` (tests on loopback). Certificates are verified unless ``ssl_context`` says
    otherwise. ``smtp_url`` enables :meth:`send`; ``save_sent=False`` for servers that file
    sent mail themselves (Gmail). ``timeout`` bounds one receive or send; ``deadline`` (by
    default :data:`~core.mail.deadline_socket.DEFAULT_COMMAND_DEADLINE`, read at
    construction) a whole operation, for SMTP too."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "tls",
        user: str,
        password: str = "",
        oauth_token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        smtp_url: str | None = None,
        smtp_user: str | None = None,
        smtp_password: str | None = None,
        save_sent: bool = True,
        use_condstore: bool = True,
        use_qresync: bool = True,
        timeout: float = 60.0,
        deadline: float | None = None,
    ) -> None:
        if security not in ("tls", "starttls", "none"):
            raise MailProtocolError("unknown IMAP security", server_says=security)
        self.host, self.port, self.security = host, port, security
        self.user, self.password, self.oauth_token = user, password, oauth_token
        self.context = ssl_context or ssl.create_default_context()
        self.timeout = timeout
        self.deadline = DEFAULT_COMMAND_DEADLINE if deadline is None else float(deadline)
        self._clock = CommandClock()
        self.save_sent = save_sent
        self.use_condstore = use_condstore
        self.use_qresync = use_qresync
        self.smtp = (
            SmtpSender(
                smtp_url,
                user=smtp_user or user,
                password=smtp_password if smtp_password is not None else password,
                ssl_context=ssl_context,
                deadline=self.deadline,
            )
            if smtp_url
            else None
        )
        self._client: IMAPClient | None = None
        self._condstore = False
        self._qresync = False
        self._lock = threading.RLock()  # the sync prefetch worker shares the connection
        self._selected: str | None = None
        self._select_info: dict[bytes, Any] = {}
        self._names: dict[str, str] = {}  # neutral path -> IMAP name
        self._delimiter = "/"

    # --- connection --------------------------------------------------------------------------

    def _connect(self) -> IMAPClient:
        if self._client is not None:
            return self._client
        try:
            client = DeadlineIMAPClient(
                self.host,
                self.port,
                clock=self._clock,
                ssl_context=self.context,
                tls=self.security == "tls",
                timeout=self.timeout,
            )
            try:
                self._start_session(client)
            except BaseException:
                with contextlib.suppress(Exception):  # a half-open session is of no use
                    client.shutdown()
                raise
        except imap_exc.LoginError as exc:
            raise MailAuthError("IMAP login refused", server_says=error_text(exc)) from exc
        except ssl.SSLCertVerificationError as exc:
            raise MailProtocolError(
                "IMAP server certificate not trusted", server_says=str(exc)
            ) from exc
        except MailDeadlineExceeded as exc:
            raise _too_slow("connect and login", exc) from exc
        except (TimeoutError, OSError) as exc:
            raise MailUnavailable("IMAP server unreachable", server_says=str(exc)) from exc
        except imap_exc.IMAPClientError as exc:
            if (late := deadline_behind(exc)) is not None:  # imaplib wrapped it
                raise _too_slow("connect and login", late) from exc
            raise MailProtocolError(
                "IMAP server refused the session", server_says=error_text(exc)
            ) from exc
        self._client = client
        self._selected = None
        return client

    def _start_session(self, client: IMAPClient) -> None:
        """STARTTLS when asked, login, and CONDSTORE/QRESYNC when the server has them."""
        if self.security == "starttls":
            if b"STARTTLS" not in client.capabilities():
                raise MailProtocolError("server does not offer STARTTLS", server_says=self.host)
            client.starttls_bounded()
        if self.oauth_token:
            client.oauth2_login(self.user, self.oauth_token)
        else:
            client.login(self.user, self.password)
        caps = client.capabilities()
        self._condstore = self.use_condstore and b"CONDSTORE" in caps
        self._qresync = (
            self._condstore and self.use_qresync and b"QRESYNC" in caps and b"ENABLE" in caps
        )
        if self._qresync:
            client.enable("QRESYNC")  # implies CONDSTORE
        elif self._condstore and b"ENABLE" in caps:
            client.enable("CONDSTORE")

    def _run(self, what: str, fn: Callable[[IMAPClient], T], deadline: float | None = None) -> T:
        """Run ``fn`` on a live connection, reconnecting once if the old one died (servers
        drop idle sessions after 30 minutes), and turn library errors into ours. Each attempt
        (connecting included) ends by ``deadline`` seconds (:attr:`deadline` by default); one
        that runs out is not retried: the server is there, but too slow."""
        with self._lock:
            return self._run_locked(what, fn, self.deadline if deadline is None else deadline)

    def _run_locked(self, what: str, fn: Callable[[IMAPClient], T], deadline: float) -> T:
        for attempt in (1, 2):
            try:
                with self._clock.bounded(deadline):
                    return fn(self._connect())
            except MailError:
                raise
            except MailDeadlineExceeded as exc:
                self._drop()
                raise _too_slow(what, exc) from exc
            except (TimeoutError, imap_exc.IMAPClientAbortError, OSError) as exc:
                self._drop()
                if (late := deadline_behind(exc)) is not None:  # imaplib wrapped it
                    raise _too_slow(what, late) from exc
                if attempt == 2:
                    raise MailUnavailable(
                        f"IMAP connection lost during {what}", server_says=str(exc)
                    ) from exc
            except imap_exc.IMAPClientError as exc:
                raise MailProtocolError(f"IMAP {what} failed", server_says=error_text(exc)) from exc
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        client, self._client, self._selected = self._client, None, None
        if client is not None:
            try:
                client.shutdown()
            except Exception:
                pass

    def close(self) -> None:
        client, self._client, self._selected = self._client, None, None
        if client is not None:
            try:
                with self._clock.bounded(self.deadline):
                    client.logout()
            except Exception:
                try:
                    client.shutdown()
                except Exception:
                    pass

    # --- folders -----------------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        listing = self._run("LIST", lambda c: c.list_folders())
        out: dict[str, Folder] = {}
        names: dict[str, str] = {}
        for flags, delim, name in listing:
            flags_l = {f.lower() for f in flags}
            if b"\\noselect" in flags_l or b"\\nonexistent" in flags_l:
                continue
            sep = (delim or b"/").decode()
            self._delimiter = sep
            parts = name.split(sep) if sep else [name]
            if parts[0].upper() == "INBOX":
                parts[0] = "Inbox"
            path = folder_path(parts)
            names[path] = name
            role = next((_SPECIAL_USE[f] for f in flags_l if f in _SPECIAL_USE), None)
            if role is None and len(parts) == 1:
                role = role_for_name(parts[0])
            parent = "/".join(parts[:-1]) or None
            out[path] = Folder(path, parts[-1], FolderRole(role) if role else None, parent)
        self._names = names
        return sorted(out.values(), key=lambda f: tree_order(f.path))

    def create_folder(self, path: str) -> Folder:
        """Create a folder (parents first); existing folders are fine."""
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub.casefold() == "inbox":
                continue
            name = self._delimiter.join(
                ["INBOX", *parts[1:i]] if parts[0] == "Inbox" else parts[:i]
            )
            try:
                self._run("CREATE", functools.partial(create, name=name))
            except MailProtocolError as exc:
                if "exists" not in exc.server_says.lower():
                    raise
        return next(f for f in self.folders() if f.path == path)

    def _imap_name(self, folder: str) -> str:
        if folder.casefold() == "inbox":
            return "INBOX"
        if folder not in self._names:
            self.folders()
        if folder not in self._names:
            raise MailNotFound("no such folder", folder=folder)
        return self._names[folder]

    def _select(self, c: IMAPClient, folder: str, *, fresh: bool = False) -> dict[bytes, Any]:
        """SELECT ``folder`` unless it is selected already (read-write); ``fresh``: again
        anyway, when EXISTS, UIDNEXT and HIGHESTMODSEQ must be current."""
        name = self._imap_name(folder)
        if fresh or self._selected != folder or self._select_info.get(b"READ-ONLY"):
            try:
                self._select_info = c.select_folder(name)
            except imap_exc.IMAPClientAbortError:
                raise  # connection lost: _run reconnects
            except imap_exc.IMAPClientError as exc:
                self._selected = None
                raise MailNotFound(
                    "cannot open folder", server_says=error_text(exc), folder=folder
                ) from exc
            self._selected = folder
        return self._select_info

    # --- sync --------------------------------------------------------------------------------

    def sync(self, folder: str, state: str | None, batch_size: int = 500) -> Iterator[SyncBatch]:
        old = decode_state(state)
        info = self._run("SELECT", lambda c: self._select(c, folder, fresh=True))
        validity = int(info[b"UIDVALIDITY"])
        modseq = int(info.get(b"HIGHESTMODSEQ", 0)) if self._condstore else 0
        exists = int(info.get(b"EXISTS", 0))
        # An unreadable state is treated like a new UIDVALIDITY: start over, without duplicates.
        reset = state is not None and (old is None or old["v"] != validity)
        if old is None or reset:
            known: set[int] = set()
            last = 0
            all_uids = sorted(self._run("SEARCH", lambda c: c.search(["ALL"])))
            new_uids = all_uids
            # After a UIDVALIDITY change every ref the caller holds is void: say which ones,
            # besides ``reset``, so a caller that only applies ``removed`` is right as well.
            removed: tuple[MailRef, ...] = (
                tuple(MailRef(folder, f"{old['v']}:{u}") for u in sorted(seqset_to_uids(old["u"])))
                if old is not None
                else ()
            )
            changed: list[FlagChange] = []
        else:
            known = seqset_to_uids(old["u"])
            last = old["l"]
            uidnext = int(info.get(b"UIDNEXT", 0))
            if uidnext and uidnext <= last + 1:
                new_uids = []  # UIDNEXT says nothing arrived: no SEARCH round trip
            elif uidnext and uidnext - last - 1 <= batch_size:
                # A few arrived: fetch every UID they can have, without a SEARCH round
                # trip; the FETCH leaves out those expunged meanwhile.
                new_uids = list(range(last + 1, uidnext))
            else:
                new_uids = sorted(
                    u
                    for u in self._run("SEARCH", lambda c: c.search(["UID", f"{last + 1}:*"]))
                    if u > last
                )
            if self._qresync and old["m"] and known:
                # One round trip: flags changed since the old MODSEQ, and VANISHED UIDs.
                changed, gone = self._qresync_changes(
                    folder, validity, known, last, old["m"], modseq
                )
            else:
                gone = set()
                if exists != len(known) + len(new_uids):
                    present = set(self._run("SEARCH", lambda c: c.search(["ALL"])))
                    gone = known - present
                    new_uids = sorted(u for u in present if u > last)
                changed = self._changes(folder, validity, known - gone, old["m"], modseq)
            known -= gone
            changed = [c for c in changed if int(c.ref.uid.partition(":")[2]) in known]
            removed = tuple(MailRef(folder, f"{validity}:{u}") for u in sorted(gone))
        yield from self._added(
            folder, validity, modseq, known, last, new_uids, batch_size, removed, changed, reset
        )

    def _changes(
        self, folder: str, validity: int, known: set[int], since: int, modseq: int
    ) -> list[FlagChange]:
        if not known:
            return []
        if self._condstore and since:
            if modseq <= since:
                return []
            uids = [
                u
                for u in self._run("SEARCH", lambda c: c.search(["MODSEQ", str(since + 1)]))
                if u in known
            ]
        else:
            uids = sorted(known)
        out: list[FlagChange] = []
        for chunk in chunks(uids, 1000):
            rows: dict[int, Any] = self._run("FETCH", functools.partial(flags_of, uids=chunk))
            out.extend(_flag_change(folder, validity, uid, data) for uid, data in rows.items())
        return out

    def _headers_of(
        self, c: IMAPClient, folder: str, validity: int, uids: list[int]
    ) -> dict[int, MessageHeader]:
        """Headers by UID, each parsed as soon as it is read (the server sends the next
        ones meanwhile)."""
        self._select(c, folder)
        out: dict[int, MessageHeader] = {}
        for row in header_fetch(c, uids_to_seqset(set(uids)), HEADER_ITEMS):
            kws = _keywords(row.flags)
            out[row.uid] = parse_headers(
                row.block,
                MailRef(folder, f"{validity}:{row.uid}"),
                size=row.size,
                is_read=b"\\Seen" in row.flags,
                keywords=kws,
                tracked_marker=_marker(kws),
            )
        return out

    def _qresync_changes(
        self, folder: str, validity: int, known: set[int], last: int, since: int, modseq: int
    ) -> tuple[list[FlagChange], set[int]]:
        if modseq <= since:
            return [], set()

        def run(c: IMAPClient) -> tuple[dict[int, Any], list[bytes]]:
            untagged = c._imap.untagged_responses
            untagged.pop("VANISHED", None)
            rows = fetch_range(c, f"1:{last}", ["FLAGS"], [f"CHANGEDSINCE {since}", "VANISHED"])
            return rows, untagged.pop("VANISHED", [])

        rows, vanished = self._run("FETCH", run)
        gone: set[int] = set()
        for line in vanished:
            gone |= seqset_to_uids(line.replace(b"(EARLIER)", b"").strip().decode())
        gone &= known
        out = [
            _flag_change(folder, validity, uid, data)
            for uid, data in sorted(rows.items())
            if uid in known and uid not in gone
        ]
        return out, gone

    def _added(
        self,
        folder: str,
        validity: int,
        modseq: int,
        known: set[int],
        last: int,
        new_uids: list[int],
        batch_size: int,
        removed: tuple[MailRef, ...],
        changed: list[FlagChange],
        reset: bool,
    ) -> Iterator[SyncBatch]:
        first = True
        # Batches are fetched and parsed as they are asked for: the caller decides about
        # overlap (core.sync.mailbox runs this iterator on its own thread while it stores).
        for chunk in list(chunks(new_uids, max(1, batch_size))) or [[]]:
            headers, present = self._fetch_headers(folder, validity, chunk)
            if chunk:
                known.update(present)  # an expunged one is not "known"
                last = max(last, chunk[-1])
            state = encode_state(validity, last, modseq, known)
            yield SyncBatch(
                state,
                tuple(headers),
                tuple(changed) if first else (),
                removed if first else (),
                reset and first,
            )
            first = False

    def _fetch_headers(
        self, folder: str, validity: int, uids: list[int]
    ) -> tuple[list[MessageHeader], list[int]]:
        """Headers of ``uids`` (those still there) and the UIDs that were present."""
        if not uids:
            return [], []
        got = self._run(
            "FETCH",
            functools.partial(self._headers_of, folder=folder, validity=validity, uids=uids),
        )
        present = [u for u in uids if u in got]  # a gap: expunged meanwhile
        return [got[u] for u in present], present

    def wait_for_changes(self, folder: str, timeout: float) -> bool:
        """IMAP IDLE (RFC 2177): block until the server reports a change in ``folder`` or
        ``timeout`` seconds pass; True if something changed (then :meth:`sync`). Without IDLE
        support, returns False at once and the caller keeps its interval."""

        def run(c: IMAPClient) -> bool:
            if not c.has_capability("IDLE"):
                return False
            self._select(c, folder, fresh=True)
            c.idle()
            try:
                responses = c.idle_check(timeout=timeout)
            finally:
                c.idle_done()
            return any(
                r[1] in (b"EXISTS", b"EXPUNGE", b"FETCH", b"VANISHED")
                for r in responses
                if isinstance(r, tuple) and len(r) > 1
            )

        return self._run("IDLE", run, self.deadline + max(0.0, timeout))

    # --- messages ----------------------------------------------------------------------------

    def _uid(self, c: IMAPClient, ref: MailRef) -> int:
        info = self._select(c, ref.folder)
        validity, _, uid = ref.uid.partition(":")
        if not uid.isdigit() or int(validity or -1) != int(info[b"UIDVALIDITY"]):
            raise MailNotFound("message ref is stale (UIDVALIDITY changed)", ref=ref)
        return int(uid)

    def fetch(self, ref: MailRef) -> bytes:
        def run(c: IMAPClient) -> bytes:
            uid = self._uid(c, ref)
            # The size first, so a large message gets time for its size (see deadline_for).
            sizes = c.fetch([uid], ["RFC822.SIZE"])
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            self._clock.extend_to(deadline_for(self.deadline, size))
            rows = c.fetch([uid], ["BODY.PEEK[]"])
            if uid not in rows:
                raise MailNotFound("message is gone", ref=ref)
            return bytes(rows[uid][b"BODY[]"])

        return self._run("FETCH", run)

    def fetch_many(self, refs: Sequence[MailRef], size: int = 0) -> list[tuple[MailRef, bytes]]:
        """The raw messages of ``refs`` (all in one folder) in one ``UID FETCH``, for caching
        bodies in bulk; ``size`` is their total size, if known, to allow the time it takes.
        Refs gone from the server or stale (another UIDVALIDITY) are left out."""
        if not refs:
            return []
        folder = refs[0].folder

        def run(c: IMAPClient) -> list[tuple[MailRef, bytes]]:
            validity = str(self._select(c, folder)[b"UIDVALIDITY"])
            wanted: dict[int, MailRef] = {}
            for ref in refs:
                v, _, uid = ref.uid.partition(":")
                if ref.folder == folder and v == validity and uid.isdigit():
                    wanted[int(uid)] = ref
            if not wanted:
                return []
            self._clock.extend_to(deadline_for(self.deadline, size))
            return [
                (wanted[uid], raw)
                for uid, raw in body_fetch(c, uids_to_seqset(set(wanted)))
                if uid in wanted
            ]

        return self._run("FETCH", run)

    def send(self, mime: bytes) -> None:
        if self.smtp is None:
            raise MailProtocolError("no SMTP server configured for sending")
        self.smtp.send(mime)
        if self.save_sent:
            self.append(self.folder("sent").path, mime, is_read=True)

    def append(self, folder: str, mime: bytes, *, is_read: bool = True) -> MailRef:
        return self._append(folder, mime, [SEEN] if is_read else [])

    def append_draft(self, folder: str, mime: bytes) -> MailRef:
        """APPEND ``mime`` to ``folder`` flagged ``\\Draft`` (and ``\\Seen``) by the one
        command, as other clients save drafts: never a moment without the flag."""
        return self._append(folder, mime, [SEEN, DRAFT])

    def _append(self, folder: str, mime: bytes, flags: list[bytes]) -> MailRef:
        name = self._imap_name(folder)

        def run(c: IMAPClient) -> MailRef:
            resp = c.append(name, mime, flags, msg_time=datetime.now().astimezone())
            m = _UID_RESP.search(resp if isinstance(resp, bytes) else str(resp).encode())
            if m:
                return MailRef(folder, f"{int(m.group(1))}:{int(m.group(2))}")
            # No UIDPLUS: the newest message of the folder is ours.
            info = self._select(c, folder, fresh=True)
            uids = c.search(["ALL"])
            return MailRef(folder, f"{int(info[b'UIDVALIDITY'])}:{max(uids)}")

        return self._run("APPEND", run, deadline_for(self.deadline, len(mime)))

    def move(self, ref: MailRef, folder: str) -> MailRef:
        dest = self._imap_name(folder)

        def run(c: IMAPClient) -> MailRef:
            uid = self._uid(c, ref)
            untagged = c._imap.untagged_responses  # COPYUID arrives untagged with MOVE
            untagged.pop("COPYUID", None)
            if c.has_capability("MOVE"):
                resp = c.move([uid], dest)
            else:
                resp = c.copy([uid], dest)
                c.add_flags([uid], [b"\\Deleted"])
                c.uid_expunge([uid]) if c.has_capability("UIDPLUS") else c.expunge()
            text = b" ".join(b"[COPYUID " + v + b"]" for v in untagged.pop("COPYUID", []))
            if isinstance(resp, bytes):
                text += resp
            m = _UID_RESP.search(text)
            if not m:
                raise MailProtocolError(
                    "server did not say where the message went (no UIDPLUS)", ref=ref
                )
            return MailRef(folder, f"{int(m.group(1))}:{int(m.group(2))}")

        return self._run("MOVE", run)

    def delete(self, ref: MailRef) -> None:
        def run(c: IMAPClient) -> None:
            uid = self._uid(c, ref)
            result = c.add_flags([uid], [b"\\Deleted"])
            if uid not in (result or {}) and uid not in c.search(["UID", str(uid)]):
                raise MailNotFound("message is gone", ref=ref)
            c.uid_expunge([uid]) if c.has_capability("UIDPLUS") else c.expunge()

        self._run("EXPUNGE", run)

    def set_read(self, ref: MailRef, read: bool) -> None:
        self._flag(ref, b"\\Seen", read)

    def set_flagged(self, ref: MailRef, flagged: bool) -> None:
        self._flag(ref, b"\\Flagged", flagged)

    def copy(self, ref: MailRef, folder: str) -> MailRef:
        """UID COPY; the new UID from COPYUID (UIDPLUS), else the copy is appended."""
        dest = self._imap_name(folder)

        def run(c: IMAPClient) -> MailRef:
            uid = self._uid(c, ref)
            if uid not in c.search(["UID", str(uid)]):
                raise MailNotFound("message is gone", ref=ref)
            resp = c.copy([uid], dest)
            m = _UID_RESP.search(resp if isinstance(resp, bytes) else str(resp).encode())
            if m:
                return MailRef(folder, f"{int(m.group(1))}:{int(m.group(2))}")
            # No UIDPLUS: the newest message of the folder is the copy.
            info = self._select(c, folder, fresh=True)
            return MailRef(folder, f"{int(info[b'UIDVALIDITY'])}:{max(c.search(['ALL']))}")

        return self._run("COPY", run)

    def set_tracked(self, ref: MailRef, activity_id: str | None) -> None:
        """``$CRMTracked`` keyword; the activity id itself stays in the local store (a keyword
        per activity would exhaust servers' keyword tables)."""

        def allowed(c: IMAPClient) -> bool:
            return b"\\*" in self._select(c, ref.folder).get(b"PERMANENTFLAGS", ())

        if self._run("SELECT", allowed):
            self._flag(ref, TRACKED_KEYWORD.encode(), activity_id is not None)

    def _flag(self, ref: MailRef, flag: bytes, on: bool) -> None:
        def run(c: IMAPClient) -> None:
            uid = self._uid(c, ref)
            # A STORE on a vanished UID "succeeds"; no FETCH reply (also the case when the flag
            # was already so) means: ask whether the message is still there.
            result = (c.add_flags if on else c.remove_flags)([uid], [flag])
            if uid not in (result or {}) and uid not in c.search(["UID", str(uid)]):
                raise MailNotFound("message is gone", ref=ref)

        self._run("STORE", run)


# --- helpers --------------------------------------------------------------------------------


def _too_slow(what: str, exc: MailDeadlineExceeded) -> MailUnavailable:
    """A command that ran out of time: the server is reachable but too slow (or trickles)."""
    return MailUnavailable(
        f"IMAP {what} exceeded its deadline of {seconds_text(exc.seconds)} s (server too slow)",
        server_says=str(exc),
    )


def _keywords(flags: Any) -> tuple[str, ...]:
    """The keywords of a FLAGS list, with ``\\Flagged`` as :data:`FLAGGED_KEYWORD`."""
    kws = keywords(flags)
    return (*kws, FLAGGED_KEYWORD) if b"\\Flagged" in flags else kws


def _marker(kws: tuple[str, ...]) -> str | None:
    """The tracked marker a message's keywords carry, if any."""
    return TRACKED_KEYWORD if TRACKED_KEYWORD in kws else None


def _flag_change(folder: str, validity: int, uid: int, data: dict[bytes, Any]) -> FlagChange:
    """A FETCH reply's FLAGS as a :class:`FlagChange` of ``uid``."""
    kws = _keywords(data.get(b"FLAGS", ()))
    return FlagChange(MailRef(folder, f"{validity}:{uid}"), is_read(data), kws, _marker(kws))
