"""The desktop bundle, built exactly as ``make installer`` builds it (``installer/build.sh``).

Slow (a PyInstaller build, ~1-2 minutes): deselect locally with ``-m 'not installer'``. CI runs it.

The built executables run with a clean environment (no ``PYTHON_KEYRING_BACKEND`` pointing into
the test tree, a private HOME and XDG directories, offscreen Qt) from a directory outside the
source tree, so that nothing can be imported from the checkout by accident.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.domain import demo_data
from tests.plugins.mailservers import require_binary

pytestmark = [pytest.mark.installer, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
ICON_SIZES = (16, 32, 48, 64, 128, 256)


@dataclass
class Built:
    dist: Path
    bundle: Path
    tarball: Path
    scratch: Path  # a private HOME / working directory for running the bundle

    def env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "FONTCONFIG_FILE", "FONTCONFIG_PATH")
        env = {key: os.environ[key] for key in keep if key in os.environ}
        home = self.scratch / "home"
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local" / "share"),
            XDG_CACHE_HOME=str(home / ".cache"),
            XDG_RUNTIME_DIR=str(self.scratch / "runtime"),
            TRACKBOX_HOME=str(home / "trackbox"),
            QT_QPA_PLATFORM="offscreen",
        )
        for key in ("XDG_RUNTIME_DIR", "HOME"):
            Path(env[key]).mkdir(parents=True, exist_ok=True, mode=0o700)
        return env

    def run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args],
            cwd=self.scratch,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    base = tmp_path_factory.mktemp("installer")
    dist, work = base / "dist", base / "work"
    started = time.monotonic()
    result = subprocess.run(
        [
            "bash",
            str(ROOT / "installer" / "build.sh"),
            "--python",
            sys.executable,
            "--dist-dir",
            str(dist),
            "--work-dir",
            str(work),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1000,
        check=False,
    )
    assert result.returncode == 0, (
        f"installer/build.sh failed ({result.returncode}):\n{_tail(result.stdout)}\n"
        f"{_tail(result.stderr)}"
    )
    print(f"bundle built in {time.monotonic() - started:.0f} s")
    scratch = base / "run"
    scratch.mkdir()
    name = f"trackbox-{VERSION}-linux-{platform.machine()}"
    yield Built(dist, dist / "trackbox", dist / f"{name}.tar.gz", scratch)
    shutil.rmtree(base, ignore_errors=True)  # ~0.5 GB; pytest would keep three runs of it


def test_version(built: Built) -> None:
    result = built.run(built.bundle / "trackbox", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"trackbox {VERSION}"


def test_crm_help(built: Built) -> None:
    result = built.run(built.bundle / "trackbox-crm", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: trackbox-crm" in result.stdout
    assert "serve" in result.stdout


def test_bundled_emulator_serves_the_web_api(built: Built) -> None:
    """`trackbox-crm serve` on its own (not through the demo): uvicorn, Starlette, SQLAlchemy."""
    db = built.scratch / "serve" / "org.sqlite"
    db.parent.mkdir()
    proc = subprocess.Popen(
        [
            str(built.bundle / "trackbox-crm"),
            "serve",
            "--db",
            str(db),
            "--port",
            "0",
            "--seed",
            "demo",
        ],
        cwd=built.scratch,
        env=built.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the base URL, printed once the server listens
        match = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert match, f"no URL on the first line: {first!r}; stderr: {proc.stderr}"
        response = httpx.get(
            match.group(0) + "/api/data/v9.2/WhoAmI",
            auth=(demo_data.ME.email, demo_data.DEMO_PASSWORD),
            headers={"Accept": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json().get("UserId")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _image_stats(path: Path) -> tuple[int, int, int, float]:
    """(width, height, distinct colours, share of the most common colour) of an image file."""
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    assert not image.isNull(), f"{path} does not decode as an image"
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    pixels = memoryview(bytes(image.constBits())).cast("I")
    counts = Counter(pixels)
    top = counts.most_common(1)[0][1]
    return image.width(), image.height(), len(counts), top / len(pixels)


def test_demo_screenshot(built: Built) -> None:
    shot = built.scratch / "shots" / "main-window.png"
    data = built.scratch / "demo-data"
    result = built.run(
        built.bundle / "trackbox",
        "demo",
        "--screenshot",
        shot,
        "--quit-after",
        "3",
        "--data-dir",
        data,
        timeout=240,
    )
    assert result.returncode == 0, (
        f"stdout:\n{_tail(result.stdout)}\nstderr:\n{_tail(result.stderr)}"
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, colours, flat_share = _image_stats(shot)
    assert width >= 640 and height >= 400, (width, height)
    # A rendered window (text, icons, selection highlight) has hundreds of colours; a blank or
    # failed render has one or a handful.
    assert colours >= 100, f"only {colours} distinct colours: the screenshot looks blank"
    assert flat_share < 0.9, f"one colour covers {flat_share:.0%} of the screenshot"


def test_demo_on_a_virtual_x_screen(built: Built) -> None:
    """The bundled xcb platform plugin (what a Linux desktop uses), on Xvfb."""
    xvfb_run = require_binary("xvfb-run", "xvfb")  # make test installs it; CI fails without
    shot = built.scratch / "shots" / "xcb.png"
    env = built.env() | {"QT_QPA_PLATFORM": "xcb"}
    result = subprocess.run(
        [
            xvfb_run,
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            str(built.bundle / "trackbox"),
            "demo",
            "--screenshot",
            str(shot),
            "--quit-after",
            "2",
            "--data-dir",
            str(built.scratch / "demo-data-xcb"),
        ],
        cwd=built.scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"{_tail(result.stdout)}\n{_tail(result.stderr)}"
    _, _, colours, flat_share = _image_stats(shot)
    assert colours >= 100 and flat_share < 0.9, (colours, flat_share)


def _members(tarball: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tarball) as archive:
        return {member.name: member for member in archive.getmembers()}


def test_tarball_layout(built: Built) -> None:
    assert built.tarball.is_file(), sorted(p.name for p in built.dist.iterdir())
    top = built.tarball.name.removesuffix(".tar.gz")
    members = _members(built.tarball)
    assert all(name == top or name.startswith(top + "/") for name in members)
    for needed in ("trackbox", "trackbox-crm", "install.sh"):
        assert members[f"{top}/{needed}"].mode & 0o111, f"{needed} is not executable"
    assert f"{top}/share/applications/trackbox.desktop" in members
    for svg in sorted((ROOT / "resources" / "icons").glob("*.svg")):  # resource_path() finds them
        assert f"{top}/_internal/resources/icons/{svg.name}" in members
    for size in ICON_SIZES:
        assert f"{top}/share/icons/hicolor/{size}x{size}/apps/trackbox.png" in members


def test_bundle_leaves_out_what_it_does_not_need(built: Built) -> None:
    internal = built.bundle / "_internal"
    names = {p.relative_to(internal).as_posix() for p in internal.rglob("*")}
    plugins = {
        n.removeprefix("PySide6/Qt/plugins/")
        for n in names
        if n.startswith("PySide6/Qt/plugins/") and n.endswith(".so")
    }
    for needed in (
        "platforms/libqoffscreen.so",
        "platforms/libqxcb.so",
        "imageformats/libqsvg.so",
        "iconengines/libqsvgicon.so",
    ):
        assert needed in plugins
    unwanted = re.compile(r"gtk|WebEngine|Qt6Quick|Qt6Qml|Qt63D|wayland|libqeglfs", re.I)
    assert not sorted(n for n in names if unwanted.search(n))


@pytest.fixture
def unpacked(built: Built, tmp_path: Path) -> Iterator[Path]:
    """The tarball unpacked, as a user would: the install runs from there."""
    with tarfile.open(built.tarball) as archive:
        archive.extractall(tmp_path, filter="tar")
    yield tmp_path / built.tarball.name.removesuffix(".tar.gz")
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_install_and_uninstall(built: Built, unpacked: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "prefix dir"  # a space, to check the desktop entry's quoting
    unrelated = prefix / "bin" / "someone-elses-tool"
    unrelated.parent.mkdir(parents=True)
    unrelated.write_text("#!/bin/sh\n")

    def install(*args: str) -> subprocess.CompletedProcess[str]:
        return built.run("bash", unpacked / "install.sh", "--prefix", prefix, *args)

    for attempt in (1, 2):  # installing again over an install replaces it cleanly
        result = install()
        assert result.returncode == 0, f"install #{attempt}: {result.stdout}\n{result.stderr}"

    libdir = prefix / "lib" / "trackbox"
    launcher = prefix / "bin" / "trackbox"
    desktop = prefix / "share" / "applications" / "trackbox.desktop"
    icons = [
        prefix / "share/icons/hicolor" / f"{n}x{n}" / "apps" / "trackbox.png" for n in ICON_SIZES
    ]
    scalable = prefix / "share/icons/hicolor/scalable/apps/trackbox.svg"

    assert launcher.is_symlink() and (prefix / "bin" / "trackbox-crm").is_symlink()
    version = built.run(launcher, "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"trackbox {VERSION}", version
    crm = built.run(prefix / "bin" / "trackbox-crm", "--help")
    assert crm.returncode == 0, crm.stderr

    entry = desktop.read_text()
    assert f'Exec="{libdir}/trackbox" open\n' in entry
    assert f'Exec="{libdir}/trackbox" demo\n' in entry
    assert "Icon=trackbox\n" in entry and "Type=Application\n" in entry
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(
            ["desktop-file-validate", str(desktop)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr

    for size, icon in zip(ICON_SIZES, icons, strict=True):
        width, height, colours, _ = _image_stats(icon)
        assert (width, height) == (size, size), icon
        assert colours > 2, f"{icon} looks blank"
    assert scalable.read_text().lstrip().startswith("<svg")

    result = install("--uninstall")
    assert result.returncode == 0, result.stdout + result.stderr
    for gone in (libdir, launcher, prefix / "bin" / "trackbox-crm", desktop, scalable, *icons):
        assert not gone.exists() and not gone.is_symlink(), f"{gone} is still there"
    assert not (prefix / "share").exists(), "empty directories were left behind"
    assert unrelated.read_text() == "#!/bin/sh\n", "uninstall touched a file it did not install"

    again = install("--uninstall")
    assert again.returncode == 0 and "not installed" in again.stdout
