"""`"bridge": "auto"`: the bridge of the VF's uplink (its PF, or the bond holding the PF).

Asked for explicitly (the default stays br-int: under OVN-Kubernetes the PF
sits on br-ex while representors belong on br-int). One OVSDB read, only then.
"""

from __future__ import annotations

from cni_hwol.cni.errors import INVALID_NETCONF, CNIError
from cni_hwol.cni.netconf import AUTO_BRIDGE, NetConf
from cni_hwol.hw.sysfs import Sysfs, VirtualFunction
from cni_hwol.hw.uplink import uplinks
from cni_hwol.ovsdb.bridges import bridges_holding
from cni_hwol.ovsdb.client import OvsdbError, OvsdbUnavailable
from cni_hwol.verbs.common import connect_ovsdb, ovs_failure


def choose_bridge(conf: NetConf, vf: VirtualFunction, sysfs: Sysfs) -> str:
    """The bridge the representor joins: the configured one, or the uplink's."""
    if conf.bridge != AUTO_BRIDGE:
        return conf.bridge
    tried = uplinks(sysfs, vf.pf_netdev)
    with connect_ovsdb(conf.ovsdb_socket) as ovsdb:
        try:
            held = bridges_holding(ovsdb, tried)
        except (OvsdbError, OvsdbUnavailable) as exc:
            raise ovs_failure("looking for the bridge of the VF's uplink", exc) from None
    for uplink in tried:
        bridge = held.get(uplink)
        if bridge is not None and (not conf.bridges or bridge in conf.bridges):
            return bridge
    where = ", ".join(f"{uplink} on {held[uplink]}" if uplink in held else f"{uplink} on none" for uplink in tried)
    allowed = f" among the allowed 'bridges' {', '.join(conf.bridges)}" if conf.bridges else ""
    raise CNIError(
        INVALID_NETCONF,
        f'"bridge": "auto" found no OVS bridge{allowed} holding the uplink of VF {vf.pci_address} (tried {where})',
    )
