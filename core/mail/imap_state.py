"""IMAP sync state: UIDVALIDITY, last UID, HIGHESTMODSEQ and the known UIDs as a compact
IMAP sequence set (``1:4000,4002:9000``), zlib-compressed when long. Opaque to callers."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

_STATE_PREFIX = "imap1:"


def uids_to_seqset(uids: set[int]) -> str:
    out: list[str] = []
    start = prev = None
    for u in sorted(uids):
        if prev is not None and u == prev + 1:
            prev = u
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = u
    if start is not None:
        out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out)


def seqset_to_uids(text: str) -> set[int]:
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        a, _, b = part.partition(":")
        out.update(range(int(a), int(b or a) + 1))
    return out


def encode_state(validity: int, last: int, modseq: int, known: set[int]) -> str:
    body = json.dumps(
        {"v": validity, "l": last, "m": modseq, "u": uids_to_seqset(known)}, separators=(",", ":")
    ).encode()
    if len(body) > 512:
        return _STATE_PREFIX + "z" + base64.b64encode(zlib.compress(body)).decode("ascii")
    return _STATE_PREFIX + body.decode()


def decode_state(state: str | None) -> dict[str, Any] | None:
    if not state or not state.startswith(_STATE_PREFIX):
        return None
    body = state[len(_STATE_PREFIX) :]
    try:
        raw = zlib.decompress(base64.b64decode(body[1:])) if body.startswith("z") else body
        data = json.loads(raw)
        return {"v": int(data["v"]), "l": int(data["l"]), "m": int(data["m"]), "u": str(data["u"])}
    except (ValueError, KeyError, TypeError, zlib.error):
        return None  # unreadable state: full resync (the caller's store dedupes by ref)
