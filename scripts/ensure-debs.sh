#!/usr/bin/env bash
# Install the Debian packages named on the command line that are not installed yet.
# As root: `apt-get update` once (only if something is missing), then install.
# Not root: list what is missing and how to install it, and carry on (the tests that need a
# missing server will then fail with a message naming it).
set -euo pipefail
missing=()
for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "warning: missing Debian packages: ${missing[*]}" >&2
    echo "         install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: no apt-get here; please install: ${missing[*]}" >&2
    exit 0
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
