"""The pod's egress rate on the VF's devlink port: read before ADD, set, verified, restored.

In switchdev mode the kernel refuses IFLA_VF_RATE through the PF (EOPNOTSUPP on
mlx5 and netdevsim); the rate lives on the devlink rate object of the VF's port
(`devlink port function rate set <port> tx_share/tx_max`), where the hardware
enforces it and OVS's offloaded flows stay in hardware (tc rules from the
`bandwidth` plugin on the representor would not).
"""

from __future__ import annotations

from cni_hwol.cni.errors import DEVICE_ERROR, NETLINK_ERROR, CNIError
from cni_hwol.cni.netconf import NetConf
from cni_hwol.hw.devlink import open_devlink
from cni_hwol.hw.representor import Representor
from cni_hwol.linux.nlsock import NetlinkError
from cni_hwol.state import AttachmentState, StateStore
from cni_hwol.verbs.pf_settings import claim_is_ours


def _port(state: AttachmentState) -> tuple[str, int]:
    handle, _, index = state.devlink_port.rpartition("/")
    return handle, int(index)


def _devlink_call(what: str, call, *args):
    with open_devlink() as devlink:
        try:
            return getattr(devlink, call)(*args)
        except NetlinkError as exc:
            raise CNIError(NETLINK_ERROR, f"cannot {what}", exc.strerror) from None


def read_rate_before(rep: Representor, conf: NetConf, device_id: str) -> tuple[str, dict | None]:
    """The VF's devlink port ("bus/dev/index") and its rate now; ("", None) when no rate is asked for."""
    if not conf.tx_rate:
        return "", None
    if rep.devlink_port is None:
        raise CNIError(
            NETLINK_ERROR,
            f"min_tx_rate, max_tx_rate and bandwidth need the devlink port of VF {device_id}, "
            f"and devlink has none (representor {rep.netdev} found through {rep.source})",
        )
    port = f"{rep.devlink_handle}/{rep.devlink_port}"
    before = _devlink_call(f"read the rate of devlink port {port}", "port_rate", rep.devlink_handle, rep.devlink_port)
    return port, before


def apply_rate(state: AttachmentState) -> None:
    if state.port_rate_set:
        what = f"set {state.port_rate_set} (bytes/s) on devlink port {state.devlink_port}"
        _devlink_call(what, "set_port_rate", *_port(state), state.port_rate_set)


def restore_rate(store: StateStore, state: AttachmentState) -> None:
    """Put back the rates ADD changed, unless the VF is now another attachment's."""
    before = state.port_rate_before or {}
    changes = {key: before[key] for key, value in state.port_rate_set.items() if key in before and before[key] != value}
    if changes and claim_is_ours(store, state, "its devlink rate"):
        _devlink_call(f"restore the rate of devlink port {state.devlink_port}", "set_port_rate", *_port(state), changes)


def check_rate(state: AttachmentState) -> None:
    """CHECK: the VF's devlink port still has the rates ADD set."""
    if not state.port_rate_set:
        return
    found = _devlink_call(f"read the rate of devlink port {state.devlink_port}", "port_rate", *_port(state))
    for key, value in state.port_rate_set.items():
        if found.get(key) != value:
            raise CNIError(
                DEVICE_ERROR,
                f"devlink port {state.devlink_port} has {key} {found.get(key)}, ADD set {value}",
            )
