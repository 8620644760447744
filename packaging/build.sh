#!/usr/bin/env bash
# Build the cni-hwol tree: dist/cni-hwol/cni-hwol-py (PyInstaller, one-directory) and beside it
# dist/cni-hwol/cni-hwol, the static exec'd front that kubelet runs (cni_hwol/executor/shim.c).
# ONEFILE=1 also builds dist/cni-hwol-onefile, the one-file variant, for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller packaging/cni-hwol.spec
if [ "${ONEFILE:-0}" = 1 ]; then
  CNI_HWOL_ONEFILE=1 pyinstaller --noconfirm --log-level WARN --distpath dist \
    --workpath build/pyinstaller-onefile packaging/cni-hwol.spec
fi
bash packaging/build-shim.sh dist/cni-hwol/cni-hwol
dist/cni-hwol/cni-hwol --version
