#!/usr/bin/env bash
# Install or uninstall the Trackbox bundle for one user (default) or under any prefix.
#
#   install.sh [--prefix DIR]               install (default prefix: ~/.local)
#   install.sh [--prefix DIR] --uninstall   remove what an earlier install put under DIR
#
# What goes where (PREFIX defaults to ~/.local, the per-user XDG location):
#   PREFIX/lib/trackbox/                                  the bundle (trackbox, trackbox-crm, _internal/)
#   PREFIX/bin/trackbox, PREFIX/bin/trackbox-crm          links to the bundle's executables
#   PREFIX/share/applications/trackbox.desktop            the desktop entry (menu / launcher)
#   PREFIX/share/icons/hicolor/<N>x<N>/apps/trackbox.png  icons 16..256, and scalable/…/trackbox.svg
#
# Run it from the unpacked tarball (trackbox-<version>-linux-<arch>/install.sh), from the built
# bundle (dist/trackbox/install.sh), or from a source checkout after `make installer`
# (installer/install.sh, which uses dist/trackbox/). A system-wide install is the same with
# `sudo ./install.sh --prefix /usr/local`. User data (~/.local/share/trackbox) is never touched.
set -euo pipefail

prog="install.sh"
usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "$prog: $*" >&2; exit 1; }

prefix="${HOME:?HOME is not set}/.local"
action=install
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        --uninstall) action=uninstall; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "$prog: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[ -n "$prefix" ] || die "--prefix must not be empty"
case "$prefix" in
    *[\"\`\$\\%]*|*$'\n'*) die "--prefix must not contain \", \`, \$, \\, % or a newline (the desktop entry could not name it)" ;;
esac
if [ "$action" = install ]; then
    mkdir -p "$prefix" 2>/dev/null || die "cannot create $prefix"
fi
if [ -d "$prefix" ]; then
    prefix="$(cd "$prefix" && pwd -P)"
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
libdir="$prefix/lib/trackbox"
bindir="$prefix/bin"
appdir="$prefix/share/applications"
icondir="$prefix/share/icons/hicolor"
manifest="$libdir/.installed-files"
executables=(trackbox trackbox-crm)

# Refresh the desktop's caches when the tools exist; never fail the install over them.
refresh_caches() {
    if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$appdir" ]; then
        update-desktop-database -q "$appdir" 2>/dev/null || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$icondir/index.theme" ]; then
        gtk-update-icon-cache -q -t "$icondir" 2>/dev/null || true
    fi
    if command -v xdg-desktop-menu >/dev/null 2>&1; then
        xdg-desktop-menu forceupdate 2>/dev/null || true
    fi
}

# Remove DIR and its parents while they are empty, up to (not including) the prefix.
prune_empty_dirs() {
    local dir="$1"
    while [ "$dir" != "$prefix" ] && [ "${dir#"$prefix"/}" != "$dir" ]; do
        rmdir "$dir" 2>/dev/null || break
        dir="$(dirname "$dir")"
    done
}

# Remove the files recorded in the manifest, then the bundle. Only what we installed goes.
uninstall() {
    if [ ! -f "$manifest" ]; then
        echo "Trackbox is not installed under $prefix (no $manifest); nothing to remove."
        return 0
    fi
    local path
    while IFS= read -r path; do
        [ -n "$path" ] || continue
        case "$path" in
            "$prefix"/*) ;;
            *) echo "$prog: skipping $path (outside $prefix)" >&2; continue ;;
        esac
        if [ -L "$path" ]; then
            # a launcher link: remove it only if it still points into our bundle
            case "$(readlink "$path")" in
                "$libdir"/*) rm -f "$path" ;;
                *) echo "$prog: leaving $path (it now points elsewhere)" >&2 ;;
            esac
        elif [ -f "$path" ]; then
            rm -f "$path"
        fi
        prune_empty_dirs "$(dirname "$path")"
    done <"$manifest"
    rm -rf "$libdir"
    prune_empty_dirs "$prefix/lib"
    # update-desktop-database left a MIME cache next to our entry; with no entry left in that
    # directory the cache describes nothing, so it goes too (else the caches are refreshed).
    if [ -d "$appdir" ] && [ -z "$(find "$appdir" -maxdepth 1 -name '*.desktop' -print -quit)" ]
    then
        rm -f "$appdir/mimeinfo.cache"
        prune_empty_dirs "$appdir"
    fi
    refresh_caches
    echo "Trackbox removed from $prefix."
}

# Where is the bundle to install? Next to this script (tarball, dist/trackbox), or the source
# tree's dist/trackbox when run as installer/install.sh.
find_payload() {
    if [ -x "$here/trackbox" ] && [ -d "$here/_internal" ]; then
        echo "$here"
    elif [ -x "$here/../dist/trackbox/trackbox" ]; then
        (cd "$here/../dist/trackbox" && pwd -P)
    else
        return 1
    fi
}

install_bundle() {
    local payload
    payload="$(find_payload)" || die "no built bundle found next to $here or in $here/../dist/trackbox" \
        "(build it first: make installer)"
    [ -f "$payload/share/applications/trackbox.desktop" ] || die "$payload has no desktop entry"
    [ "$payload" != "$libdir" ] || die "$payload is already the installed copy"

    # Replace an earlier install cleanly (its manifest knows what it put where).
    if [ -f "$manifest" ]; then
        uninstall >/dev/null
    elif [ -e "$libdir" ]; then
        die "$libdir exists but was not installed by this script; remove it or pick another --prefix"
    fi

    mkdir -p "$prefix/lib" "$bindir" "$appdir" "$icondir"
    local staging="$prefix/lib/.trackbox.new.$$"
    rm -rf "$staging"
    trap 'rm -rf "$staging"' EXIT
    cp -a "$payload/." "$staging/"
    mv "$staging" "$libdir"
    trap - EXIT

    local installed=() exe icon rel target
    for exe in "${executables[@]}"; do
        [ -x "$libdir/$exe" ] || die "the bundle has no $exe executable"
        target="$bindir/$exe"
        if [ -e "$target" ] || [ -L "$target" ]; then
            if [ -L "$target" ]; then
                rm -f "$target"
            else
                die "$target exists and is not a link made by this script; not overwriting it"
            fi
        fi
        ln -s "$libdir/$exe" "$target"
        installed+=("$target")
    done

    # Desktop entry: the command becomes the installed executable's absolute path (in double
    # quotes, as the Desktop Entry spec wants for paths with spaces).
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
            Exec=trackbox*) printf 'Exec="%s"%s\n' "$libdir/trackbox" "${line#Exec=trackbox}" ;;
            TryExec=trackbox) printf 'TryExec=%s\n' "$libdir/trackbox" ;;
            *) printf '%s\n' "$line" ;;
        esac
    done <"$payload/share/applications/trackbox.desktop" >"$appdir/trackbox.desktop"
    chmod 644 "$appdir/trackbox.desktop"
    installed+=("$appdir/trackbox.desktop")

    while IFS= read -r icon; do
        rel="${icon#"$payload/share/icons/hicolor/"}"
        install -D -m 644 "$icon" "$icondir/$rel"
        installed+=("$icondir/$rel")
    done < <(find "$payload/share/icons/hicolor" -type f -name 'trackbox.*' | sort)

    printf '%s\n' "${installed[@]}" >"$manifest"
    refresh_caches

    echo "Trackbox installed in $libdir"
    echo "  commands:      $bindir/trackbox, $bindir/trackbox-crm"
    echo "  desktop entry: $appdir/trackbox.desktop"
    case ":${PATH:-}:" in
        *":$bindir:"*) ;;
        *) echo "  note: $bindir is not on your PATH; add it, or run $bindir/trackbox" ;;
    esac
    local data_dirs="${XDG_DATA_HOME:-$HOME/.local/share}:${XDG_DATA_DIRS:-/usr/local/share:/usr/share}"
    case ":$data_dirs:" in
        *":$prefix/share:"*) ;;
        *) echo "  note: $prefix/share is not in XDG_DATA_DIRS, so desktop menus will not list it" ;;
    esac
    echo "Uninstall with: $libdir/install.sh --prefix '$prefix' --uninstall"
}

if [ "$action" = uninstall ]; then
    uninstall
else
    install_bundle
fi
