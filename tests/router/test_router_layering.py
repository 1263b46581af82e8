"""The router sits beside ``core`` and reuses it; it never reaches into the GUI, Qt, or the
emulator (the emulator is only the tests' CRM)."""

from __future__ import annotations

from tests.test_layering import QT_MODULES, _breaks


def test_router_never_imports_the_gui_qt_or_the_emulator() -> None:
    assert _breaks("router", forbidden=("desktop", "crmserver", *QT_MODULES)) == []
