"""The mailbox side of appointments or tasks for IMAP users: one CalDAV calendar (or task
list) on a CalDAV server such as Radicale, as a :class:`core.pim.sides.PimSide`.

Incremental by the collection's sync-token (RFC 6578 sync-collection REPORT, asking for
``getetag`` and ``calendar-data`` at once, so that a sync is one round trip rather than one
GET per item); a token the server no longer knows falls back to a full listing (``full``).
Writes are conditional: a create sends ``If-None-Match: *``, an update or delete
``If-Match: <etag>``, and a 412 is a :class:`VersionConflict` for the engine to merge.

The ``caldav`` library carries the HTTP (authentication, TLS, its session); the
multistatus answers are read here with the standard library, keeping this module to the
small part of WebDAV it needs. An item whose iCalendar cannot be read is skipped and
logged, never reported as deleted.
"""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import caldav
from caldav.lib import error as dav_error

from core.pim.ical_map import IcalError, from_ical, parse_calendar, to_ical
from core.pim.sides import ChangePage, PimKind, PimRecord, SideChange, SideError, VersionConflict

log = logging.getLogger("trackbox.pim.caldav")

NS = {"d": "DAV:", "c": "urn:ietf:params:xml:ns:caldav"}
SYNC_BODY = """<?xml version="1.0" encoding="utf-8"?>
<d:sync-collection xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
  <d:sync-token>{token}</d:sync-token>
  <d:sync-level>1</d:sync-level>
  <d:prop><d:getetag/><c:calendar-data/></d:prop>
</d:sync-collection>"""
#: The component each kind lives in.
COMPONENTS = {PimKind.APPOINTMENT: "VEVENT", PimKind.TASK: "VTODO"}
ICAL_TYPE = "text/calendar; charset=utf-8"


@dataclass(frozen=True, slots=True)
class _Member:
    """One member of a sync-collection answer: gone (``data`` None, ``found`` False) or
    present with its ETag and, when the server sent it, its iCalendar."""

    href: str
    found: bool
    etag: str = ""
    data: str | None = None


class CalDavSide:
    """A CalDAV collection as one side of one kind (appointments or tasks). ``key`` is the
    item's href (a path on the server), ``version`` its ETag."""

    def __init__(self, client: caldav.DAVClient, collection_url: str, kind: PimKind) -> None:
        if kind not in COMPONENTS:
            raise ValueError(f"a CalDAV collection holds appointments or tasks, not {kind}")
        self.client = client
        self.url = collection_url if collection_url.endswith("/") else collection_url + "/"
        self.kind = kind
        self.component = COMPONENTS[kind]

    @classmethod
    def connect(
        cls,
        collection_url: str,
        kind: PimKind,
        *,
        username: str | None = None,
        password: str | None = None,
        verify: bool | str = True,
        timeout: int = 30,
    ) -> CalDavSide:
        """A side on ``collection_url`` (the calendar's own URL) with its own client;
        ``verify`` is True, False or a CA file, as the ``caldav`` library takes it."""
        client = caldav.DAVClient(
            url=collection_url,
            username=username,
            password=password,
            ssl_verify_cert=verify,
            timeout=timeout,
        )
        return cls(client, collection_url, kind)

    # -- reading ---------------------------------------------------------------------------

    def changes(self, token: str | None) -> ChangePage:
        """Changes since ``token`` (everything, ``full``, when None or no longer valid)."""
        if token:
            try:
                members, new_token = self._sync(token)
                return ChangePage(self._changes(members), new_token, full=False)
            except _TokenRefused:
                log.info("CalDAV sync token refused by %s; listing everything", self.url)
        members, new_token = self._sync("")
        # An initial sync may still name members deleted long ago (Radicale keeps their
        # history): a full listing says what is there, so they are left out.
        present = [c for c in self._changes(members) if c.record is not None]
        return ChangePage(present, new_token, full=True)

    def get(self, key: str) -> SideChange | None:
        response = self._request(key, "GET", "", {})
        if response.status == 404:
            return None
        self._check(response, "GET", key)
        record = self._record(key, str(response.raw))
        if record is None:
            return None
        return SideChange(key, record, _etag(response.headers))

    def _sync(self, token: str) -> tuple[list[_Member], str]:
        body = SYNC_BODY.format(token=_xml_text(token))
        headers = {"Content-Type": "application/xml; charset=utf-8", "Depth": "0"}
        try:
            response = self._request(self.url, "REPORT", body, headers)
        except _Refused:
            if token:
                raise _TokenRefused from None
            raise
        if response.status in (403, 409, 412) and token:
            raise _TokenRefused
        self._check(response, "REPORT", self.url, expected=(207,))
        return _parse_sync(str(response.raw), self.url)

    def _changes(self, members: list[_Member]) -> list[SideChange]:
        changes: list[SideChange] = []
        for member in members:
            key = _path(member.href)
            if key == _path(self.url):
                continue  # the collection itself
            if not member.found:
                changes.append(SideChange(key, None))
                continue
            data = member.data
            etag = member.etag
            if data is None:  # a server that leaves calendar-data out of the REPORT
                got = self.get(key)
                if got is not None:
                    changes.append(got)
                continue
            record = self._record(key, data)
            if record is not None:
                changes.append(SideChange(key, record, etag))
        return changes

    def _record(self, key: str, data: str) -> PimRecord | None:
        """The item as a record of this side's kind; None (logged) for an item of the
        other kind or one that cannot be read."""
        try:
            calendar = parse_calendar(data)
            if not calendar.walk(self.component):
                return None
            return from_ical(data)
        except IcalError as exc:
            log.warning("skipping unreadable CalDAV item %s: %s", key, exc)
            return None

    # -- writing ---------------------------------------------------------------------------

    def put(self, key: str | None, record: PimRecord, version: str | None) -> tuple[str, str]:
        """Create (``If-None-Match: *``) or update (``If-Match`` with ``version`` when
        given). Returns ``(href, etag)``."""
        if record.kind is not self.kind:
            raise SideError(
                f"a {self.kind} collection cannot hold a {record.kind}", retryable=False
            )
        if key is None:
            uid = str(record.fields.get("uid") or uuid.uuid4())
            key = _path(urljoin(self.url, f"{uid}.ics"))
            headers = {"If-None-Match": "*"}
        else:
            record, version = self._merged(key, record, version)
            if not record.fields.get("uid"):
                raise SideError(f"{key} has no UID", retryable=False)
            uid = str(record.fields["uid"])
            headers = {"If-Match": version} if version else {}
        # RFC 4791 4.1: no METHOD in a calendar collection (an invitation is stored as
        # the plain event it stands for).
        stored = PimRecord(record.kind, {**record.fields, "method": None})
        body = to_ical(stored, uid=str(uid)).decode()
        headers["Content-Type"] = ICAL_TYPE
        response = self._request(key, "PUT", body, headers)
        if response.status == 412:
            raise VersionConflict(f"{key} changed on the CalDAV server since {version or 'read'}")
        self._check(response, "PUT", key, expected=(200, 201, 204))
        etag = _etag(response.headers)
        if not etag:  # the server did not say: ask (RFC 4791 5.3.4 allows leaving it out)
            current = self.get(key)
            etag = current.version if current else ""
        return key, etag

    def delete(self, key: str, version: str | None) -> None:
        headers = {"If-Match": version} if version else {}
        response = self._request(key, "DELETE", "", headers)
        if response.status == 412:
            raise VersionConflict(f"{key} changed on the CalDAV server since {version}")
        if response.status == 404:
            return  # already gone: what was asked for
        self._check(response, "DELETE", key, expected=(200, 204))

    def _merged(
        self, key: str, record: PimRecord, version: str | None
    ) -> tuple[PimRecord, str | None]:
        """An update is partial (``core.pim.sides``: the engine sends the fields that
        changed) but a PUT replaces the item: the stored item's fields under the new ones,
        its UID kept (RFC 4791 5.3.2), and its ETag when the caller gave none."""
        current = self.get(key)
        if current is None or current.record is None:
            if not record.fields.get("uid"):
                raise SideError(f"{key} is no longer on the CalDAV server", retryable=False)
            return record, version
        merged = PimRecord(record.kind, {**current.record.fields, **record.fields})
        return merged, version or current.version or None

    # -- wire ------------------------------------------------------------------------------

    def _request(self, key: str, method: str, body: str, headers: dict[str, str]) -> Any:
        url = urljoin(self.url, key)
        try:
            return self.client.request(url, method, body, headers)
        except dav_error.AuthorizationError as exc:
            raise _Refused(
                f"{method} {key}: the CalDAV server refused: {exc}", retryable=False
            ) from None
        except dav_error.DAVError as exc:
            raise SideError(f"{method} {key}: {exc}") from None
        except (OSError, ValueError) as exc:  # connection refused, TLS, timeouts (requests)
            raise SideError(f"{method} {key}: the CalDAV server cannot be reached: {exc}") from None

    @staticmethod
    def _check(response: Any, method: str, key: str, *, expected: tuple[int, ...] = (200,)) -> None:
        status = int(response.status)
        if status in expected:
            return
        retryable = status >= 500 or status in (408, 429)
        raise SideError(f"{method} {key}: the CalDAV server answered {status}", retryable=retryable)


class _Refused(SideError):
    """401/403 from the server (the ``caldav`` library raises them)."""


class _TokenRefused(Exception):
    """The server no longer knows the sync token (RFC 6578 3.2: 403/409 valid-sync-token)."""


def _parse_sync(text: str, base: str) -> tuple[list[_Member], str]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SideError(f"unreadable sync-collection answer from {base}: {exc}") from None
    members = list(_members(root))
    token = root.findtext("d:sync-token", default="", namespaces=NS) or ""
    if not token:
        raise SideError(
            f"{base} answered a sync-collection REPORT without a sync-token", retryable=False
        )
    return members, token


def _members(root: ET.Element) -> Iterator[_Member]:
    for response in root.findall("d:response", NS):
        href = response.findtext("d:href", default="", namespaces=NS).strip()
        status = response.findtext("d:status", default="", namespaces=NS)
        if " 404 " in f"{status} ":
            yield _Member(href, found=False)
            continue
        etag, data = "", None
        for propstat in response.findall("d:propstat", NS):
            if " 200 " not in f"{propstat.findtext('d:status', default='', namespaces=NS)} ":
                continue
            etag = propstat.findtext("d:prop/d:getetag", default=etag, namespaces=NS) or etag
            found = propstat.find("d:prop/c:calendar-data", NS)
            if found is not None and found.text:
                data = found.text
        yield _Member(href, found=True, etag=etag, data=data)


def _etag(headers: Any) -> str:
    return str(headers.get("ETag") or headers.get("etag") or "")


def _path(href: str) -> str:
    """An href as the path the side uses as its key (hosts differ between answers)."""
    return urlsplit(href).path or href


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["CalDavSide"]
