"""Find a VF's representor: devlink's port table first, sysfs where devlink has no answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cni_hwol.cni.errors import DEVICE_ERROR, CNIError
from cni_hwol.hw.devlink import FLAVOUR_PCI_VF, Devlink, DevlinkPort, open_devlink
from cni_hwol.hw.sysfs import Sysfs, VirtualFunction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Representor:
    netdev: str
    source: str  # "devlink" or "sysfs": which one answered
    devlink_handle: str | None = None
    devlink_port: int | None = None  # the VF's devlink port index (its rate object), when devlink answered


def _devlink_handle(vf: VirtualFunction, ports: list[DevlinkPort]) -> str:
    # The PF netdev's own port names its devlink instance (pci/<PF> on mlx5,
    # netdevsim/netdevsimN on netdevsim).
    for port in ports:
        if port.netdev == vf.pf_netdev:
            return port.handle
    return f"pci/{vf.pf_pci_address}"


def _from_devlink(vf: VirtualFunction, devlink: Devlink) -> tuple[Representor | None, str]:
    ports = devlink.ports()
    handle = _devlink_handle(vf, ports)
    mode = devlink.eswitch_mode(handle)
    if mode is not None and mode != "switchdev":
        raise CNIError(
            DEVICE_ERROR,
            f"the eswitch of PF {vf.pf_netdev} ({handle}) is in {mode} mode: switch it with "
            f"'devlink dev eswitch set {handle} mode switchdev' before scheduling offload pods",
        )
    candidates = [p for p in ports if p.handle == handle and p.flavour == FLAVOUR_PCI_VF and p.vf_number == vf.vf_index]
    if len(candidates) > 1:
        candidates = [p for p in candidates if p.pf_number == vf.pf_number]
    if len(candidates) == 1 and candidates[0].netdev:
        return Representor(candidates[0].netdev, "devlink", handle, candidates[0].index), ""
    return None, f"devlink {handle} has no pcivf port with pfnum {vf.pf_number} vfnum {vf.vf_index} and a netdev"


def find_representor(vf: VirtualFunction, sysfs: Sysfs) -> Representor:
    looked_at = []
    with open_devlink() as devlink:
        if devlink.absent:
            looked_at.append("devlink: not available on this kernel")
        else:
            found, why = _from_devlink(vf, devlink)
            if found:
                return found
            looked_at.append(why)
    netdev, why = sysfs.find_representor(vf)
    if netdev:
        log.debug("representor of %s found through sysfs: %s", vf.pci_address, netdev)
        return Representor(netdev, "sysfs")
    looked_at.append(why)
    raise CNIError(
        DEVICE_ERROR,
        f"no representor for VF {vf.pci_address} (PF {vf.pf_netdev}, VF {vf.vf_index})",
        "; ".join(looked_at),
    )
