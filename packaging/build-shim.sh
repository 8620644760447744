#!/usr/bin/env bash
# Compile cni-hwol's exec'd front (cni_hwol/executor/shim.c) into the path given, statically
# linked and stamped with the package's version (the executor refuses a front of another one).
#   bash packaging/build-shim.sh dist/cni-hwol/cni-hwol
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"
version="$(sed -n 's/^__version__ = "\([0-9.]*\)"$/\1/p' "$root/cni_hwol/__init__.py")"
[ -n "$version" ] || { echo "no __version__ in cni_hwol/__init__.py" >&2; exit 1; }
${CC:-cc} -O2 -static -s -Wall -Wextra -Werror -DCNI_HWOL_VERSION="\"$version\"" \
  -o "$out.tmp.$$" "$root/cni_hwol/executor/shim.c"
mv -f "$out.tmp.$$" "$out"
