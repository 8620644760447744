#!/usr/bin/env bash
# Runs inside the VM booted by tests/kernel/run.sh (root filesystem shared read-only, /tmp writable).
set -uo pipefail
cd "$1"
modprobe psample && insmod "$NETDEVSIM_KO" && modprobe openvswitch && modprobe dummy &&
  modprobe 8021q && modprobe bonding max_bonds=0 || {
  echo "KERNEL-TIER: FAILED (modules)"; exit 1; }
# RDMA (tests/kernel/test_guest_rdma.py): soft-RoCE, and the exclusive netns mode, which the
# kernel lets change only while init_net is the only netns: here, before any test makes one.
modprobe rdma_rxe && rdma system set netns exclusive || echo "rdma: rdma_rxe or exclusive mode unavailable"
export CNI_HWOL_KERNEL_GUEST=1 PYTHONDONTWRITEBYTECODE=1
# KERNEL_TESTS (a pytest -k expression) narrows the run; tests/kernel/test_vm.py sets it.
PYTHONUNBUFFERED=1 "$PYTHON" -m pytest -q -p no:cacheprovider tests/kernel/test_guest*.py ${KERNEL_TESTS:+-k "$KERNEL_TESTS"}
status=$?
if [ $status -eq 0 ]; then echo "KERNEL-TIER: PASSED"; else echo "KERNEL-TIER: FAILED ($status)"; fi
exit $status
