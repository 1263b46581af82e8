"""A new CRM party from a mail (issue 17, "resolve…" never dead-ends), and why a record has no
usable e-mail address. Pure functions: no I/O.

- :func:`split_name` turns a display name ("Doe, Jane", "Jane Doe", ``"'Jane Doe'"``) into
  first and last name, ignoring an address used as a name.
- :func:`body_beginning` keeps what the sender wrote: the quoted part and the signature
  ("-- ", "Sent from my …", a sign-off such as "Best regards") are cut.
- :func:`new_party_columns` / :func:`link_column` are the columns a created or linked record
  gets.
- :func:`email_exclusion_reason` says why a record cannot be written to ("no e-mail address",
  "Do not allow e-mail", "disabled user", …); the address book and the regarding picker show
  the same words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: What a description prefilled from a mail body may hold (Dataverse ``description``: 2,000).
DESCRIPTION_LIMIT = 2000
#: The e-mail columns a contact, account or lead has, in the order a link fills them.
EMAIL_COLUMNS = ("emailaddress1", "emailaddress2", "emailaddress3")

_QUOTES = "\"'“”‘’«»`"
_COMMENT = re.compile(r"\s*[\(\[][^\)\]]*[\)\]]\s*")
_SPACES = re.compile(r"\s+")

# Where the quoted original starts in a reply or forward.
_QUOTE_START = re.compile(
    r"""^(?:
        >                                              # a quoted line
      | -{2,}\s*(?:original\s+message|forwarded\s+message|ursprüngliche\s+nachricht)\s*-{2,}
      | _{10,}                                         # Outlook's rule above the original
      | on\s.{1,200}\swrote:\s*$                       # On Mon, Jane <j@x> wrote:
      | am\s.{1,200}\sschrieb.{0,60}:\s*$              # Am … schrieb …:
      | le\s.{1,200}\sa\s+écrit\s*:\s*$                # Le … a écrit :
      | from:\s.+$                                     # an Outlook header block
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# Where the signature starts, wherever it is ("-- " is matched on the raw line).
_SIGNATURE_START = re.compile(
    r"^(?:sent\s+from\s+my\s.+|sent\s+from\s+(?:outlook|mail)\b.*|get\s+outlook\s+for\s.+)$",
    re.IGNORECASE,
)
# A sign-off line: the signature starts there once something was said.
_SIGN_OFF = re.compile(
    r"""^(?:
        (?:best|kind|warm|many|with\s+best|with\s+kind)?\s*(?:regards|wishes|thanks)[,.!]?$
      | (?:best|cheers|thanks|thank\s+you|sincerely|yours(?:\s+sincerely|\s+truly)?
          |all\s+the\s+best|br|mfg|cordialement|bien\s+à\s+vous
          |mit\s+freundlichen\s+grüßen|viele\s+grüße|beste\s+grüße|liebe\s+grüße|gruß
          |met\s+vriendelijke\s+groet(?:en)?|saludos|un\s+saluto|cordiali\s+saluti)[,.!]?$
    )""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class PersonName:
    first: str
    last: str


def split_name(display: str, email: str = "") -> PersonName:
    """First and last name from a display name, as Outlook fills a new contact: "Last,
    First" → (First, Last); "First Middle Last" → ("First Middle", "Last"); a single word is
    the last name (the CRM requires one). Quotes and "(comments)" are dropped; a name that
    is an e-mail address (or ``email`` itself) gives no name at all."""
    name = display.strip().strip(_QUOTES).strip()
    name = _COMMENT.sub(" ", name)
    name = _SPACES.sub(" ", name).strip().strip(_QUOTES).strip()
    if not name or "@" in name or (email and name.casefold() == email.strip().casefold()):
        return PersonName("", "")
    if "," in name:
        last, _, first = name.partition(",")
        last, first = last.strip(), first.strip().strip(",").strip()
        if last and first:
            return PersonName(first, last)
        name = last or first
    words = name.split(" ")
    if len(words) == 1:
        return PersonName("", words[0])
    return PersonName(" ".join(words[:-1]), words[-1])


def body_beginning(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """What the sender wrote in this mail: the body up to the quoted original and the
    signature, trimmed, at most ``limit`` characters (cut at a word when it can)."""
    kept: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if _QUOTE_START.match(line) or _SIGNATURE_START.match(line) or raw in ("-- ", "--"):
            break
        # A sign-off ends the mail only after something was said ("Thanks!" alone is a mail).
        if _SIGN_OFF.match(line) and any(k.strip() for k in kept):
            break
        kept.append(raw.rstrip())
    body = "\n".join(kept).strip()
    body = re.sub(r"\n{3,}", "\n\n", body)
    if len(body) <= limit:
        return body
    cut = body[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"


def new_party_columns(
    entity: str,
    name: PersonName,
    email: str,
    *,
    topic: str = "",
    company: str = "",
    description: str = "",
) -> dict[str, str]:
    """The columns of a new contact or lead (only those with a value)."""
    if entity not in ("contact", "lead"):
        raise ValueError(f"a new party is a contact or a lead, not {entity!r}")
    columns = {
        "firstname": name.first.strip(),
        "lastname": name.last.strip(),
        "emailaddress1": email.strip(),
        "description": description.strip()[:DESCRIPTION_LIMIT],
    }
    if entity == "lead":
        columns["subject"] = topic.strip()[:300]
        columns["companyname"] = company.strip()[:100]
    return {k: v for k, v in columns.items() if v}


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """Where a link writes the address: ``column``; ``replaces`` is the address it would
    overwrite (the user is asked first), ``already`` when the record has the address."""

    column: str
    replaces: str = ""
    already: bool = False


def link_column(current: Mapping[str, Any], email: str) -> LinkPlan:
    """The first free e-mail column of a record (``current`` holds its emailaddress1..3);
    with none free, the last one, to be overwritten only when the user agrees."""
    key = email.strip().casefold()
    for column in EMAIL_COLUMNS:
        if str(current.get(column) or "").strip().casefold() == key:
            return LinkPlan(column, already=True)
    for column in EMAIL_COLUMNS:
        if not str(current.get(column) or "").strip():
            return LinkPlan(column)
    last = EMAIL_COLUMNS[-1]
    return LinkPlan(last, replaces=str(current.get(last) or ""))


#: The reasons :func:`email_exclusion_reason` gives.
NO_ADDRESS = "no e-mail address"
DO_NOT_EMAIL = "Do not allow e-mail"
DISABLED_USER = "disabled user"
DISABLED = "disabled"
INACTIVE = "inactive"

#: The columns :func:`email_exclusion_reason` reads, per entity (with its primary e-mail).
REASON_COLUMNS: Mapping[str, Sequence[str]] = {
    "contact": ("emailaddress1", "donotemail", "statecode"),
    "account": ("emailaddress1", "donotemail", "statecode"),
    "lead": ("emailaddress1", "donotemail", "statecode"),
    "systemuser": ("internalemailaddress", "isdisabled"),
    "queue": ("emailaddress", "statecode"),
    "equipment": ("emailaddress", "isdisabled"),
}


def email_exclusion_reason(entity: str, row: Mapping[str, Any]) -> str | None:
    """Why a record is not an address to write to (None: it is one). Reads the columns of
    :data:`REASON_COLUMNS` from ``row`` as the Web API returns them; the first that applies
    wins: disabled, inactive, "Do not allow e-mail", no primary address."""
    columns = REASON_COLUMNS.get(entity, ("emailaddress1",))
    if row.get("isdisabled"):
        return DISABLED_USER if entity == "systemuser" else DISABLED
    if row.get("statecode") not in (None, 0):
        return INACTIVE
    if row.get("donotemail"):
        return DO_NOT_EMAIL
    email = str(row.get(columns[0]) or "").strip()
    if "@" not in email:
        return NO_ADDRESS
    return None


__all__ = [
    "DESCRIPTION_LIMIT",
    "DISABLED",
    "DISABLED_USER",
    "DO_NOT_EMAIL",
    "EMAIL_COLUMNS",
    "INACTIVE",
    "NO_ADDRESS",
    "REASON_COLUMNS",
    "LinkPlan",
    "PersonName",
    "body_beginning",
    "email_exclusion_reason",
    "link_column",
    "new_party_columns",
    "split_name",
]
