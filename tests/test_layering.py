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


# -- the dependency rule (docs/architecture.md), checked on every import statement -------------
#
# Every import counts, also those inside functions and under ``TYPE_CHECKING``: a lazy import is
# still a dependency. A rule is a package, the prefixes of ``core`` it may import, and the
# modules it must not import at all.

IO_LIBRARIES = (
    "httpx",
    "sqlite3",
    "sqlite_utils",
    "keyring",
    "imapclient",
    "exchangelib",
    "platformdirs",
    "subprocess",
    "socket",
)

#: Known breaks of a rule, each with the reason it is tolerated, as (file, imported module).
#: Empty: keep it so; an entry here is a debt to pay, not a permission.
ALLOWED: frozenset[tuple[str, str]] = frozenset()


def _module_of(path: Path, root: Path = ROOT) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def _imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Dotted names of everything ``path`` imports, relative imports resolved. ``from a.b
    import c`` gives ``a.b.c`` (``c`` may be a module: ``from core import store``), which a
    rule on ``a.b`` covers."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_of(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _breaks(
    package: str, *, core_allowed: tuple[str, ...] | None = None, forbidden: tuple[str, ...] = ()
) -> list[str]:
    """Imports under ``package`` that go outside ``core_allowed`` (when given) or into
    ``forbidden``, minus :data:`ALLOWED`."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        where = str(path.relative_to(ROOT).as_posix())
        for module in sorted(_imported_modules(path)):
            bad = _within(module, forbidden) or (
                core_allowed is not None
                and _within(module, ("core",))
                and not _within(module, core_allowed)
            )
            if bad and (where, module) not in ALLOWED:
                found.append(f"{where} imports {module}")
    return found


def test_the_import_resolver_sees_relative_lazy_and_package_imports(tmp_path: Path) -> None:
    sample = tmp_path / "pkg" / "sub" / "mod.py"
    sample.parent.mkdir(parents=True)
    sample.write_text(
        "from __future__ import annotations\n"
        "import socket\n"
        "from core import store\n"
        "from . import sibling\n"
        "from ..other import thing\n"
        "def later() -> None:\n"
        "    from core.crm.client import CrmClient\n",
        encoding="utf-8",
    )
    found = _imported_modules(sample, root=tmp_path)
    assert {"socket", "core.store", "pkg.sub.sibling", "pkg.other.thing"} <= found
    assert "core.crm.client.CrmClient" in found


def test_crmserver_imports_only_the_domain_of_core() -> None:
    assert _breaks("crmserver", core_allowed=("core.domain",)) == []


def test_core_never_imports_the_emulator_or_the_gui() -> None:
    assert _breaks("core", forbidden=("crmserver", "desktop")) == []


def test_domain_is_pure() -> None:
    assert _breaks("core/domain", core_allowed=("core.domain",), forbidden=IO_LIBRARIES) == []


def test_store_depends_only_on_the_domain() -> None:
    allowed = ("core.domain", "core.store", "core.prefetch", "core.private_files")
    assert _breaks("core/store", core_allowed=allowed) == []


def test_crm_client_depends_only_on_the_domain() -> None:
    allowed = ("core.domain", "core.crm", "core.prefetch")
    assert _breaks("core/crm", core_allowed=allowed) == []


def test_allowed_breaks_are_still_needed() -> None:
    """An allow-list entry whose import is gone must go too."""
    stale = [
        (where, module)
        for where, module in ALLOWED
        if not any(_within(m, (module,)) for m in _imported_modules(ROOT / where))
    ]
    assert stale == []


def test_mail_backends_depend_only_on_the_domain_and_configuration() -> None:
    allowed = ("core.domain", "core.mail", "core.config", "core.prefetch")
    assert _breaks("core/mail", core_allowed=allowed) == []


def test_configuration_depends_only_on_the_domain() -> None:
    allowed = ("core.domain", "core.config", "core.private_files")
    assert _breaks("core/config", core_allowed=allowed) == []


def test_outbox_and_sync_stay_below_the_workspace() -> None:
    """The queue and the cycle take their collaborators explicitly: neither reaches up into
    the façade (``core.workspace``) or the command line (``core.cli``)."""
    below = (
        "core.domain",
        "core.store",
        "core.crm",
        "core.mail",
        "core.config",
        "core.prefetch",
        "core.private_files",
    )
    assert _breaks("core/outbox", core_allowed=(*below, "core.outbox")) == []
    assert _breaks("core/sync", core_allowed=(*below, "core.outbox", "core.sync")) == []


def test_all_sql_is_in_the_store() -> None:
    """Raw SQL outside ``core/store`` is how the store's tables came to have several owners:
    every statement lives in the store, behind a method named for what it does."""
    statements = ("execute(", "executemany(", "executescript(")
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "core").rglob("*.py"))
        if "store" not in path.relative_to(ROOT / "core").parts[:1]
        and any(s in path.read_text(encoding="utf-8") for s in statements)
    ]
    assert offenders == []
