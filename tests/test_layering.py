"""Architecture rules: core/ never imports Qt; the headless CLI starts without Qt."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QT_MODULES = ("PySide6", "shiboken6", "PyQt5", "PyQt6")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_source_has_no_qt_import() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & set(QT_MODULES))
        for path in (ROOT / "core").rglob("*.py")
        if _imports(path) & set(QT_MODULES)
    }
    assert offenders == {}, f"core/ must not import Qt: {offenders}"


def test_core_source_does_not_import_desktop() -> None:
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*.py") if "desktop" in _imports(p)
    ]
    assert offenders == [], f"core/ must not depend on the GUI: {offenders}"


def test_importing_all_of_core_loads_no_qt() -> None:
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "core").rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"importing core pulled in Qt: {out.stdout}"


def test_trackbox_version_and_help_run_without_qt() -> None:
    code = (
        "import sys\nfrom desktop.launcher import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "print('QT' if 'PySide6' in sys.modules else 'NOQT')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("trackbox ")
    assert out.stdout.strip().endswith("NOQT")
