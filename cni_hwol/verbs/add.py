"""ADD: give the pod its VF, put the representor on the bridge, delegate IPAM.

Each step pushes its undo; a failure anywhere undoes the steps before it, in
reverse, and reports the error with nothing left behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os

from cni_hwol.cni.device_info import device_info_target
from cni_hwol.cni.errors import DEVICE_ERROR, OVS_ERROR, TRY_AGAIN_LATER, CNIError
from cni_hwol.cni.netconf import (
    ovn_external_ids,
    refuse_unsupported,
    render_external_ids,
    resolve_device_id,
    resolve_mac,
    resolve_ovn_port,
)
from cni_hwol.cni.result import Interface, Result, parse_result, render_result
from cni_hwol.crashpoints import crash_point
from cni_hwol.hw.rdma import rdma_devices_to_move
from cni_hwol.hw.representor import find_representor
from cni_hwol.hw.sysfs import Sysfs
from cni_hwol.ipam import IpamCall
from cni_hwol.ipam import invoke as invoke_ipam
from cni_hwol.linux.addressing import add_addresses, add_routes
from cni_hwol.linux.announce import enable_announcements
from cni_hwol.linux.links import Link, Netlink, ipv6_disabled
from cni_hwol.linux.rdma_move import move_rdma_into_pod, return_rdma_devices
from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, OvsdbUnavailable
from cni_hwol.ovsdb.port_options import OfportTaken, PortOptions
from cni_hwol.ovsdb.ports import BridgeMissing, PortNameTaken, attach_port, detach_port, find_port
from cni_hwol.ovsdb.readiness import IN_VSWITCHD, LINK_UP, Condition, NotReady, external_ids_set, wait_for_interface
from cni_hwol.state import AttachmentState
from cni_hwol.undo import Rollback
from cni_hwol.verbs.common import (
    Invocation,
    connect_ovsdb,
    open_host_netns,
    open_pod_netns,
    ovs_failure,
    plugin_external_ids,
)
from cni_hwol.verbs.delete import detach_attachment_port, forget_attachment
from cni_hwol.verbs.device_info import plan_device_info, restore_device_info, write_device_info
from cni_hwol.verbs.pf_settings import apply_settings, planned_changes, read_before, restore_settings, uplink_of
from cni_hwol.verbs.port_rate import apply_rate, read_rate_before, restore_rate
from cni_hwol.verbs.port_verify import verify_assigned_ofport
from cni_hwol.verbs.stale_ports import settle_stale_ports
from cni_hwol.verbs.uplink_bridge import choose_bridge
from cni_hwol.verbs.userspace_vf import host_record, userspace_driver, userspace_mac
from cni_hwol.verbs.userspace_vf import pod_interface as userspace_pod_interface
from cni_hwol.verbs.vf_moves import (
    host_vf_link,
    move_vf,
    prepare_representor,
    random_mac,
    restore_representor,
    return_vf,
    tc_offload_off,
    usable_mac,
)

log = logging.getLogger(__name__)


def _refuse_if_held(inv: Invocation, device_id: str) -> None:
    holder = inv.store.device_holder(device_id)
    if holder is not None and holder != inv.key and inv.store.load(holder) is not None:
        raise CNIError(
            DEVICE_ERROR,
            f"VF {device_id} is already attached to container {holder.container_id} "
            f"as {holder.ifname} (network {holder.network})",
        )


def _ipam_stdin(inv: Invocation) -> bytes:
    conf = json.loads(inv.conf.raw)
    conf.pop("prevResult", None)
    return json.dumps(conf).encode()


def _settle_stale_ports(inv: Invocation, ovsdb: OvsdbClient, representor: str) -> None:
    """Ports a DEL left while OVSDB was down: ours (we hold its VF) removed, others marked stale."""
    try:
        records = inv.store.stale_ports()
        settle_stale_ports(ovsdb, inv.store, records, may_remove=lambda record: record.representor == representor)
    except (OvsdbError, OvsdbUnavailable) as exc:
        raise ovs_failure("settling stale ports", exc) from None


def _interface_ids(inv: Invocation, state: AttachmentState, result: Result) -> dict[str, str]:
    """The Interface's external_ids: the netconf's and the pod's, then OVN's port identity."""
    ip_addresses = ",".join(ip.address for ip in result.ips)
    ids = render_external_ids(inv.conf, inv.env, state.pod_mac, ip_addresses)
    ovn_port = resolve_ovn_port(inv.conf, inv.env)
    if ovn_port:
        ids.update(ovn_external_ids(ovn_port, inv.env, state.pod_mac, ip_addresses))
    return ids


def _attach(inv: Invocation, ovsdb: OvsdbClient, state: AttachmentState, device_id: str, result: Result) -> str:
    ids = plugin_external_ids(inv, device_id)
    interface_ids = {**_interface_ids(inv, state, result), **ids}
    options = PortOptions.from_state(state.port_options or {})
    try:
        try:
            return attach_port(ovsdb, state.bridge, state.representor, interface_ids, ids, options)
        except PortNameTaken:
            # A port for this representor is left from an earlier attachment
            # of the same VF (we hold the VF, so it cannot be live); replace
            # it if it is ours, refuse if someone else made it.
            port = find_port(ovsdb, state.representor)
            if port is None or not port.ours:
                raise CNIError(
                    OVS_ERROR,
                    f"an OVS port named {state.representor} already exists and was not made by cni-hwol;"
                    f" if it is left over, remove it: ovs-vsctl --db={state.ovsdb_socket} del-port {state.representor}",
                ) from None
            detach_port(ovsdb, port.uuid)
            return attach_port(ovsdb, state.bridge, state.representor, interface_ids, ids, options)
    except BridgeMissing:
        raise CNIError(OVS_ERROR, f"OVS bridge {state.bridge} does not exist in {inv.conf.ovsdb_socket}") from None
    except OfportTaken as exc:
        # The config is valid; this node's OVS is what conflicts (101, not 7).
        raise CNIError(OVS_ERROR, str(exc)) from None
    except (OvsdbError, OvsdbUnavailable) as exc:
        raise ovs_failure(f"adding port {state.representor} to {state.bridge}", exc) from None


def _await_interface(ovsdb: OvsdbClient, name: str, condition: Condition, timeout_ms: int) -> None:
    """Block until the representor's Interface meets `condition`; code 11 (undoing ADD) when it does not in time."""
    try:
        wait_for_interface(ovsdb, name, condition, timeout_ms)
    except NotReady as exc:
        raise CNIError(TRY_AGAIN_LATER, str(exc)) from None
    except (OvsdbError, OvsdbUnavailable) as exc:
        raise ovs_failure(f"waiting for {condition.description} on {name}", exc) from None


def _release_lease(inv: Invocation, lease: IpamCall) -> None:
    """Undo of an IPAM ADD that may still be running: let it finish, then DEL what it took.

    A failed IPAM ADD holds nothing (the spec has the plugin clean up), so a DEL
    that fails after it is no failed undo: kept for DEL, it would fail DEL forever.
    """
    if lease.succeeded is None:
        with contextlib.suppress(CNIError):
            lease.result()
    try:
        invoke_ipam(lease.plugin_type, "DEL", lease.stdin, inv.env.path, inv.environ)
    except CNIError as exc:
        if lease.succeeded:
            raise
        log.warning("IPAM DEL after a failed IPAM ADD: %s", exc)


def _configure_pod_link(pod: Netlink, netns_fd: int, ifname: str, device_id: str, mac: str, mtu: int) -> Link:
    """The VF in the pod gets the pod's MAC and MTU, and announces its addresses once up."""
    pod_link = pod.get(ifname)
    if pod_link is None:
        raise CNIError(DEVICE_ERROR, f"VF {device_id} vanished while moving into the pod")
    if pod_link.mac != mac:
        pod.set_mac(pod_link, mac)
    if pod_link.mtu != mtu:
        pod.set_mtu(pod_link, mtu)
    enable_announcements(netns_fd, ifname)
    return pod_link


def cmd_add(inv: Invocation) -> dict:
    env, conf, store, key = inv.env, inv.conf, inv.store, inv.key
    refuse_unsupported(conf)  # vlanQoS, vlanProto 802.1ad, vlan_trunk, interface_type dpdk, configuration_path
    device_id = resolve_device_id(conf, env)
    requested_mac = resolve_mac(conf, env)
    resolve_ovn_port(conf, env)  # a bad OvnPort is refused before anything changes
    device_info_target(conf)  # so is a CNIDeviceInfoFile outside the node's device-info directory
    netns_fd = open_pod_netns(env.netns)
    host_fd = open_host_netns()
    try:
        with store.lock_attachment(key), store.lock_device(device_id):
            leftover = store.load(key)
            if leftover is not None:
                log.warning("ADD over an unfinished attachment %s: cleaning it first", key.describe())
                forget_attachment(inv, leftover)
            _refuse_if_held(inv, device_id)
            return _add_locked(inv, device_id, requested_mac, netns_fd, host_fd)
    finally:
        os.close(netns_fd)
        os.close(host_fd)


def _add_locked(inv: Invocation, device_id: str, requested_mac: str | None, netns_fd: int, host_fd: int) -> dict:
    env, conf, store, key = inv.env, inv.conf, inv.store, inv.key
    sysfs = Sysfs(conf.sysfs_root)
    vf = sysfs.resolve_vf(device_id)
    rep_found = find_representor(vf, sysfs)

    with Netlink() as host, Netlink(netns_fd) as pod, Rollback() as undo:
        # 1. Everything we will touch exists; nothing is changed yet.
        # A VF on a userspace driver (DPDK, VPP, a VM) has no netdev: it stays
        # where it is, and only its PF-side MAC and its representor are set up.
        vf_link = host_vf_link(host, [vf.netdev] if vf.netdev else [], device_id)
        userspace = userspace_driver(sysfs, vf, vf_link)  # "" for a kernel VF; refuses one without netdev
        rep = host.get(rep_found.netdev)
        if rep is None:
            raise CNIError(
                DEVICE_ERROR, f"representor {rep_found.netdev} of VF {device_id} is not in the host namespace"
            )
        if not userspace and pod.get(env.ifname) is not None:
            raise CNIError(DEVICE_ERROR, f"the pod already has an interface named {env.ifname}")
        bridge = choose_bridge(conf, vf, sysfs)
        pf = uplink_of(host, vf, conf)  # refuses a pod MTU above the uplink's
        vf_admin_before = read_before(host, pf, vf, conf)  # what the PF reports, before any change
        if userspace:  # `mtu` goes to the representor only; the MAC only through the PF
            mtu = conf.mtu or rep.mtu
            mac = userspace_mac(vf_admin_before, requested_mac, pf.name, vf)
        else:
            mtu = conf.mtu or vf_link.mtu
            mac = requested_mac or (vf_link.mac if usable_mac(vf_link.mac) else random_mac())
        devlink_port, port_rate_before = read_rate_before(rep_found, conf, device_id)  # the VF's devlink rate
        device_info = plan_device_info(conf, device_id, vf.pf_pci_address, rep.name)  # refuses a symlink on the way
        rdma_devices, rdma_mode = rdma_devices_to_move(sysfs, device_id)  # only in exclusive RDMA netns mode

        # 2. Remember how things were, before changing any of them.
        ipam_request = _ipam_stdin(inv) if conf.ipam else b""
        state = AttachmentState(
            network=conf.name,
            container_id=env.container_id,
            ifname=env.ifname,
            netns=env.netns,
            device_id=device_id,
            pf_device_id=vf.pf_pci_address,
            vf_index=vf.vf_index,
            **host_record(vf_link),
            representor=rep.name,
            representor_mtu=rep.mtu,
            representor_was_up=rep.up,
            representor_ipv6_disabled=ipv6_disabled(rep.name),
            representor_tc_offload_was_off=tc_offload_off(rep),
            bridge=bridge,
            ovsdb_socket=conf.ovsdb_socket,
            pod_mac=mac,
            pod_mtu=mtu,
            ipam_stdin=ipam_request.decode(),
            pod_args={k: v for k, v in env.args.items() if k.startswith("K8S_POD_")},
            port_options=PortOptions.requested(conf.vlan, conf.trunk, conf.ofport_request).to_state(),
            pf_netdev=pf.name,
            vf_admin_before=vf_admin_before.to_state() if vf_admin_before else None,
            vf_admin_set=planned_changes(vf_admin_before, conf, mac),
            devlink_port=devlink_port,
            port_rate_before=port_rate_before,
            port_rate_set=dict(conf.tx_rate),
            userspace_driver=userspace,
            **device_info,
            rdma_netns_mode=rdma_mode,
            rdma_devices=rdma_devices,
        )
        # The claim first: a state file never exists without its claim, so no
        # other pod is given the VF while anything of this attachment is left.
        # Both are forgotten only if every other undo succeeds (DEL finishes).
        store.claim_device(device_id, key)
        undo.push_record("release the VF claim", store.release_device, device_id, key)
        crash_point("vf-claimed")
        store.save(state)
        undo.push_record("forget the attachment", store.remove, key)
        crash_point("state-written")
        undo.push("restore the device-info file", restore_device_info, state)
        write_device_info(state)  # the representor in the NPWG device information Multus passes on

        # 3. The VF's RDMA devices into the pod (exclusive RDMA netns mode only),
        # before the VF: a device the kernel will not move fails ADD before
        # anything else moved (and a soft-RoCE device dies when its netdev leaves).
        undo.push("bring the RDMA devices home", return_rdma_devices, rdma_devices, device_id, state.netns, host_fd)
        move_rdma_into_pod(rdma_devices, device_id, netns_fd)

        # The VF into the pod, renamed in the same request, while the IPAM
        # plugin takes the lease in its own process: the kernel's namespace move
        # mostly waits (~15 ms on the bench node), and so does an exec'd plugin.
        # The representor's undo runs after the VF is home, as DEL does: the
        # representor's state (carrier, IPv6 link-local) follows its VF's.
        lease = None
        if conf.ipam:
            lease = IpamCall(conf.ipam["type"], "ADD", ipam_request, env.path, inv.environ)
            undo.push("release the IPAM lease", _release_lease, inv, lease)
        undo.push("restore the representor", restore_representor, host, state)
        if not userspace:
            # Pushed before the move: the kernel may move the VF and then refuse
            # the name (CNI_IFNAME "all" or "default"), failing a request half done.
            undo.push("bring the VF home", return_vf, host, host_fd, sysfs, state, state.netns)
            move_vf(host, vf_link, pod, netns_fd, env.ifname)
        result = Result()
        if lease is not None:
            result = parse_result(lease.result() or {})
            state.ipam_stdin = lease.stdin.decode()
        crash_point("vf-moved-lease-taken")

        # 4. The representor ready for offload (no IPv6 of its own before the
        # VF's carrier can give it a link-local address), then the VF's MAC,
        # MTU and announcements; it stays down until it has its addresses.
        prepare_representor(host, rep, mtu)
        pod_link = None if userspace else _configure_pod_link(pod, netns_fd, env.ifname, device_id, mac, mtu)
        undo.push("restore the VF's settings through its PF", restore_settings, host, store, state)
        apply_settings(host, state)  # the pod's MAC as the VF's administrative MAC, spoofchk, trust, link_state
        undo.push("restore the VF's devlink rate", restore_rate, store, state)
        apply_rate(state)  # min_tx_rate, max_tx_rate, bandwidth: tx_share, tx_max of the VF's devlink port
        crash_point("vf-configured")

        # One OVSDB connection for steps 5 and 6: the attach, its read-back and the waits.
        with connect_ovsdb(conf.ovsdb_socket) as ovsdb:
            # 5. The representor on the bridge. Once the request is sent the port is
            # "maybe attached" (a lost reply does not say whether OVSDB committed):
            # its undo finds it by uuid, else by this attachment's marker. OVS may
            # number the port otherwise than ofport_request asked: read it back.
            _settle_stale_ports(inv, ovsdb, rep.name)
            undo.push(f"remove OVS port {rep.name}", detach_attachment_port, state)
            state.port_uuid = _attach(inv, ovsdb, state, device_id, result)
            verify_assigned_ofport(ovsdb, state)
            crash_point("ovs-attached")

            # 6. The lease's addresses on the VF, then, once ovs-vswitchd has the port,
            # the VF up (the kernel announces the addresses as it comes up, and the
            # announcements must reach the bridge), then the routes through it. ADD
            # returns only when the port forwards: its link is up in OVS and the
            # controller (ovn-controller) has written the keys the netconf waits for.
            # Each wait reads first and blocks in the server only when the read says
            # "not yet"; the routes go in while vswitchd sees the link come up.
            # A userspace VF's addresses are returned, not applied (its driver owns
            # them), and its representor's link follows the VF side, which its
            # driver starts only once ADD has returned: no LINK_UP wait for it.
            if pod_link is not None:
                pod_link = pod.get(env.ifname) or pod_link
            pod_interface = (
                userspace_pod_interface(env, mac, device_id)
                if pod_link is None
                else Interface(name=env.ifname, mac=pod_link.mac, sandbox=env.netns, mtu=pod_link.mtu, pci_id=device_id)
            )
            result.interfaces = [Interface(name=rep.name, mac=rep.mac), pod_interface]
            for ip in result.ips:
                ip.interface = 1
            if conf.dns:
                result.dns = conf.dns
            wanted = conf.readiness.wait_for_external_ids
            if pod_link is not None:
                add_addresses(pod, pod_link, result)
            _await_interface(ovsdb, rep.name, IN_VSWITCHD, conf.readiness.vswitchd_timeout_ms)
            if pod_link is not None:
                pod.set_up(pod_link)
                add_routes(pod, pod_link, result)
                _await_interface(ovsdb, rep.name, LINK_UP, conf.readiness.vswitchd_timeout_ms)
            if wanted:
                _await_interface(ovsdb, rep.name, external_ids_set(wanted), conf.readiness.wait_timeout_ms)
        crash_point("addresses-applied")

        # 7. Done: record the outcome, keep every change.
        body = render_result(result, conf.cni_version)
        state.result = body
        store.save(state)
        undo.commit()
    log.info(
        "added %s: VF %s as %s, representor %s (%s) on %s; RDMA devices in the pod: %s (netns mode %s)",
        key.describe(),
        device_id,
        env.ifname,
        rep.name,
        rep_found.source,
        bridge,
        " ".join(state.rdma_devices) or "none",
        state.rdma_netns_mode or "not read, the VF has no RDMA device",
    )
    return body
