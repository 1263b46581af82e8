"""Options in an Exchange mailbox URL, read the same way by the profile checks and by
:func:`core.mail.open_backend` (stdlib only: the profile code must not load the mail stack).

``ews://mail.example.com/EWS/Exchange.asmx?auth=basic&mailbox=alex@example.com``

- ``auth``: ``ntlm`` (the default, what on-premises Exchange offers), ``basic``, or ``oauth`` (a
  bearer token from the Microsoft sign-in, for hybrid tenants that still allow EWS).
- ``mailbox``: the mailbox's e-mail address, when the sign-in name is not one
  (``CORP\\alex``). With ``ews+autodiscover:alex@example.com`` the address is the URL itself.

And a Microsoft 365 mailbox through Microsoft Graph (:func:`graph_options`):
``graph:`` (the signed-in user's own), ``graph:?mailbox=sales@example.com`` (a shared or
delegated one), ``graph://host[:port]/v1.0[?mailbox=…]`` (another endpoint: national clouds,
tests). Graph signs in with the profile's Microsoft sign-in, never a password.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

EWS_SCHEMES = ("ews", "ews+http", "ews+autodiscover")
EWS_AUTH = ("ntlm", "basic", "oauth")
GRAPH_SCHEME = "graph"
GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
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
            f"cannot read the options {query!r}: expected ?auth=ntlm|basic|oauth&mailbox=address"
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


def is_ews_oauth(url: str) -> bool:
    """An Exchange (EWS) mailbox URL with ``?auth=oauth``: bearer tokens from the profile's
    Microsoft sign-in instead of a password. False for anything unreadable."""
    if url.split(":", 1)[0].strip().lower() not in EWS_SCHEMES:
        return False
    try:
        return ews_options(url).get("auth_type") == "oauth"
    except MailUrlError:
        return False


def is_graph(url: str) -> bool:
    """A Microsoft Graph mailbox URL (``graph:…``)."""
    return url.split(":", 1)[0].strip().lower() == GRAPH_SCHEME if ":" in url else False


def graph_options(url: str) -> dict[str, str]:
    """``{"base_url": …, "mailbox"?: …}`` of a ``graph:`` URL, as ``core.mail.open_backend``
    reads it; raises :class:`MailUrlError` for anything else."""
    where, _, query = url.split(":", 1)[1].partition("?")
    out = {"base_url": GRAPH_BASE_URL}
    if where.startswith("//"):
        parts = urlsplit("https:" + where)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if not parts.hostname or "@" in parts.netloc or not port_ok:
            raise MailUrlError(
                f"{url!r}: expected graph: or graph://host[:port]/v1.0 (another Graph endpoint)"
            )
        out["base_url"] = f"https://{parts.netloc}{parts.path.rstrip('/') or '/v1.0'}"
    elif where not in ("", "me"):
        raise MailUrlError(f"{url!r}: expected graph: or graph:?mailbox=shared@example.com")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise MailUrlError(
            f"cannot read the options {query!r}: expected ?mailbox=address"
        ) from None
    for key, value in pairs:
        if key != "mailbox":
            raise MailUrlError(f"unknown option {key!r}: expected mailbox=")
        if not is_address(value):
            raise MailUrlError(f"mailbox={value!r} is not an e-mail address")
        out["mailbox"] = value
    return out


def graph_url(base_url: str = "", shared_mailbox: str = "") -> str:
    """The ``graph:`` URL of a mailbox: ``base_url`` another endpoint
    (``https://host:port/v1.0``; empty: Microsoft's), ``shared_mailbox`` a shared or delegated
    one (empty: the signed-in user's own)."""
    url = "graph:"
    if base_url and base_url.rstrip("/") != GRAPH_BASE_URL:
        parts = urlsplit(base_url)
        url = f"graph://{parts.netloc}{parts.path.rstrip('/') or '/v1.0'}"
    return url + (f"?mailbox={shared_mailbox}" if shared_mailbox else "")
