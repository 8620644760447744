"""DEL: undo an attachment from its state file; idempotent, netns or not.

Order: the OVS port first (if OVSDB is down we fail before touching anything,
so the runtime's retry redoes it all), then the IPAM lease, released while the
kernel brings the VF home (both mostly wait), then the representor, and the
state last, so a DEL cut short is simply run again.
"""

from __future__ import annotations

import json
import logging
import os

from cni_hwol.cni.errors import CNIError
from cni_hwol.hw.sysfs import Sysfs
from cni_hwol.ipam import IpamCall
from cni_hwol.ipam import invoke as invoke_ipam
from cni_hwol.linux.links import Netlink
from cni_hwol.ovsdb.client import OvsdbError, OvsdbUnavailable
from cni_hwol.ovsdb.ports import detach_port, find_port
from cni_hwol.state import AttachmentState
from cni_hwol.verbs.common import Invocation, connect_ovsdb, open_host_netns, ovs_failure
from cni_hwol.verbs.vf_moves import restore_representor, return_vf

log = logging.getLogger(__name__)

VSWITCHD_SYNC_TIMEOUT_MS = 5000


def _detach_from_ovs(state: AttachmentState) -> None:
    with connect_ovsdb(state.ovsdb_socket) as ovsdb:
        try:
            port_uuid = state.port_uuid
            if port_uuid is None:
                # ADD stopped between the OVS transaction and the state write:
                # claim the port only if its marker names this attachment.
                port = find_port(ovsdb, state.representor)
                if port and port.belongs_to(state.container_id, state.ifname):
                    port_uuid = port.uuid
            # A representor that was down before ADD is set down again after the
            # port is gone; vswitchd must have let go of it first (see detach_port).
            sync_ms = 0 if state.representor_was_up else VSWITCHD_SYNC_TIMEOUT_MS
            if port_uuid is not None and detach_port(ovsdb, port_uuid, sync_ms):
                log.info("removed OVS port %s (%s)", state.representor, port_uuid)
        except (OvsdbError, OvsdbUnavailable) as exc:
            raise ovs_failure(f"removing port {state.representor}", exc) from None


def _ipam_environ(inv: Invocation, state: AttachmentState | None) -> dict[str, str]:
    environ = dict(inv.environ)
    if state is not None:  # GC tears down attachments other than the one in CNI_* (if any)
        environ.update(CNI_CONTAINERID=state.container_id, CNI_IFNAME=state.ifname, CNI_NETNS=state.netns)
    return environ


def teardown(inv: Invocation, state: AttachmentState) -> None:
    """Undo everything ADD may have done for this state, in reverse order of ADD."""
    _detach_from_ovs(state)
    ipam_type = _stored_ipam_type(state) if state.ipam_stdin else None
    release = None
    if ipam_type:
        release = IpamCall(ipam_type, "DEL", state.ipam_stdin.encode(), inv.env.path, _ipam_environ(inv, state))
    host_fd = open_host_netns()
    try:
        with Netlink() as host:
            netns_path = inv.env.netns or state.netns
            if not return_vf(host, host_fd, Sysfs(inv.conf.sysfs_root), state, netns_path):
                log.warning("VF %s is in no namespace we can see; left where it is", state.device_id)
            restore_representor(host, state)
    finally:
        os.close(host_fd)
        if release is not None:
            release.wait()  # never leave it running
    if release is not None:
        release.result()  # a failed release fails DEL: the state stays, and the retry redoes it all


def forget_attachment(inv: Invocation, state: AttachmentState) -> None:
    """Undo an attachment and drop every record of it; the caller holds its locks."""
    teardown(inv, state)
    inv.store.release_device(state.device_id, state.key)
    inv.store.remove(state.key)


def _stored_ipam_type(state: AttachmentState) -> str | None:
    try:
        return json.loads(state.ipam_stdin).get("ipam", {}).get("type")
    except (ValueError, AttributeError):
        return None


def cmd_del(inv: Invocation) -> None:
    store = inv.store
    key = inv.key
    with store.lock_attachment(key):
        state = store.load(key)
        if state is None:
            # Nothing of ours is recorded (a DEL without ADD, or a second DEL).
            # IPAM releases are idempotent; give the lease back in case ADD
            # died after IPAM but before it could write anything.
            if inv.conf.ipam and inv.env.path:
                try:
                    invoke_ipam(inv.conf.ipam["type"], "DEL", inv.conf.raw, inv.env.path, _ipam_environ(inv, None))
                except CNIError as exc:
                    log.warning("IPAM DEL without state: %s", exc)
            return
        with store.lock_device(state.device_id):
            forget_attachment(inv, state)
    log.info("deleted attachment %s (VF %s)", key.describe(), state.device_id)
