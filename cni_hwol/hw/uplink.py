"""A VF's uplinks, as sysfs shows them: its PF's netdev, and the kernel bond holding that PF.

Under VF-LAG both PFs of a ConnectX sit in one kernel bond, and that bond (not
the PF) is the port of the OVS bridge. sysfs links class/net/<PF>/master to the
bond's netdev; a bond has a bonding/ directory (an OVS kernel-datapath port's
master is ovs-system, which has none).
"""

from __future__ import annotations

import os

from cni_hwol.hw.sysfs import Sysfs


def bond_master(sysfs: Sysfs, netdev: str) -> str | None:
    """The kernel bond `netdev` is enslaved to, if any."""
    link = sysfs.root / "class" / "net" / netdev / "master"
    try:
        master = os.path.basename(os.readlink(link))
    except OSError:
        return None
    return master if (sysfs.root / "class" / "net" / master / "bonding").is_dir() else None


def uplinks(sysfs: Sysfs, pf_netdev: str) -> list[str]:
    """The netdevs that may be the VF's uplink port on an OVS bridge, most specific first."""
    master = bond_master(sysfs, pf_netdev)
    return [pf_netdev, master] if master else [pf_netdev]
