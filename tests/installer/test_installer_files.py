"""Fast checks of the packaging files that need no build (they run with the normal suite)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "installer"


def test_icons_render_at_every_size(tmp_path: Path) -> None:
    # a subprocess: make_icons creates a QGuiApplication, which must not be this process's app
    result = subprocess.run(
        [sys.executable, str(INSTALLER / "make_icons.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    from PySide6.QtGui import QImage

    for size in (16, 32, 48, 64, 128, 256):
        png = tmp_path / "hicolor" / f"{size}x{size}" / "apps" / "trackbox.png"
        image = QImage(str(png))
        assert (image.width(), image.height()) == (size, size), png
        assert image.hasAlphaChannel()
        # not empty: the centre of the icon is painted
        assert image.pixelColor(size // 2, size // 2).alpha() > 0
    assert (tmp_path / "hicolor/scalable/apps/trackbox.svg").read_bytes() == (
        ROOT / "resources/icons/trackbox.svg"
    ).read_bytes()


def test_desktop_entry() -> None:
    path = INSTALLER / "trackbox.desktop"
    entry = configparser.ConfigParser(interpolation=None, strict=True)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(path, encoding="utf-8")
    main = entry["Desktop Entry"]
    assert main["Type"] == "Application"
    assert main["Name"] == "Trackbox"
    assert main["Exec"] == "trackbox open"  # install.sh rewrites `trackbox` to the installed path
    assert main["Icon"] == "trackbox"
    assert "Email" in main["Categories"].split(";")
    assert entry["Desktop Action demo"]["Exec"] == "trackbox demo"
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(
            ["desktop-file-validate", str(path)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("script", ["install.sh", "build.sh"])
def test_scripts_help_and_shellcheck(script: str) -> None:
    path = INSTALLER / script
    result = subprocess.run(
        ["bash", str(path), "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.strip(), result.stderr
    if shutil.which("shellcheck"):
        check = subprocess.run(
            ["shellcheck", str(path)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout


def test_install_without_a_bundle_says_to_build_first(tmp_path: Path) -> None:
    lonely = tmp_path / "installer" / "install.sh"
    lonely.parent.mkdir()
    shutil.copy(INSTALLER / "install.sh", lonely)
    result = subprocess.run(
        ["bash", str(lonely), "--prefix", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "make installer" in result.stderr


def test_uninstall_when_nothing_is_installed(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(INSTALLER / "install.sh"), "--prefix", str(tmp_path), "--uninstall"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "not installed" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_prefix_that_a_desktop_entry_cannot_name_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(INSTALLER / "install.sh"), "--prefix", str(tmp_path / "a$b")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and "must not contain" in result.stderr
