"""Options in an Exchange mailbox URL, read the same way by the profile checks and by
:func:`core.mail.open_backend` (stdlib only: the profile code must not load the mail stack).

``ews://mail.example.com/EWS/Exchange.asmx?auth=basic&mailbox=alex@example.com``

- ``auth``: ``ntlm`` (the default, what on-premises Exchange offers) or ``basic``.
- ``mailbox``: the mailbox's e-mail address, when the sign-in name is not one
  (``CORP\\alex``). With ``ews+autodiscover:alex@example.com`` the address is the URL itself.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

EWS_SCHEMES = ("ews", "ews+http", "ews+autodiscover")
EWS_AUTH = ("ntlm", "basic")
_ADDRESS = re.compile(r"^[^@\s\\]+@[^@\s]+\.[^@\s]+$")


class MailUrlError(ValueError):
    """What is wrong with the URL, in words for the person who typed it."""


def split_autodiscover(url: str) -> tuple[str, str]:
    """``ews+autodiscover:alex@example.com?auth=basic`` → (address, query)."""
    address, _, query = url.split(":", 1)[1].partition("?")
    return address, query


def ews_options(url: str) -> dict[str, str]:
    """``{"auth_type": …, "email": …}`` from an EWS URL's query; raises
    :class:`MailUrlError` for an option or value it does not know."""
    scheme = url.split(":", 1)[0].lower()
    query = split_autodiscover(url)[1] if scheme == "ews+autodiscover" else urlsplit(url).query
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise MailUrlError(
            f"cannot read the options {query!r}: expected ?auth=ntlm|basic&mailbox=address"
        ) from None
    out: dict[str, str] = {}
    for key, value in pairs:
        if key == "auth":
            if value.lower() not in EWS_AUTH:
                raise MailUrlError(f"auth={value!r}: expected one of {', '.join(EWS_AUTH)}")
            out["auth_type"] = value.lower()
        elif key == "mailbox":
            if scheme == "ews+autodiscover":
                raise MailUrlError(
                    "mailbox= is for an explicit server; autodiscover uses the address in the URL"
                )
            if not _ADDRESS.match(value):
                raise MailUrlError(f"mailbox={value!r} is not an e-mail address")
            out["email"] = value
        else:
            raise MailUrlError(f"unknown option {key!r}: expected auth= or mailbox=")
    return out


def is_address(text: str) -> bool:
    return bool(_ADDRESS.match(text))
