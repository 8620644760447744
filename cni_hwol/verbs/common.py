"""What every verb gets: the parsed environment and config, and shared helpers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from cni_hwol.cni.env import CniEnv
from cni_hwol.cni.errors import INVALID_ENVIRONMENT, OVS_ERROR, TRY_AGAIN_LATER, CNIError
from cni_hwol.cni.netconf import NetConf
from cni_hwol.linux.netns import NetnsGone, NotANetns, open_netns
from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, OvsdbUnavailable
from cni_hwol.ovsdb.ports import CONTAINER_ID_KEY, IFNAME_KEY, NETWORK_KEY
from cni_hwol.state import AttachmentKey, StateStore

# How long a port removal waits for ovs-vswitchd to let the device go (see detach_port).
VSWITCHD_SYNC_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Invocation:
    env: CniEnv
    conf: NetConf
    environ: Mapping[str, str]

    @property
    def key(self) -> AttachmentKey:
        return AttachmentKey(self.conf.name, self.env.container_id, self.env.ifname)

    @property
    def store(self) -> StateStore:
        return StateStore(self.conf.state_dir)


def open_pod_netns(path: str) -> int:
    try:
        return open_netns(path)
    except NetnsGone:
        raise CNIError(INVALID_ENVIRONMENT, f"CNI_NETNS {path} does not exist") from None
    except NotANetns as exc:
        raise CNIError(INVALID_ENVIRONMENT, f"CNI_NETNS is not a network namespace: {exc}") from None


def open_host_netns() -> int:
    return os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def connect_ovsdb(target: str) -> OvsdbClient:
    try:
        return OvsdbClient(target)
    except OvsdbUnavailable as exc:
        raise CNIError(TRY_AGAIN_LATER, "Open vSwitch database is unreachable", str(exc)) from None


def ovs_failure(action: str, exc: Exception) -> CNIError:
    if isinstance(exc, OvsdbUnavailable):
        return CNIError(TRY_AGAIN_LATER, f"Open vSwitch database failed while {action}", str(exc))
    if isinstance(exc, OvsdbError):
        return CNIError(OVS_ERROR, f"Open vSwitch refused {action}", str(exc))
    return CNIError(OVS_ERROR, f"{action} failed", str(exc))


def plugin_external_ids(inv: Invocation, device_id: str) -> dict[str, str]:
    """The keys the plugin always writes on its Port and Interface rows."""
    args = inv.env.args
    ids = {
        NETWORK_KEY: inv.conf.name,
        CONTAINER_ID_KEY: inv.env.container_id,
        IFNAME_KEY: inv.env.ifname,
        "cni-hwol.netns": inv.env.netns,
        "cni-hwol.device-id": device_id,
        "cni-hwol.pod-namespace": args.get("K8S_POD_NAMESPACE", ""),
        "cni-hwol.pod-name": args.get("K8S_POD_NAME", ""),
        "cni-hwol.pod-uid": args.get("K8S_POD_UID", ""),
    }
    return {k: v for k, v in ids.items() if v}
