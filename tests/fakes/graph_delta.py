"""Per-folder delta rounds of the fake Graph server. A round starts from a sync state (none:
the whole folder) and lists what changed since at the moment it starts; pages are handed out
through ``$skiptoken`` links and the round ends with a ``$deltatoken`` link holding the
mailbox's sequence at its start. Tokens live in the server, so a test can expire them all
(410 Gone, as Graph answers a sync state it no longer has)."""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.fakes.graph_json import MESSAGE_FIELDS, message_json, parse_expand, parse_select
from tests.fakes.graph_routes import DEFAULT_DELTA_PAGE, Answer, Call
from tests.fakes.graph_store import GraphError

if TYPE_CHECKING:
    from tests.fakes.graph_store import Mailbox

MAX_PAGE = 1000
_MAXPAGESIZE = re.compile(r"^odata\.maxpagesize=(\d+)$")


@dataclass
class Round:
    """A sync state: a folder, what the round selects, and either the entries still to hand
    out (``pending``, a nextLink) or the sequence the next round starts after (a deltaLink)."""

    mailbox: str
    folder_id: str
    select: tuple[str, ...] | None
    expand: tuple[str, ...] | None
    since: int
    pending: list[tuple[str, str]] | None = None  # ("message", id) | (reason, id)


def gone() -> GraphError:
    return GraphError(
        410,
        "SyncStateNotFound",
        "The sync state is not found or has expired: resync required "
        "(start a new round without a token).",
        inner="resyncRequired",
    )


class DeltaRounds:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, Round] = {}

    def expire(self, mailbox: str | None = None) -> int:
        """Forget every sync state (of ``mailbox``); their links then answer 410."""
        with self._lock:
            doomed = [k for k, r in self._states.items() if mailbox in (None, r.mailbox)]
            for key in doomed:
                del self._states[key]
            return len(doomed)

    def _keep(self, state: Round) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._states[token] = state
        return token

    def _state(self, token: str, call: Call, folder_id: str) -> Round:
        with self._lock:
            state = self._states.get(token)
        if state is None or state.mailbox != call.box.address or state.folder_id != folder_id:
            raise gone()
        return state

    def answer(self, call: Call) -> Answer:
        call.read()
        folder = call.folder(call.args[0])
        page_size, applied = _page_size(call)
        token = call.query.get("$skiptoken") or call.query.get("$deltatoken")
        if token:
            call.options("$skiptoken") if "$skiptoken" in call.query else call.options(
                "$deltatoken"
            )
            state = self._state(token, call, folder.id)
        else:
            call.options("$select", "$expand", "$top")
            if "$top" in call.query:
                page_size = _limit(call.query["$top"])
            state = Round(
                call.box.address,
                folder.id,
                parse_select(call.query.get("$select"), MESSAGE_FIELDS, "Message"),
                parse_expand(call.query.get("$expand")),
                since=-1,
            )
        if state.pending is None:  # a new round: what changed since ``since``, as of now
            state = Round(**{**state.__dict__, "pending": _changes(call.box, folder.id, state)})
            state.since = call.box.seq
        body = self._page(call, folder.id, state, page_size)
        headers = {"Preference-Applied": applied} if applied else {}
        return Answer(200, body, headers=headers)

    def _page(self, call: Call, folder_id: str, state: Round, size: int) -> dict[str, Any]:
        assert state.pending is not None
        page, rest = state.pending[:size], state.pending[size:]
        rows: list[dict[str, Any]] = []
        for kind, item_id in page:
            if kind != "message":
                rows.append(_removed(item_id, kind))
                continue
            message = call.box.messages.get(item_id)
            if message is not None and message.folder_id == folder_id:
                row = {"@odata.type": "#microsoft.graph.message"}
                row.update(message_json(call.box, message, state.select, state.expand))
                rows.append(row)
        link = f"{call.base}/mailFolders/{folder_id}/messages/delta"
        body: dict[str, Any] = {
            "@odata.context": f"{call.server.url}/$metadata#Collection(message)"
        }
        if rest:
            token = self._keep(Round(**{**state.__dict__, "pending": rest}))
            body["@odata.nextLink"] = f"{link}?$skiptoken={token}"
        else:
            token = self._keep(Round(**{**state.__dict__, "pending": None}))
            body["@odata.deltaLink"] = f"{link}?$deltatoken={token}"
        body["value"] = rows
        return body


def _removed(item_id: str, reason: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.message",
        "id": item_id,
        "@removed": {"reason": reason},
    }


def _changes(box: Mailbox, folder_id: str, state: Round) -> list[tuple[str, str]]:
    since = state.since  # the changed ones first, then sorted: a later round sorts a few
    fresh = [m for m in box.messages.values() if m.seq > since and m.folder_id == folder_id]
    fresh.sort(key=lambda m: (m.received, m.seq), reverse=True)
    changed = [("message", m.id) for m in fresh]
    if state.since < 0:
        return changed
    folder = box.folders[folder_id]
    gone_ids = [(reason, mid) for seq, mid, reason in folder.tombstones if seq > state.since]
    return changed + gone_ids


def _limit(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise GraphError(400, "BadRequest", f"Invalid page size '{raw}'.", unknown=True)
    return int(raw)


def _page_size(call: Call) -> tuple[int, str]:
    """The page size a ``Prefer: odata.maxpagesize=N`` asks for, and the preference applied;
    any other preference is not understood."""
    prefer = call.headers.get("prefer", "")
    size, applied = DEFAULT_DELTA_PAGE, ""
    for item in (p.strip() for p in prefer.split(",") if p.strip()):
        found = _MAXPAGESIZE.match(item.replace(" ", ""))
        if not found:
            raise GraphError(400, "BadRequest", f"Preference not understood: {item}", unknown=True)
        size, applied = _limit(found.group(1)), f"odata.maxpagesize={found.group(1)}"
    return size, applied
