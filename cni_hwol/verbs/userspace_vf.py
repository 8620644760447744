"""A VF bound to a userspace driver (vfio-pci, uio_pci_generic, igb_uio): what ADD,
CHECK and DEL do differently for it.

Such a VF has no netdev: nothing moves into the pod (the device plugin hands the
PCI function to the pod's DPDK process or VM), no MAC, MTU or address is set on
it. Its MAC goes through the PF as its administrative MAC, which the userspace
driver reads when it starts the port; its representor is wired as a kernel VF's.
"""

from __future__ import annotations

from cni_hwol.cni.env import CniEnv
from cni_hwol.cni.errors import DEVICE_ERROR, NETLINK_ERROR, CNIError
from cni_hwol.cni.result import Interface
from cni_hwol.hw.driver import bound_driver, is_userspace_driver
from cni_hwol.hw.sysfs import Sysfs, VirtualFunction
from cni_hwol.linux.links import Link
from cni_hwol.linux.vf_settings import VfSettings
from cni_hwol.verbs.vf_moves import random_mac, usable_mac


def userspace_driver(sysfs: Sysfs, vf: VirtualFunction, vf_link: Link | None) -> str:
    """The VF's userspace driver; "" for a VF with a netdev in the host.

    A VF without a netdev here and a kernel driver (or none) is refused: its
    netdev is in another pod's namespace, or its driver is not bound.
    """
    if vf_link is not None:
        return ""
    driver = bound_driver(sysfs, vf.pci_address)
    if is_userspace_driver(driver):
        return driver
    raise CNIError(
        DEVICE_ERROR,
        f"VF {vf.pci_address} has no netdev in the host network namespace "
        f"(sysfs lists {vf.netdev or 'none'}, driver {driver or 'none'}): "
        "it is in use by another pod or its driver is not bound",
    )


def userspace_mac(before: VfSettings | None, requested: str | None, pf: str, vf: VirtualFunction) -> str:
    """The MAC a userspace VF gets as its administrative MAC: the requested one, else
    the one the PF reports when usable, else a random one; "" when the PF cannot set
    one (no VF operations). A requested MAC the PF cannot set is refused (103): the
    VF has no netdev to carry it instead."""
    if before is None:
        if requested:
            raise CNIError(
                NETLINK_ERROR,
                f"PF {pf} has no VF operations: cannot set mac {requested} on VF {vf.vf_index} "
                f"({vf.pci_address} is bound to a userspace driver and has no netdev)",
            )
        return ""
    return requested or (before.mac if usable_mac(before.mac) else random_mac())


def host_record(vf_link: Link | None) -> dict:
    """The VF's host netdev as the state keeps it for DEL; empty for a userspace VF."""
    if vf_link is None:
        return {"vf_name": "", "vf_mac": "", "vf_mtu": 0, "vf_altnames": []}
    altnames = list(vf_link.altnames)
    return {"vf_name": vf_link.name, "vf_mac": vf_link.mac, "vf_mtu": vf_link.mtu, "vf_altnames": altnames}


def pod_interface(env: CniEnv, mac: str, device_id: str) -> Interface:
    """The result's pod interface: CNI_IFNAME in the pod's sandbox (Multus reports the
    pod's IPs and device by it), the administrative MAC when the PF took one, the
    PCI function (CNI 1.1 pciID); no MTU, which is the userspace driver's to choose."""
    return Interface(name=env.ifname, mac=mac, sandbox=env.netns, pci_id=device_id)
