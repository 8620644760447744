#!/usr/bin/env bash
# The kernel tier: boot Debian's kernel under qemu (virtme-ng), where devlink, netdevsim's
# switchdev representors and the openvswitch kernel module exist, and run
# tests/kernel/test_guest.py inside it against the real plugin.
#   bash tests/kernel/run.sh          (root; about two minutes under TCG)
# Skips, saying why, where qemu, virtme-ng or the kernel packages are missing; under CI=true
# (GitHub Actions, GitLab) that is a failure, so CI cannot stay green without the tier.
# CNI_HWOL_KERNEL_TESTS="name or name" runs only those guest tests (pytest -k).
# CNI_HWOL_VM_TIMEOUT=seconds bounds the VM (1500: the whole tier takes about 5 min on an idle 2-core machine, far more when loaded).
# CNI_HWOL_VM_KVM=1 uses KVM instead of TCG (nested KVM hangs this workplace's guests).
set -euo pipefail
cd "$(dirname "$0")/../.."
# The newest installed Debian 6.1 kernel with matching headers (KVER= to choose).
if [ -z "${KVER:-}" ]; then
  for image in $(ls -1 /boot/vmlinuz-6.1.*-amd64 2>/dev/null | sort -V -r); do
    candidate=${image#/boot/vmlinuz-}
    if [ -d "/usr/src/linux-headers-$candidate" ]; then KVER=$candidate; break; fi
  done
fi
KVER=${KVER:-none}
SOURCE=/usr/src/linux-source-6.1.tar.xz
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v vng >/dev/null || missing+=("virtme-ng (pip)")
[ -e "/boot/vmlinuz-$KVER" ] || missing+=("linux-image-$KVER")
[ -d "/usr/src/linux-headers-$KVER" ] || missing+=("linux-headers-$KVER")
[ -e "$SOURCE" ] || missing+=(linux-source-6.1)
if [ ${#missing[@]} -gt 0 ]; then
  echo "SKIP kernel tier: missing ${missing[*]} (bash .ci/setup --kernel installs them)"
  case "${CI:-}" in
    "" | false | 0) exit 0 ;;
    *) echo "kernel tier FAILED: CI=$CI and the tier cannot run"; exit 1 ;;
  esac
fi
SELECT=${CNI_HWOL_KERNEL_TESTS:-}
if [[ ! "$SELECT" =~ ^[A-Za-z0-9_\ ]*$ ]]; then
  echo "CNI_HWOL_KERNEL_TESTS: test names, 'or' and 'and' only"; exit 2
fi

# netdevsim is not built in Debian's kernel: build the module out of tree, once.
BUILD=${CNI_HWOL_BUILD_DIR:-/tmp/cni-hwol-build}/netdevsim-$KVER
KO=$BUILD/drivers/net/netdevsim/netdevsim.ko
if [ ! -e "$KO" ]; then
  mkdir -p "$BUILD"
  tar -xJf "$SOURCE" -C "$BUILD" --strip-components=1 linux-source-6.1/drivers/net/netdevsim
  make -s -C "/usr/src/linux-headers-$KVER" M="$BUILD/drivers/net/netdevsim" CONFIG_NETDEVSIM=m modules
fi
CNITOOL=$("$PYTHON" -c 'from tests.simnode.builds import cnitool_binary; print(cnitool_binary())')
# The guest shares this filesystem: build the front here so the guest finds it in the cache.
"$PYTHON" -c 'from tests.simnode.builds import shim_binary; shim_binary()'

accel=(--disable-kvm)
[ "${CNI_HWOL_VM_KVM:-0}" = 1 ] && accel=()
log=$(mktemp)
status=0
timeout "${CNI_HWOL_VM_TIMEOUT:-1500}" vng "${accel[@]}" --run "/boot/vmlinuz-$KVER" --memory 2G --cpus 2 --exec \
  "NETDEVSIM_KO=$KO CNITOOL=$CNITOOL PYTHON=$PYTHON KERNEL_TESTS='$SELECT' bash $PWD/tests/kernel/guest.sh $PWD" \
  </dev/null >"$log" 2>&1 || status=$?
cat "$log"
# The guest prints pytest's summary; its last line says whether the tier passed.
if [ $status -ne 0 ] || ! grep -q "KERNEL-TIER: PASSED" "$log"; then
  echo "kernel tier FAILED (vng exit $status)"
  exit 1
fi
