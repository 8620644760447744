"""Which driver a VF is bound to, from sysfs, and whether it runs in userspace.

A VF bound to `vfio-pci`, `uio_pci_generic` or `igb_uio` belongs to a DPDK or
VPP process, or a KubeVirt VM: it has no netdev, and the pod gets the PCI
function itself (through the device plugin), not a link. The driver's name is
the last component of the PCI function's `driver` symlink.
"""

from __future__ import annotations

import os

from cni_hwol.cni.errors import CNIError
from cni_hwol.hw.sysfs import Sysfs

USERSPACE_DRIVERS = frozenset({"vfio-pci", "uio_pci_generic", "igb_uio"})


def bound_driver(sysfs: Sysfs, pci_address: str) -> str | None:
    """The name of the driver the PCI function is bound to; None when unbound (or gone)."""
    try:
        link = sysfs.pci_device(pci_address) / "driver"
        return os.path.basename(os.readlink(link))
    except (CNIError, OSError):
        return None


def is_userspace_driver(driver: str | None) -> bool:
    return driver in USERSPACE_DRIVERS
