"""The mailbox side of contacts on a CardDAV server (RFC 6352), for IMAP profiles (issue 20).

Plain WebDAV over ``httpx`` rather than the ``caldav`` library: that library is built around
calendars (no address-book objects or ``addressbook-multiget``), and a few requests are all a
side needs. vCards are read and written through ``core.pim.vcard_map`` (``vobject``).

Incremental by the ``sync-collection`` REPORT (RFC 6578): the side's token is the server's
sync-token; the answer lists changed members with their ETag and vCard (``address-data``; a
server that leaves it out is asked with ``addressbook-multiget``) and removed members as 404.
An invalid or expired token (403/409 ``valid-sync-token``) restarts from an empty token: a full
listing. A server without sync-collection falls back to the ``getctag``/ETag listing: the
token then holds the collection's ctag and every member's ETag (compressed), and only members
whose ETag changed are fetched.

Writes carry ``If-Match`` with the ETag read (412 → :class:`VersionConflict`); a new item is
``PUT`` at an href the engine chose (:class:`~core.pim.sides.KeyedCreate`). Keys are hrefs
(absolute paths), versions ETags.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit
from xml.etree import ElementTree as ET

import httpx

from core.pim import vcard_map
from core.pim.sides import ChangePage, PimKind, PimRecord, SideChange, SideError, VersionConflict

DAV = "DAV:"
CARD = "urn:ietf:params:xml:ns:carddav"
CS = "http://calendarserver.org/ns/"
MULTIGET_CHUNK = 200
_SYNC = (
    '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:" xmlns:C="{card}">'
    "<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
    "<D:prop><D:getetag/><C:address-data/></D:prop></D:sync-collection>"
)
_MULTIGET = (
    '<?xml version="1.0" encoding="utf-8"?><C:addressbook-multiget xmlns:D="DAV:" xmlns:C="{card}">'
    "<D:prop><D:getetag/><C:address-data/></D:prop>{hrefs}</C:addressbook-multiget>"
)
_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:CS="{cs}">'
    "<D:prop><D:getetag/><CS:getctag/><D:resourcetype/></D:prop></D:propfind>"
)
_XML = {"Content-Type": "application/xml; charset=utf-8"}
VCARD_TYPE = {"Content-Type": "text/vcard; charset=utf-8"}


class CardDavSide:
    """One address book. ``url``: the collection; ``auth``: (user, password) or an httpx auth.
    ``use_sync=False`` forces the ctag/ETag fallback (servers without RFC 6578)."""

    kind = PimKind.CONTACT

    def __init__(
        self,
        url: str,
        auth: httpx.Auth | tuple[str, str] | None = None,
        *,
        verify: bool | str = True,
        timeout: float = 30.0,
        use_sync: bool = True,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.path = urlsplit(self.url).path
        self.use_sync = use_sync
        self._http = client or httpx.Client(auth=auth, verify=verify, timeout=timeout)
        self._raw: dict[str, str] = {}  # href → vCard last read (to merge an update into)
        self.requests = 0  # counted for tests and the benchmark

    def close(self) -> None:
        self._http.close()

    # -- wire --------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        content: str | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        self.requests += 1
        try:
            return self._http.request(method, url, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise SideError(f"{method} {url}: {exc}", retryable=True) from exc

    def _check(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 300:
            return
        if status == 412:
            raise VersionConflict(f"{what}: changed on the server")
        retryable = status >= 500 or status == 429
        raise SideError(f"{what}: HTTP {status}", retryable=retryable)

    def _href(self, href: str) -> str:
        return unquote(urlsplit(href).path)

    # -- reading -----------------------------------------------------------------------------

    def changes(self, token: str | None) -> ChangePage:
        if not self.use_sync or (token or "").startswith("ctag:"):
            return self._etag_listing(token)
        response = self._report_sync(token or "")
        if response.status_code in (403, 409, 412) and token:
            response = self._report_sync("")  # invalid or expired token: list everything
            token = None
        if response.status_code in (400, 403, 405, 501) and not token:
            return self._etag_listing(None)  # no sync-collection here
        self._check(response, "sync-collection")
        root = ET.fromstring(response.content)
        new_token = root.findtext(f"{{{DAV}}}sync-token") or ""
        changes, missing = [], []
        for m in _responses(root):
            key = self._href(m.href)
            if key == self.path:
                continue
            if m.status == 404:
                self._raw.pop(key, None)
                changes.append(SideChange(key, None))
            elif m.data is None:
                missing.append(key)
            elif (change := self._parsed(key, m.data, m.etag)) is not None:
                changes.append(change)
        changes.extend(self._multiget(missing))
        return ChangePage(changes, new_token, full=not token)

    def _report_sync(self, token: str) -> httpx.Response:
        body = _SYNC.format(card=CARD, token=_escape(token))
        return self._send("REPORT", self.url, content=body, headers={**_XML, "Depth": "0"})

    def _parsed(self, key: str, data: str, etag: str) -> SideChange | None:
        try:
            record = vcard_map.to_record(data)
        except vcard_map.VCardError:
            return None  # not a vCard (another program's file): not ours to sync
        self._raw[key] = data
        return SideChange(key, record, etag)

    def _multiget(self, keys: Sequence[str]) -> Iterator[SideChange]:
        for start in range(0, len(keys), MULTIGET_CHUNK):
            hrefs = "".join(f"<D:href>{_escape(k)}</D:href>" for k in keys[start : start + 200])
            body = _MULTIGET.format(card=CARD, hrefs=hrefs)
            response = self._send("REPORT", self.url, content=body, headers={**_XML, "Depth": "1"})
            self._check(response, "addressbook-multiget")
            for m in _responses(ET.fromstring(response.content)):
                key = self._href(m.href)
                if m.status == 404 or m.data is None:
                    yield SideChange(key, None)
                elif (change := self._parsed(key, m.data, m.etag)) is not None:
                    yield change

    def _etag_listing(self, token: str | None) -> ChangePage:
        """The fallback: the ctag says whether anything changed; ETags say what."""
        body = _PROPFIND.format(cs=CS)
        response = self._send("PROPFIND", self.url, content=body, headers={**_XML, "Depth": "1"})
        self._check(response, "PROPFIND")
        ctag, etags = "", {}
        for m in _responses(ET.fromstring(response.content)):
            key = self._href(m.href)
            if key == self.path:
                ctag = m.element.findtext(f".//{{{CS}}}getctag") or ""
            elif m.element.find(f".//{{{DAV}}}resourcetype/{{{DAV}}}collection") is None:
                etags[key] = m.etag
        old_ctag, old = _unpack(token)
        if token and ctag and ctag == old_ctag:
            return ChangePage([], token)
        changed = [k for k, e in etags.items() if old.get(k) != e]
        changes = list(self._multiget(changed))
        changes.extend(SideChange(k, None) for k in old if k not in etags)
        return ChangePage(changes, _pack(ctag, etags), full=token is None)

    def get(self, key: str) -> SideChange | None:
        response = self._send("GET", urljoin(self.url, key))
        if response.status_code in (404, 410):
            return None
        self._check(response, f"GET {key}")
        return self._parsed(key, response.text, response.headers.get("ETag", ""))

    # -- writing -----------------------------------------------------------------------------

    def new_key(self) -> str:
        return f"{self.path}{uuid.uuid4()}.vcf"

    def put(self, key: str | None, record: PimRecord, version: str | None) -> tuple[str, str]:
        if key is None:
            key = self.new_key()
            return key, self._put(key, vcard_map.render(record.fields, uid=_uid(key)), "*", None)
        base = self._raw.get(key)
        if base is None:
            current = self.get(key)
            if current is None:
                raise SideError(f"{key} is gone", retryable=False)
            base, version = self._raw[key], version or current.version
        text = vcard_map.render(record.fields, uid=_uid(key), base=base)
        return key, self._put(key, text, None, version)

    def create_at(self, key: str, record: PimRecord) -> str:
        return self._put(key, vcard_map.render(record.fields, uid=_uid(key)), None, None)

    def _put(self, key: str, text: str, if_none: str | None, if_match: str | None) -> str:
        headers = dict(VCARD_TYPE)
        if if_none:
            headers["If-None-Match"] = if_none
        if if_match:
            headers["If-Match"] = if_match
        response = self._send("PUT", urljoin(self.url, key), content=text.encode(), headers=headers)
        self._check(response, f"PUT {key}")
        self._raw[key] = text
        etag: str | None = response.headers.get("ETag")
        if etag is None:  # some servers change the vCard on PUT and send no ETag
            self._raw.pop(key, None)
            current = self.get(key)
            etag = current.version if current else ""
        return etag

    def delete(self, key: str, version: str | None) -> None:
        headers = {"If-Match": version} if version else None
        response = self._send("DELETE", urljoin(self.url, key), headers=headers)
        if response.status_code in (404, 410):
            return
        self._check(response, f"DELETE {key}")
        self._raw.pop(key, None)

    def put_many(self, items: Iterable[tuple[str, str]]) -> int:
        """Write raw vCards at hrefs (the benchmark's bare client and test set-up)."""
        count = 0
        for key, text in items:
            self._put(key, text, None, None)
            count += 1
        return count


@dataclass(frozen=True, slots=True)
class _Member:
    """One ``DAV:response`` of a multistatus."""

    href: str
    status: int
    etag: str
    data: str | None
    element: ET.Element


def _responses(root: ET.Element) -> Iterator[_Member]:
    for resp in root.iter(f"{{{DAV}}}response"):
        href = resp.findtext(f"{{{DAV}}}href") or ""
        status = _status(resp.findtext(f"{{{DAV}}}status"))
        etag, data = "", None
        for propstat in resp.iter(f"{{{DAV}}}propstat"):
            if _status(propstat.findtext(f"{{{DAV}}}status")) != 200:
                continue
            etag = propstat.findtext(f".//{{{DAV}}}getetag") or etag
            found = propstat.find(f".//{{{CARD}}}address-data")
            if found is not None and found.text:
                data = found.text
        yield _Member(href, status, etag, data, resp)


def _status(line: str | None) -> int:
    parts = (line or "").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 200


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _uid(key: str) -> str:
    return key.rstrip("/").rsplit("/", 1)[-1].removesuffix(".vcf")


def _pack(ctag: str, etags: dict[str, str]) -> str:
    blob = zlib.compress(json.dumps(etags, separators=(",", ":")).encode())
    return f"ctag:{ctag}:" + base64.urlsafe_b64encode(blob).decode()


def _unpack(token: str | None) -> tuple[str, dict[str, str]]:
    if not token or not token.startswith("ctag:"):
        return "", {}
    ctag, _, blob = token[5:].rpartition(":")
    try:
        etags = json.loads(zlib.decompress(base64.urlsafe_b64decode(blob)))
    except (ValueError, zlib.error):
        return "", {}
    return ctag, etags if isinstance(etags, dict) else {}


__all__ = ["CardDavSide"]
