#!/usr/bin/env bash
# Build the Trackbox desktop bundle and its tarball (what `make installer` runs).
#
#   installer/build.sh [--python PY] [--dist-dir DIR] [--work-dir DIR]
#
# Output (defaults):
#   dist/trackbox/                                  the one-folder bundle, ready to run and to install:
#       trackbox, trackbox-crm, _internal/          the two executables and what they share
#       install.sh                                  installs/uninstalls this bundle (--help)
#       share/applications/trackbox.desktop         desktop entry template
#       share/icons/hicolor/*/apps/trackbox.{png,svg}
#   dist/trackbox-<version>-linux-<arch>.tar.gz     the same folder as trackbox-<version>-linux-<arch>/
#   build/installer/                                PyInstaller's work files
#
# Needs the project's virtualenv with PyInstaller in it (`make installer` sees to both).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
dist_dir="$root/dist"
work_dir="$root/build/installer"

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --python) python="$2"; shift 2 ;;
        --dist-dir) dist_dir="$2"; shift 2 ;;
        --work-dir) work_dir="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

die() { echo "build.sh: $*" >&2; exit 1; }

# paths given relative to where we were started keep working after the `cd` below
absolute() { case "$1" in /*) printf '%s\n' "$1" ;; */*) printf '%s\n' "$PWD/$1" ;; *) printf '%s\n' "$1" ;; esac; }
python="$(absolute "$python")"
dist_dir="$(absolute "$dist_dir")"
work_dir="$(absolute "$work_dir")"

[ -x "$python" ] || command -v "$python" >/dev/null 2>&1 \
    || die "no Python at $python (run 'make venv', or pass --python)"
"$python" -c 'import PyInstaller' 2>/dev/null \
    || die "PyInstaller is not installed in $python's environment: $python -m pip install 'pyinstaller>=6.10,<7'"

cd "$root"
version="$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
installed="$("$python" -c 'from importlib.metadata import version; print(version("trackbox"))' 2>/dev/null || true)"
[ "$installed" = "$version" ] || die "the environment has trackbox '${installed:-not installed}'" \
    "but pyproject.toml says $version (the bundle's --version comes from the installed metadata):" \
    "reinstall with: $python -m pip install -e ."
arch="$(uname -m)"
name="trackbox-$version-linux-$arch"
bundle="$dist_dir/trackbox"
tarball="$dist_dir/$name.tar.gz"

mkdir -p "$dist_dir" "$work_dir"
start=$SECONDS
echo "Building Trackbox $version bundle in $bundle"
"$python" -m PyInstaller --noconfirm --log-level WARN \
    --workpath "$work_dir" --distpath "$dist_dir" "$here/trackbox.spec"

# The parts install.sh puts in the standard places.
"$python" "$here/make_icons.py" "$bundle/share/icons" >/dev/null
install -D -m 644 "$here/trackbox.desktop" "$bundle/share/applications/trackbox.desktop"
install -m 755 "$here/install.sh" "$bundle/install.sh"
printf 'trackbox %s linux-%s\n' "$version" "$arch" >"$bundle/VERSION"

rm -f "$tarball"
tar -C "$dist_dir" --sort=name --owner=0 --group=0 --numeric-owner \
    --transform "s,^trackbox,$name,S" -cf - trackbox | gzip -n -6 >"$tarball.part"
mv "$tarball.part" "$tarball"

echo "Bundle:  $bundle ($(du -sh "$bundle" | cut -f1))"
echo "Tarball: $tarball ($(du -sh "$tarball" | cut -f1))"
echo "Built in $((SECONDS - start)) s. Install with: $bundle/install.sh  (or --help)"
