"""Safe file names for attachments: the sender chooses the name, we choose where it lands.

A sender's name could climb out of the folder (``../../etc/passwd``, ``C:\\x``,
``\\\\server\\share``), hide its real extension (a right-to-left override, ``invoice.pdf
.exe`` padded with spaces), or name a Windows device (``CON``, ``LPT1.txt``). What
:func:`safe_filename` returns is one plain name, never empty, never reserved, at most 255
bytes of UTF-8, whose last extension is the one the system will act on. Pure: no I/O.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import Callable, Iterable

__all__ = [
    "MAX_NAME_BYTES",
    "is_dangerous",
    "non_colliding",
    "safe_filename",
    "unique_names",
]

MAX_NAME_BYTES = 255  # what ext4, NTFS (in UTF-16 units, fewer) and APFS all take
_MAX_EXT = 16  # a longer "extension" is part of the name

_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"}
    | {f"{p}{n}" for p in ("COM", "LPT") for n in (*"0123456789", "¹", "²", "³")}
)
_WINDOWS_INVALID = re.compile(r'[<>:"|?*]')
_SPACES = re.compile(r"\s+")
_EXTENSIONS = {
    "message/rfc822": ".eml",
    "text/calendar": ".ics",
    "text/plain": ".txt",
    "text/html": ".html",
    "application/pdf": ".pdf",
    "application/octet-stream": "",
}

#: Types Windows, macOS or a Linux desktop may run rather than show (after Outlook's list of
#: blocked attachments): opening one asks first.
_DANGEROUS = (
    "ade adp app appimage application appref-ms apk asp aspx bas bat bin cer chm cmd cnt com"
    " command cpl crt csh der desktop diagcab dll exe fxp gadget grp hlp hpj hta htc inf ins"
    " isp its jar jnlp js jse ksh lnk mad maf mag mam maq mar mas mat mau mav maw mcf mda mdb"
    " mde mdt mdw mdz msc msh msh1 msh2 mshxml msh1xml msh2xml msi msp mst msu ops osd pcd pif"
    " pl plg prf prg printerexport ps1 ps1xml ps2 ps2xml psc1 psc2 psd1 psdm1 pst py pyc pyo"
    " pyw pyz pyzw reg run scf scr sct settingcontent-ms sh shb shs svg theme tmp url vb vbe"
    " vbp vbs vhd vhdx vsmacros vsw webpnp website ws wsc wsf wsh xbap xll xnk"
    " docm xlsm pptm dotm xltm potm ppsm sldm xlam ppam iso img"
)
DANGEROUS_EXTENSIONS = frozenset(_DANGEROUS.split())
_DANGEROUS_TYPES = (
    "application/x-msdownload",
    "application/x-msdos-program",
    "application/x-executable",
    "application/x-sh",
    "application/x-shellscript",
    "application/x-bat",
    "application/x-msi",
    "application/java-archive",
    "application/javascript",
    "text/javascript",
    "application/hta",
    "application/x-ms-shortcut",
)


def _dropped(ch: str) -> bool:
    """Control, format (bidi overrides, zero-width), separator, surrogate and unassigned
    characters: none belongs in a file name, several disguise one."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def _split_ext(name: str) -> tuple[str, str]:
    """``("report", ".pdf")``; a name without a short extension is all stem."""
    dot = name.rfind(".")
    if dot <= 0 or len(name) - dot > _MAX_EXT + 1 or " " in name[dot:]:
        return name, ""
    return name[:dot], name[dot:]


def _cut(text: str, limit: int) -> str:
    """The longest prefix of ``text`` of at most ``limit`` bytes of UTF-8."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def _extension_for(content_type: str) -> str:
    ctype = content_type.strip().lower()
    if ctype in _EXTENSIONS:
        return _EXTENSIONS[ctype]
    ext = mimetypes.guess_extension(ctype, strict=False) or ""
    return ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else ""


def _tidy(name: str) -> str:
    """One pass of every rule but the default name."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # directories, UNC shares
    name = _SPACES.sub(" ", name)  # tabs and line breaks too
    name = "".join(ch for ch in name if not _dropped(ch))
    name = _WINDOWS_INVALID.sub("_", name)  # also drive letters ("C:x") and NTFS streams
    name = _SPACES.sub(" ", name).strip(" .")
    stem, ext = _split_ext(name)
    stem = stem.rstrip(" .")  # "invoice.pdf      .exe": the real extension next to the name
    if stem.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        stem = "_" + stem
    room = MAX_NAME_BYTES - len(ext.encode("utf-8"))
    stem = _cut(stem, room).rstrip(" .")
    return stem + ext if stem else ""


def safe_filename(name: str | None, content_type: str = "application/octet-stream") -> str:
    """A name that is safe to create in any folder on Windows, macOS and Linux, as close to
    the sender's ``name`` as that allows; ``attachment`` plus an extension for the content
    type when nothing of it is left. Idempotent."""
    raw = (name or "").strip()
    if raw.startswith(".") and "." not in raw[1:] and _tidy(raw):  # ".ics": only a type
        raw = "attachment" + raw
    tidy = _tidy(raw)
    if not tidy:
        tidy = _tidy("attachment" + _extension_for(content_type)) or "attachment"
    again = _tidy(tidy)  # cutting may expose what an earlier rule removes
    return again if again else "attachment"


def is_dangerous(name: str, content_type: str = "") -> bool:
    """Whether opening the file could run code (an executable, a script, a macro document,
    a shortcut, a disk image): the user is asked first, as Outlook and Thunderbird do."""
    _, ext = _split_ext(safe_filename(name, content_type))
    if ext[1:].lower() in DANGEROUS_EXTENSIONS:
        return True
    return content_type.strip().lower().startswith(_DANGEROUS_TYPES)


def non_colliding(name: str, taken: Callable[[str], bool]) -> str:
    """``name``, or ``name (2).ext``, ``name (3).ext``… the first that ``taken`` refuses
    (``taken`` compares as the file system does; case-insensitive for Windows and macOS)."""
    if not taken(name):
        return name
    stem, ext = _split_ext(name)
    n = 2
    while True:
        suffix = f" ({n}){ext}"
        candidate = _cut(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8"))) + suffix
        if not taken(candidate):
            return candidate
        n += 1


def unique_names(names: Iterable[str]) -> list[str]:
    """Safe names for a set of attachments saved together: duplicates (compared without
    case) become ``name (2).ext`` and so on, in order."""
    used: set[str] = set()
    out: list[str] = []
    for name in names:
        chosen = non_colliding(name, lambda n: n.casefold() in used)
        used.add(chosen.casefold())
        out.append(chosen)
    return out
