"""Which RDMA devices a VF has, and whether they must move with it.

The kernel lists the RDMA devices of a PCI function under its sysfs directory
(bus/pci/devices/<VF>/infiniband/<name>, e.g. mlx5_2). Whether a pod can use
one depends on the RDMA subsystem's netns mode: in shared mode (the default)
every namespace sees every RDMA device, so nothing moves; in exclusive mode a
device belongs to one namespace and must follow its VF into the pod.

Without RDMA netlink (ib_core not loaded) no RDMA device exists, so a VF whose
sysfs lists none needs nothing. A VF whose sysfs lists one while the mode
cannot be read is refused: we cannot tell whether the pod would get its RDMA
device, and a pod that silently lacks it fails far from the cause.
"""

from __future__ import annotations

import os

from cni_hwol.cni.errors import DEVICE_ERROR, CNIError
from cni_hwol.hw.sysfs import Sysfs
from cni_hwol.linux.nlsock import NetlinkError
from cni_hwol.linux.rdma_netlink import EXCLUSIVE, RdmaNetlink, RdmaUnavailable


def rdma_devices(sysfs: Sysfs, pci_address: str) -> list[str]:
    """The RDMA devices sysfs lists under a PCI function (in this netns)."""
    try:
        return sorted(os.listdir(sysfs.pci_device(pci_address) / "infiniband"))
    except OSError:
        return []


def read_netns_mode() -> str | None:
    """The RDMA netns mode ("shared" or "exclusive"); None without RDMA netlink."""
    try:
        with RdmaNetlink() as rdma:
            return rdma.netns_mode()
    except RdmaUnavailable:
        return None


def rdma_devices_to_move(sysfs: Sysfs, pci_address: str) -> tuple[list[str], str]:
    """The VF's RDMA devices that must follow it into the pod, and the netns mode ("" when none are listed).

    Costs a netlink request only for a VF that has RDMA devices.
    """
    devices = rdma_devices(sysfs, pci_address)
    if not devices:
        return [], ""
    try:
        mode = read_netns_mode()
    except (NetlinkError, OSError) as exc:
        mode, why = None, str(exc)
    else:
        why = "no RDMA netlink in this kernel (is ib_core loaded?)"
    if mode is None:
        raise CNIError(
            DEVICE_ERROR,
            f"VF {pci_address} has RDMA device(s) {' '.join(devices)} in sysfs, but the RDMA netns mode"
            f" cannot be read: {why}",
        )
    return (devices if mode == EXCLUSIVE else []), mode
