"""The tracked state follows the CRM (issue 13): which mail is tracked is what the CRM says,
whoever tracked it, from wherever, however long ago.

The first refresh reads every e-mail activity the user can see, page by page, into the local
copy (``core.store.crm_emails``); the link to the next page is saved with each page, so an
interrupted pull resumes where it stopped. Then each refresh reads only the change-tracking
delta since the last one, so its cost grows with the number of changes, not with the size of
the mailbox or of the CRM. Each page updates the stored copies of the Message-IDs it names
(the pure rules are ``core.sync.plan.plan_refresh``). An expired delta link starts a new full
pull; local tracked state is kept meanwhile and corrected page by page.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.crm import CrmClient, CrmPermanentError, DeltaPage
from core.crm.wire import lookup_ref
from core.domain.correlation import Correlator, TrackedEmail
from core.prefetch import prefetched
from core.store import SqliteCorrelationIndex, Store
from core.store.correlation import EmailRows, email_rows
from core.store.crm_emails import CrmEmailCopy, RefreshReasons
from core.sync.plan import TRACKED_BY_OTHER, TRACKED_IN_CRM, UNTRACKED_IN_CRM, StateChange

log = logging.getLogger(__name__)

#: The e-mail columns correlation and the tracked state need, and nothing else.
EMAIL_COLUMNS = (
    "activityid",
    "subject",
    "messageid",
    "trackingtoken",
    "conversationindex",
    "sender",
    "torecipients",
    "senton",
    "createdon",
    "_regardingobjectid_value",
    "_ownerid_value",
)
PAGE_SIZE = 2000

Progress = Callable[[int], None]

_REASONS = RefreshReasons(TRACKED_IN_CRM, TRACKED_BY_OTHER, UNTRACKED_IN_CRM)


@dataclass
class RefreshResult:
    """What one refresh did: a full pull (``full``) or a delta, the e-mails read and removed,
    and the state changes applied to stored messages."""

    full: bool = False
    emails: int = 0
    removed: int = 0
    changes: list[StateChange] = field(default_factory=list)
    cancelled: bool = False


def _parse_when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _addresses(*values: Any) -> list[str]:
    out: list[str] = []
    for value in values:
        if isinstance(value, str):
            out.extend(a for a in value.replace(",", ";").split(";") if "@" in a)
    return out


def email_entry(correlator: Correlator, row: Mapping[str, Any]) -> TrackedEmail | None:
    """The index entry of one ``emails`` row; None for a row without an id."""
    activity = str(row.get("activityid") or "").lower()
    if not activity:
        return None
    owner = row.get("_ownerid_value")
    smart = correlator.settings.smart_matching  # the only reader of the addresses
    return correlator.crm_email(
        activity,
        subject=str(row.get("subject") or ""),
        message_id=str(row.get("messageid") or "") or None,
        token=str(row.get("trackingtoken") or "") or None,
        conversation_index=str(row.get("conversationindex") or "") or None,
        addresses=_addresses(row.get("sender"), row.get("torecipients")) if smart else (),
        sent_on=_parse_when(row.get("senton")) or _parse_when(row.get("createdon")),
        regarding=lookup_ref(row, "regardingobjectid"),
        owner_id=str(owner).lower() if owner else None,
    )


def email_entries(correlator: Correlator, rows: Iterable[Mapping[str, Any]]) -> list[TrackedEmail]:
    return [e for e in (email_entry(correlator, r) for r in rows) if e is not None]


class TrackedStateRefresh:
    """One refresh of the tracked state from the CRM (see the module docstring). ``me`` is
    the user's systemuserid: e-mails owned by someone else show *tracked by someone else*."""

    def __init__(
        self,
        store: Store,
        crm: CrmClient,
        correlator: Correlator,
        me: str | None,
        *,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.store = store
        self.crm = crm
        self.correlator = correlator
        self.index = SqliteCorrelationIndex(store)
        self.copy = CrmEmailCopy(store)
        self.me = me.lower() if me else None
        self.cancel = cancel or threading.Event()
        self.progress = progress
        self.page_size = page_size

    def run(self) -> RefreshResult:
        """A delta when a delta link is stored, else a full pull (or its resumption).
        Raises CrmUnavailable / CrmAuthError: the caller goes offline; nothing is lost."""
        with self.store.deferred_checkpoint():  # a pull writes many pages: one checkpoint
            return self._run()

    def _run(self) -> RefreshResult:
        state = self.copy.state()
        if state.key_settings != self.correlator.key_settings():
            if state.delta_link or state.pulling:
                log.info("tracked state: correlation settings changed, full pull")
            self.copy.forget()
            state = self.copy.state()
        if state.delta_link and not state.pulling:
            try:
                return self._delta(state.delta_link, state.generation)
            except CrmPermanentError as exc:  # expired or refused token: read everything
                log.info("tracked state delta refused (%s): full pull", exc.message)
                self.copy.forget()
        return self._pull()

    # -- full pull ------------------------------------------------------------------------

    def _pull(self) -> RefreshResult:
        state = self.copy.state()
        resume = state.next_link if state.pulling and state.next_link else None
        keys = self.correlator.key_settings()
        generation = state.generation if resume else self.copy.begin_pull(keys)
        try:
            return self._read_pull(generation, resume)
        except CrmPermanentError:
            if resume is None:
                raise
            log.info("tracked state pull could not resume: starting again")
            return self._read_pull(self.copy.begin_pull(keys), None)

    def _read_pull(self, generation: int, resume: str | None) -> RefreshResult:
        result = RefreshResult(full=True)
        for page, entries in self._pages(resume, generation):
            with self.store.transaction():
                self.index.add_many(entries)
                result.changes += self._apply(entries.message_ids)
                if page.next_link:
                    self.copy.save_next_link(page.next_link)
                else:
                    gone = self.copy.finish_pull(generation, page.delta_link or "")
                    result.removed = len(gone)
                    result.changes += self._apply([*gone, *self.copy.shown_tracked_without_email()])
            result.emails += len(entries)
            self._progressed(result.emails)
            if page.next_link and self.cancel.is_set():
                result.cancelled = True  # resumes from the saved link next time
                break
        log.info(
            "tracked state pull generation=%d emails=%d removed=%d changed=%d%s",
            generation,
            result.emails,
            result.removed,
            len(result.changes),
            " (cancelled)" if result.cancelled else "",
        )
        return result

    # -- delta ----------------------------------------------------------------------------

    def _delta(self, link: str, generation: int) -> RefreshResult:
        result = RefreshResult()
        new_link = None
        for page, entries in self._pages(link, generation):
            with self.store.transaction():
                # Entries that changed may have had another Message-ID: both are refreshed.
                before = self.copy.message_ids_of(entries.activity_ids)
                self.index.add_many(entries)
                gone = self.index.remove_many(page.deleted)
                result.changes += self._apply([*before, *entries.message_ids, *gone])
            result.emails += len(entries)
            result.removed += len(page.deleted)
            new_link = page.delta_link or new_link
            self._progressed(result.emails)
        if new_link:
            self.copy.save_delta_link(new_link)
        log.info(
            "tracked state delta emails=%d removed=%d changed=%d",
            result.emails,
            result.removed,
            len(result.changes),
        )
        return result

    def _pages(self, link: str | None, mark: int) -> Iterator[tuple[DeltaPage, EmailRows]]:
        """Pages and their rows for the index (marked as seen by pull ``mark``), read and
        parsed on a helper thread while the previous page is stored; the store's thread only
        runs the SQL. (A second thread for the downloads alone measured slower: the two
        helpers then compete for the interpreter lock with the SQL.)"""
        pages = self.crm.track_changes_pages(
            "emails", EMAIL_COLUMNS, link, page_size=self.page_size, annotations=True
        )
        stream = prefetched(self._parsed(pages, mark), depth=2, name="trackbox-tracked-state")
        try:
            yield from stream
        finally:
            stream.close()

    def _parsed(
        self, pages: Iterator[DeltaPage], mark: int
    ) -> Iterator[tuple[DeltaPage, EmailRows]]:
        try:
            for page in pages:
                yield page, email_rows(email_entries(self.correlator, page.rows), mark)
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    # -- local side -----------------------------------------------------------------------

    def _apply(self, message_ids: Iterable[str | None]) -> list[StateChange]:
        """Bring the stored copies of these Message-IDs to what the stored CRM copy says
        (the rules: ``core.sync.plan.plan_refresh``, run as one statement by the store)."""
        rows = self.copy.refresh_states((m for m in message_ids if m), self.me, _REASONS)
        return [StateChange(*row) for row in rows]

    def _progressed(self, count: int) -> None:
        if self.progress is not None:
            self.progress(count)


__all__ = ["EMAIL_COLUMNS", "RefreshResult", "TrackedStateRefresh", "email_entries", "email_entry"]
