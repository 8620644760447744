#!/usr/bin/env bash
# Build the cni-hwol executable with PyInstaller: dist/cni-hwol/cni-hwol (one-directory).
# ONEFILE=1 also builds dist/cni-hwol-onefile, the one-file variant, for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller packaging/cni-hwol.spec
if [ "${ONEFILE:-0}" = 1 ]; then
  CNI_HWOL_ONEFILE=1 pyinstaller --noconfirm --log-level WARN --distpath dist \
    --workpath build/pyinstaller-onefile packaging/cni-hwol.spec
fi
dist/cni-hwol/cni-hwol --version
