"""Render the application icon (resources/icons/trackbox.svg) into a freedesktop icon theme tree.

    python installer/make_icons.py OUT_DIR

writes ``OUT_DIR/hicolor/scalable/apps/trackbox.svg`` and
``OUT_DIR/hicolor/<N>x<N>/apps/trackbox.png`` for N in 16, 32, 48, 64, 128, 256, rendered with
Qt's SVG renderer (no display needed: the offscreen platform is used).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

SIZES = (16, 32, 48, 64, 128, 256)
ICON_NAME = "trackbox"
SOURCE = Path(__file__).resolve().parent.parent / "resources" / "icons" / f"{ICON_NAME}.svg"


def render_icons(out_dir: Path, source: Path = SOURCE) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    renderer = QSvgRenderer(str(source))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: {source} is not a valid SVG")
    written: list[Path] = []
    scalable = out_dir / "hicolor" / "scalable" / "apps" / f"{ICON_NAME}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, scalable)
    written.append(scalable)
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        target = out_dir / "hicolor" / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(target), "PNG"):
            raise SystemExit(f"make_icons: could not write {target}")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    for path in render_icons(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
