"""Safe attachment names (core.mail.attachment_names): the sender's name never chooses where a
file lands, what device it names or which extension the system acts on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.mail.attachment_names import (
    MAX_NAME_BYTES,
    is_dangerous,
    non_colliding,
    safe_filename,
    unique_names,
)

RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT") for n in range(10)}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\system.ini", "system.ini"),
        ("C:\\x", "x"),
        ("C:x.txt", "C_x.txt"),
        ("\\\\server\\share", "share"),
        ("/absolute/report.pdf", "report.pdf"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("LPT1.tar.gz", "_LPT1.tar.gz"),
        ("COM9 .log", "_COM9.log"),
        ("Console.txt", "Console.txt"),
        ("report. . .", "report"),
        ("...", "attachment"),
        ("", "attachment"),
        ("  ", "attachment"),
        ("invoice.pdf      .exe", "invoice.pdf.exe"),
        ("photo\u202egpj.exe", "photogpj.exe"),
        ("a\u200bb\u2066c\u2069.txt", "abc.txt"),
        ("tab\there\r\nnew.txt", "tab here new.txt"),
        ("file.txt:hidden", "file.txt_hidden"),
        ('what?<>|*".doc', "what______.doc"),
        ("Angebot für Lizenzen – 2027.pdf", "Angebot für Lizenzen – 2027.pdf"),
        (".ics", "attachment.ics"),
    ],
)
def test_hostile_names_become_safe(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_an_empty_name_takes_the_content_type_s_extension() -> None:
    assert safe_filename("", "text/calendar") == "attachment.ics"
    assert safe_filename(None, "message/rfc822") == "attachment.eml"
    assert safe_filename("..", "application/pdf") == "attachment.pdf"
    assert safe_filename("/", "application/x-unknown-thing") == "attachment"


def test_an_over_long_name_keeps_its_extension() -> None:
    name = safe_filename("é" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert name == "é" * 125 + ".pdf"


def test_colliding_names_get_a_number() -> None:
    taken = {"report.pdf", "report (2).pdf"}
    assert non_colliding("report.pdf", taken.__contains__) == "report (3).pdf"
    assert non_colliding("new.pdf", taken.__contains__) == "new.pdf"
    assert unique_names(["a.txt", "A.TXT", "a.txt", "b"]) == [
        "a.txt",
        "A (2).TXT",
        "a (3).txt",
        "b",
    ]
    long = "x" * 251 + ".txt"
    assert len(non_colliding(long, lambda n: n == long).encode()) <= MAX_NAME_BYTES


@pytest.mark.parametrize(
    ("name", "ctype", "dangerous"),
    [
        ("setup.exe", "application/octet-stream", True),
        ("invoice.pdf      .exe", "application/pdf", True),
        ("run.SH", "", True),
        ("macro.docm", "", True),
        ("tool", "application/x-msdownload", True),
        ("report.pdf", "application/pdf", False),
        ("photo.jpg", "image/jpeg", False),
        ("invite.ics", "text/calendar", False),
    ],
)
def test_executables_and_scripts_are_dangerous(name: str, ctype: str, dangerous: bool) -> None:
    assert is_dangerous(name, ctype) is dangerous


names = st.lists(
    st.one_of(
        st.characters(),
        st.sampled_from(["/", "\\", ".", " ", ":", "\u202e", "\u200b", "CON", "lpt1", ".exe"]),
    ),
    max_size=300,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(name=names, ctype=st.sampled_from(["", "text/calendar", "application/pdf", "x/y"]))
def test_safe_names_are_plain_bounded_and_stable(name: str, ctype: str) -> None:
    safe = safe_filename(name, ctype)
    assert safe and safe not in (".", "..")
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe and ":" not in safe
    assert safe.split(".", 1)[0].rstrip(" ").upper() not in RESERVED
    assert safe == safe.strip(" .") and not safe.startswith(".")
    assert len(safe.encode("utf-8")) <= MAX_NAME_BYTES
    assert all(ord(ch) >= 32 and ch not in "\u202e\u200b\u2066" for ch in safe)
    assert safe_filename(safe, ctype) == safe


@settings(max_examples=200, deadline=None)
@given(st.lists(names, max_size=8))
def test_names_saved_together_never_collide(raw: list[str]) -> None:
    chosen = unique_names(safe_filename(n) for n in raw)
    assert len({n.casefold() for n in chosen}) == len(chosen)
    assert all(len(n.encode("utf-8")) <= MAX_NAME_BYTES for n in chosen)
