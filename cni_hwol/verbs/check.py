"""CHECK: the attachment is still as ADD left it, or a clear error says what is not."""

from __future__ import annotations

import logging
import os

from cni_hwol.cni.env import CniEnv
from cni_hwol.cni.errors import DEVICE_ERROR, INVALID_NETCONF, OVS_ERROR, UNKNOWN_CONTAINER, CNIError
from cni_hwol.cni.result import Result, parse_result
from cni_hwol.ipam import invoke as invoke_ipam
from cni_hwol.linux.addressing import missing_from, routes_missing_from
from cni_hwol.linux.links import Netlink
from cni_hwol.linux.nlsock import NetlinkError
from cni_hwol.linux.tc_rules import foreign_tc_rules
from cni_hwol.ovsdb.client import OvsdbError, OvsdbUnavailable
from cni_hwol.ovsdb.port_options import read_port_options
from cni_hwol.ovsdb.ports import port_on_bridge
from cni_hwol.state import AttachmentState
from cni_hwol.verbs.common import Invocation, connect_ovsdb, open_pod_netns, ovs_failure
from cni_hwol.verbs.pf_settings import check_settings
from cni_hwol.verbs.port_rate import check_rate
from cni_hwol.verbs.port_verify import check_port_options
from cni_hwol.verbs.vf_moves import is_vf

log = logging.getLogger(__name__)


def _warn_of_foreign_tc_rules(host: Netlink, representor: str) -> None:
    """A warning, not a failure: the pod's traffic flows, but what these rules match leaves the hardware path."""
    try:
        rules = foreign_tc_rules(host, representor)
    except (NetlinkError, LookupError) as exc:
        log.warning("cannot read the tc rules of representor %s: %s", representor, exc)
        return
    if rules:
        log.warning(
            "representor %s carries tc rules that are not OVS's, so what they match is not offloaded: %s;"
            " do not chain the bandwidth plugin after cni-hwol, give cni-hwol the bandwidth capability",
            representor,
            "; ".join(rules),
        )


def cmd_check(inv: Invocation) -> None:
    env, conf = inv.env, inv.conf
    if conf.prev_result is None:
        raise CNIError(INVALID_NETCONF, "CHECK needs prevResult (the result of ADD)")
    expected = parse_result(conf.prev_result)
    state = inv.store.load(inv.key)
    if state is None:
        raise CNIError(UNKNOWN_CONTAINER, f"no attachment {inv.key.describe()} was made by cni-hwol")

    if not state.userspace_driver:  # a userspace VF has no link in the pod; its MAC is checked at the PF
        _check_pod_link(env, state, expected)
    with Netlink() as host:
        rep = host.get(state.representor)
        if rep is None or not rep.up:
            raise CNIError(DEVICE_ERROR, f"representor {state.representor} is missing or down")
        check_settings(host, state)
        _warn_of_foreign_tc_rules(host, state.representor)
    check_rate(state)
    with connect_ovsdb(state.ovsdb_socket) as ovsdb:
        try:
            port, held = port_on_bridge(ovsdb, state.bridge, state.representor)
            found = read_port_options(ovsdb, state.representor)
        except (OvsdbError, OvsdbUnavailable) as exc:
            raise ovs_failure("reading the bridge", exc) from None
    if port is None or not held:
        raise CNIError(OVS_ERROR, f"representor {state.representor} is not a port of bridge {state.bridge}")
    if not port.belongs_to(env.container_id, env.ifname):
        raise CNIError(OVS_ERROR, f"OVS port {state.representor} belongs to another attachment: {port.external_ids}")
    check_port_options(state, found)
    if conf.ipam:  # the lease is the IPAM plugin's to vouch for: the spec has CHECK reach it, as for ADD
        invoke_ipam(conf.ipam["type"], "CHECK", conf.raw, env.path, inv.environ)


def _expected_mac(env: CniEnv, state: AttachmentState, expected: Result) -> str:
    """The pod interface's MAC as the chain's result says: a later plugin (tuning) may have changed
    it, and the spec has CHECK take the expected interfaces from prevResult."""
    for iface in expected.interfaces:
        if iface.name == env.ifname and iface.sandbox:
            return iface.mac or state.pod_mac
    raise CNIError(INVALID_NETCONF, f"prevResult lists no interface {env.ifname} in a sandbox: not the result of ADD")


def _check_pod_link(env: CniEnv, state: AttachmentState, expected: Result) -> None:
    """The VF is in the pod under CNI_IFNAME, up, with the result's MAC and addresses."""
    mac = _expected_mac(env, state, expected)
    netns_fd = open_pod_netns(env.netns)
    try:
        with Netlink(netns_fd) as pod:
            link = pod.get(env.ifname)
            if link is None or not is_vf(link, state.device_id):
                raise CNIError(DEVICE_ERROR, f"VF {state.device_id} is not in the pod as {env.ifname}")
            if not link.up:
                raise CNIError(DEVICE_ERROR, f"{env.ifname} in the pod is down")
            if mac and link.mac != mac:
                raise CNIError(DEVICE_ERROR, f"{env.ifname} has MAC {link.mac}, the result of ADD says {mac}")
            missing = missing_from(pod, link, expected)
            if missing:
                raise CNIError(DEVICE_ERROR, f"{env.ifname} lacks address(es) {', '.join(missing)}")
            missing = routes_missing_from(pod, expected)
            if missing:
                raise CNIError(DEVICE_ERROR, f"the pod lacks route(s) {', '.join(missing)} of the result")
    finally:
        os.close(netns_fd)
