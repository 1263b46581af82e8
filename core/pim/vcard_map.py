"""vCard ↔ the PIM vocabulary for contacts (``core.pim.sides``): pure, no I/O, via
``vobject``. Reads vCard 3.0 and 4.0; writes 3.0 (what every CardDAV server and address book
accepts).

Mapping: ``N`` → ``lastname``/``firstname`` (``FN`` written from them); the first three
``EMAIL`` (a preferred one first) → ``emailaddress1..3``; ``TEL`` by type: work/voice →
``telephone1``, home → ``telephone2``, cell → ``mobilephone``, fax → ``fax``; ``TITLE`` →
``jobtitle``; ``ORG`` → ``parentcustomerid`` (the company name); the work ``ADR`` (else the
first) → ``address1_*``; ``BDAY`` → ``birthdate`` (``YYYY-MM-DD``); ``NOTE`` →
``description``. Engine fields: ``X-TRACKBOX-CRMID`` → ``contactid`` (the CRM id the item
carries) and ``X-TRACKBOX-TRACK:1`` → ``trackincrm`` (the user chose Track in CRM; the desktop
writes it, and a ``CATEGORIES`` value of ``Tracked in CRM`` counts too, for address books that
only edit categories).

Updating keeps what is not mapped: a photo, a fourth e-mail, a pager number, a home address,
any ``X-`` property of another program.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import vobject
from vobject.base import Component, ContentLine
from vobject.vcard import Address, Name

from core.pim.sides import TRACK_FIELD, PimKind, PimRecord

X_CRMID = "X-TRACKBOX-CRMID"
X_TRACK = "X-TRACKBOX-TRACK"
TRACK_CATEGORY = "Tracked in CRM"
CRM_ID = "contactid"
EMAILS = ("emailaddress1", "emailaddress2", "emailaddress3")
PHONES = {"telephone1": "WORK", "telephone2": "HOME", "mobilephone": "CELL", "fax": "FAX"}
ADDRESS = {
    "address1_line1": "street",
    "address1_city": "city",
    "address1_stateorprovince": "region",
    "address1_postalcode": "code",
    "address1_country": "country",
}
SIMPLE = {"jobtitle": "title", "description": "note"}
#: Every field a vCard maps (a field missing from a card is reported as ``None``: cleared).
MAPPED = (
    "firstname",
    "lastname",
    *EMAILS,
    *PHONES,
    *SIMPLE,
    "parentcustomerid",
    *ADDRESS,
    "birthdate",
)
_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})")


class VCardError(ValueError):
    """Text that is not a vCard."""


def parse(text: str) -> Component:
    try:
        card = vobject.readOne(text)
    except Exception as exc:  # vobject raises several unrelated types for bad input
        raise VCardError(f"not a vCard: {exc}") from None
    if card.name != "VCARD":
        raise VCardError(f"not a vCard but a {card.name}")
    return card


def _lines(card: Component, name: str) -> list[ContentLine]:
    return list(card.contents.get(name.lower(), []))


def _types(line: ContentLine) -> set[str]:
    out: set[str] = set()
    for value in line.params.get("TYPE", []):
        out |= {t.strip().upper() for t in str(value).split(",")}
    return out


def _phone_field(line: ContentLine) -> str | None:
    types = _types(line)
    if "FAX" in types:
        return "fax"
    if "CELL" in types:
        return "mobilephone"
    if "HOME" in types:
        return "telephone2"
    if not types - {"WORK", "VOICE", "PREF"}:
        return "telephone1"
    return None  # pager, text…: kept as it is


def _preferred(line: ContentLine) -> bool:
    return "PREF" in _types(line) or bool(line.params.get("PREF"))


def _work_address(card: Component) -> ContentLine | None:
    lines = _lines(card, "adr")
    work = [a for a in lines if "WORK" in _types(a)]
    return (work or lines or [None])[0]


def to_fields(card: Component) -> dict[str, Any]:
    """The mapped values of a vCard (module docstring)."""
    fields: dict[str, Any] = {}
    names = _lines(card, "n")
    if names and isinstance(names[0].value, Name):
        fields["firstname"] = _s(names[0].value.given)
        fields["lastname"] = _s(names[0].value.family)
    emails = sorted(_lines(card, "email"), key=lambda e: not _preferred(e))
    for name, line in zip(EMAILS, emails, strict=False):
        fields[name] = _s(line.value)
    for line in _lines(card, "tel"):
        phone = _phone_field(line)
        if phone and phone not in fields:
            fields[phone] = _s(line.value)
    for name, prop in SIMPLE.items():
        found = _lines(card, prop)
        fields[name] = _s(found[0].value) if found else None
    orgs = _lines(card, "org")
    if orgs:
        value = orgs[0].value
        fields["parentcustomerid"] = _s(value[0] if isinstance(value, list) and value else value)
    adr = _work_address(card)
    if adr is not None and isinstance(adr.value, Address):
        for name, part in ADDRESS.items():
            fields[name] = _s(getattr(adr.value, part))
    bday = _lines(card, "bday")
    if bday and (m := _DATE.match(str(bday[0].value).strip())):
        fields["birthdate"] = f"{m[1]}-{m[2]}-{m[3]}"
    crm = _lines(card, X_CRMID)
    crm_id = _s(crm[0].value) if crm else None
    fields[CRM_ID] = crm_id.lower() if crm_id else None
    fields[TRACK_FIELD] = _tracked(card)
    return {name: fields.get(name) for name in MAPPED} | {
        CRM_ID: fields[CRM_ID],
        TRACK_FIELD: fields[TRACK_FIELD],
    }


def _tracked(card: Component) -> bool:
    track = _lines(card, X_TRACK)
    if track:
        return str(track[0].value).strip() in ("1", "TRUE", "true")
    for line in _lines(card, "categories"):
        values = line.value if isinstance(line.value, list) else [line.value]
        if any(str(v).strip().lower() == TRACK_CATEGORY.lower() for v in values):
            return True
    return False


def to_record(text: str) -> PimRecord:
    return PimRecord(PimKind.CONTACT, to_fields(parse(text)))


def _s(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = " ".join(str(v) for v in value if v)
    text = str(value).strip()
    return text or None


def render(fields: Mapping[str, Any], *, uid: str, base: str | None = None) -> str:
    """A vCard 3.0 with ``fields`` set over ``base`` (an existing vCard whose unmapped
    properties are kept, and whose mapped values stand for fields not given)."""
    card = parse(base) if base else vobject.vCard()
    merged = {**(to_fields(card) if base else {}), **fields}
    _drop_mapped(card)
    if "version" not in card.contents:
        card.add("version").value = "3.0"
    else:
        card.version.value = "3.0"
    if "uid" not in card.contents:
        card.add("uid").value = uid
    first, last = _s(merged.get("firstname")), _s(merged.get("lastname"))
    card.add("n").value = Name(family=last or "", given=first or "")
    display = " ".join(p for p in (first, last) if p) or _s(merged.get("emailaddress1")) or uid
    card.add("fn").value = display
    _add_emails(card, merged)
    _add_phones(card, merged)
    _add_rest(card, merged)
    return str(card.serialize())


def _drop_mapped(card: Component) -> None:
    """Remove the properties ``render`` writes, keeping unmapped EMAIL/TEL/ADR lines."""
    for prop in ("n", "fn", "title", "note", "org", "bday", X_CRMID.lower(), X_TRACK.lower()):
        card.contents.pop(prop, None)
    emails = sorted(_lines(card, "email"), key=lambda e: not _preferred(e))
    _keep(card, "email", emails[len(EMAILS) :])
    taken: set[str] = set()
    tels = []
    for line in _lines(card, "tel"):
        name = _phone_field(line)
        if name is None or name in taken:
            tels.append(line)
        else:
            taken.add(name)
    _keep(card, "tel", tels)
    work = _work_address(card)
    _keep(card, "adr", [a for a in _lines(card, "adr") if a is not work])


def _keep(card: Component, name: str, lines: list[ContentLine]) -> None:
    if lines:
        card.contents[name] = lines
    else:
        card.contents.pop(name, None)


def _add_emails(card: Component, fields: Mapping[str, Any]) -> None:
    kept = _lines(card, "email")
    card.contents.pop("email", None)
    for i, name in enumerate(EMAILS):
        if value := _s(fields.get(name)):
            line = card.add("email")
            line.value = value
            line.type_paramlist = ["INTERNET", "PREF"] if i == 0 else ["INTERNET"]
    for line in kept:
        card.add(line)


def _add_phones(card: Component, fields: Mapping[str, Any]) -> None:
    for name, kind in PHONES.items():
        if value := _s(fields.get(name)):
            line = card.add("tel")
            line.value = value
            line.type_paramlist = ["WORK", "FAX"] if kind == "FAX" else [kind, "VOICE"]
            if kind == "CELL":
                line.type_paramlist = ["CELL"]


def _add_rest(card: Component, fields: Mapping[str, Any]) -> None:
    for name, prop in SIMPLE.items():
        if value := _s(fields.get(name)):
            card.add(prop).value = value
    if company := _s(fields.get("parentcustomerid")):
        card.add("org").value = [company]
    parts = {part: _s(fields.get(name)) or "" for name, part in ADDRESS.items()}
    if any(parts.values()):
        adr = card.add("adr")
        adr.value = Address(**parts)
        adr.type_paramlist = ["WORK"]
    if (bday := _s(fields.get("birthdate"))) and (m := _DATE.match(bday)):
        card.add("bday").value = f"{m[1]}-{m[2]}-{m[3]}"
    if crm := _s(fields.get(CRM_ID)):
        card.add(X_CRMID.lower()).value = crm
    if fields.get(TRACK_FIELD):
        card.add(X_TRACK.lower()).value = "1"


__all__ = ["VCardError", "X_CRMID", "X_TRACK", "parse", "render", "to_fields", "to_record"]
