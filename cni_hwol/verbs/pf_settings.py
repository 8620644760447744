"""The VF's settings through its PF: read before ADD changes anything, set, verified, restored.

The pod's MAC always becomes the VF's administrative MAC too (it survives a
rebind of the VF driver); spoofchk, trust and link_state only when asked for.
A PF without VF operations (a veth, some drivers) is warned about for that
implicit MAC and refused (103) for any key the netconf asked for.
"""

from __future__ import annotations

import logging

from cni_hwol.cni.errors import DEVICE_ERROR, INVALID_NETCONF, NETLINK_ERROR, CNIError
from cni_hwol.cni.netconf import NetConf
from cni_hwol.hw.sysfs import VirtualFunction
from cni_hwol.linux.links import Link, Netlink
from cni_hwol.linux.vf_settings import VfSettings, read_vf, set_vf
from cni_hwol.state import AttachmentState, StateStore

log = logging.getLogger(__name__)


def uplink_of(host: Netlink, vf: VirtualFunction, conf: NetConf) -> Link:
    """The VF's PF netdev; a pod MTU above its MTU is refused (the uplink would drop those frames)."""
    pf = host.get(vf.pf_netdev)
    if pf is None:
        raise CNIError(DEVICE_ERROR, f"PF {vf.pf_netdev} of VF {vf.pci_address} is not in the host namespace")
    if conf.mtu is not None and conf.mtu > pf.mtu:
        raise CNIError(INVALID_NETCONF, f"'mtu' {conf.mtu} exceeds the MTU {pf.mtu} of the uplink {pf.name}")
    return pf


def read_before(host: Netlink, pf: Link, vf: VirtualFunction, conf: NetConf) -> VfSettings | None:
    """What the PF reports for the VF now; refuses asked-for keys on a PF without VF operations."""
    before = read_vf(host, pf.name, vf.vf_index)
    if before is None and conf.vf_settings:
        asked = ", ".join(sorted(conf.vf_settings))
        raise CNIError(NETLINK_ERROR, f"PF {pf.name} has no VF operations: cannot set {asked} on VF {vf.vf_index}")
    if before is None:
        log.warning("PF %s has no VF operations: VF %d keeps its administrative MAC", pf.name, vf.vf_index)
    return before


def planned_changes(before: VfSettings | None, conf: NetConf, mac: str) -> dict:
    """The settings ADD will set through the PF: the pod's MAC and the asked-for keys."""
    return {} if before is None else {"mac": mac, **conf.vf_settings}


def settings_to_send(state: AttachmentState) -> dict:
    """What ADD's plan changes: a setting the PF already reports at the asked value is not sent.

    sriov-network-operator NADs carry neutral values ("link_state": "auto"), and mlx5 refuses any
    link_state in switchdev mode (EOPNOTSUPP), so sending them would fail ADD for nothing.
    CHECK still verifies every planned setting.
    """
    before = state.vf_admin_before or {}
    return {key: value for key, value in state.vf_admin_set.items() if before.get(key) != value}


def apply_settings(host: Netlink, state: AttachmentState) -> None:
    changes = settings_to_send(state)
    if not changes:  # a PF without VF operations, or nothing differs: nothing to set, nothing to look up
        return
    pf = host.get(state.pf_netdev)
    if pf is None:
        raise CNIError(DEVICE_ERROR, f"PF {state.pf_netdev} vanished")
    set_vf(host, pf.name, pf.index, state.vf_index, changes)


def _restorable(state: AttachmentState) -> dict:
    """What ADD changed, at its value from before ADD (a setting the PF did not report stays)."""
    before = (state.vf_admin_before or {}) if state.vf_admin_set else {}
    return {
        key: before[key]
        for key, value in state.vf_admin_set.items()
        if before.get(key) is not None and before[key] != value
    }


def claim_is_ours(store: StateStore, state: AttachmentState, what: str) -> bool:
    """Whether this attachment still holds its VF: a VF already given to another pod is not reset."""
    holder = store.device_holder(state.device_id)
    if holder != state.key:
        log.warning("VF %s is claimed by %s: %s left as they are", state.device_id, holder, what)
    return holder == state.key


def restore_settings(host: Netlink, store: StateStore, state: AttachmentState) -> None:
    """Put back what ADD changed, unless the VF is now another attachment's."""
    changes = _restorable(state)
    if not changes:
        return
    if not claim_is_ours(store, state, "its PF settings"):
        return
    pf = host.get(state.pf_netdev)
    if pf is None:
        log.warning("PF %s is gone: VF %d's settings not restored", state.pf_netdev, state.vf_index)
        return
    set_vf(host, pf.name, pf.index, state.vf_index, changes)


def check_settings(host: Netlink, state: AttachmentState) -> None:
    """CHECK: the PF still reports what ADD set."""
    if not state.vf_admin_set:
        return
    now = read_vf(host, state.pf_netdev, state.vf_index)
    found = now.to_state() if now else {}
    for key, value in state.vf_admin_set.items():
        if found.get(key) != value:
            raise CNIError(
                DEVICE_ERROR,
                f"VF {state.vf_index} of {state.pf_netdev} has {key} {found.get(key)}, ADD set {value}",
            )
