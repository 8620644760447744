"""DEL: undo an attachment from its state file; idempotent, netns or not.

Order: find the VF (in the pod under any name, or in the host) before changing
anything; then the OVS port (with OVSDB unreachable, the port is recorded as
stale and everything else still done, so the pod can terminate); the IPAM
lease, released while the kernel brings the VF home (both mostly wait); the
representor, only once its VF is home (until then it is ours alone); the VF's
RDMA devices, if ADD moved them (exclusive RDMA netns mode); and the
state last, then the VF claim, so a DEL cut short is simply run again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time

from cni_hwol.cni.errors import TRY_AGAIN_LATER, CNIError
from cni_hwol.hw.sysfs import Sysfs
from cni_hwol.ipam import IpamCall
from cni_hwol.ipam import invoke as invoke_ipam
from cni_hwol.linux.links import Netlink
from cni_hwol.linux.rdma_move import return_rdma_devices
from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, OvsdbUnavailable
from cni_hwol.ovsdb.ports import await_vswitchd, find_port, send_detach
from cni_hwol.state import AttachmentState
from cni_hwol.verbs.common import VSWITCHD_SYNC_TIMEOUT_MS, Invocation, open_host_netns, ovs_failure
from cni_hwol.verbs.device_info import restore_device_info
from cni_hwol.verbs.pf_settings import restore_settings
from cni_hwol.verbs.port_rate import restore_rate
from cni_hwol.verbs.stale_ports import stale_port_of
from cni_hwol.verbs.vf_moves import VfNowhere, locate_vf, restore_representor, return_vf

log = logging.getLogger(__name__)

# How long DEL answers "try again" (code 11) while the VF's PCI function is there
# but its netdev is in no namespace we can see: the kernel moves it home only
# once the pod's namespace is fully torn down, which can lag the netns file's
# removal. After that, DEL forgets the attachment and leaves VF and representor be.
VF_RETURN_GRACE_SECONDS = 120.0


class PortRemoval:
    """This attachment's port removal, sent on a connection kept open: ovs-vswitchd applies
    it while DEL does the rest, and DEL waits for that only before it restores the
    representor. vswitchd writes back the netdev flags it cached when it lets a device
    go, which set a representor that was set down while attached down again (found by
    the chaos soak, tests/soak): whoever changes the representor must come after that.
    """

    def __init__(self, state: AttachmentState) -> None:
        self.representor = state.representor
        self.ovsdb = OvsdbClient(state.ovsdb_socket)
        try:
            self.config = self._send(state)  # None: no port of ours was there
        except BaseException:
            self.ovsdb.close()
            raise
        if self.config is not None:
            log.info("removed OVS port %s", state.representor)

    def _send(self, state: AttachmentState) -> int | None:
        """By its uuid, else (ADD stopped or lost the reply before recording it, or someone
        re-made the port by hand) the port of that name whose Port or Interface marker
        names this attachment."""
        config = None
        if state.port_uuid is not None:
            config = send_detach(self.ovsdb, state.port_uuid, count_config=True)
        if config is None:  # no uuid recorded, or no port has it now: find the port by its marker
            port = find_port(self.ovsdb, state.representor)
            if port is not None and port.belongs_to(state.container_id, state.ifname):
                config = send_detach(self.ovsdb, port.uuid, count_config=True)
        return config

    def wait_let_go(self) -> None:
        """Return once vswitchd has applied the removal (mostly it has: the VF's return took longer)."""
        if self.config is None:
            return
        try:
            await_vswitchd(self.ovsdb, self.config, VSWITCHD_SYNC_TIMEOUT_MS, f"the removal of port {self.representor}")
        except (OvsdbError, OvsdbUnavailable) as exc:  # the port is gone; only the wait for vswitchd failed
            log.warning("waiting for ovs-vswitchd to let %s go: %s", self.representor, exc)
        self.config = None

    def close(self) -> None:
        self.ovsdb.close()


def detach_attachment_port(state: AttachmentState) -> None:
    """Remove this attachment's OVS port and wait for vswitchd to let the representor go
    (ADD's undo restores it next). Raises OvsdbUnavailable or OvsdbError."""
    removal = PortRemoval(state)
    try:
        removal.wait_let_go()
    finally:
        removal.close()


def _detach_or_record_stale(inv: Invocation, state: AttachmentState) -> PortRemoval | None:
    try:
        return PortRemoval(state)
    except OvsdbUnavailable as exc:
        inv.store.record_stale_port(stale_port_of(state))
        log.warning(
            "OVSDB unreachable (%s): OVS port %s stays on %s, recorded as stale for the next ADD of it or GC",
            exc,
            state.representor,
            state.bridge,
        )
        return None
    except OvsdbError as exc:
        raise ovs_failure(f"removing port {state.representor}", exc) from None


def _ipam_environ(inv: Invocation, state: AttachmentState | None) -> dict[str, str]:
    environ = dict(inv.environ)
    if state is not None:  # GC tears down attachments other than the one in CNI_* (if any)
        environ.update(CNI_CONTAINERID=state.container_id, CNI_IFNAME=state.ifname, CNI_NETNS=state.netns)
    return environ


def _vf_nowhere(inv: Invocation, state: AttachmentState, exc: VfNowhere) -> None:
    """Try again later while the VF may still come home; past the grace, let it go."""
    now = time.time()
    if state.vf_missing_since is None:
        state.vf_missing_since = now
        inv.store.save(state)
    waited = now - state.vf_missing_since
    if waited < VF_RETURN_GRACE_SECONDS:
        raise CNIError(
            TRY_AGAIN_LATER,
            f"{exc}: the pod's namespace may still be tearing down; try again",
            f"waited {waited:.0f} of {VF_RETURN_GRACE_SECONDS:.0f} s",
        )
    log.error(
        "%s after %.0f s: forgetting the attachment, VF and representor %s left as they are",
        exc,
        waited,
        state.representor,
    )


def teardown(inv: Invocation, state: AttachmentState) -> None:
    """Undo everything ADD may have done for this state, in reverse order of ADD."""
    sysfs = Sysfs(inv.conf.sysfs_root)
    netns_path = inv.env.netns or state.netns
    release = None
    host_fd = open_host_netns()
    try:
        with Netlink() as host, contextlib.ExitStack() as held:
            vf_lost = False
            try:
                if not state.userspace_driver:  # a userspace VF never left the host
                    locate_vf(host, sysfs, state, netns_path)
            except VfNowhere as exc:
                _vf_nowhere(inv, state, exc)
                vf_lost = True
            removal = _detach_or_record_stale(inv, state)  # vswitchd applies it while the VF comes home
            if removal is not None:
                held.callback(removal.close)
            ipam_type = _stored_ipam_type(state) if state.ipam_stdin else None
            if ipam_type:
                release = IpamCall(ipam_type, "DEL", state.ipam_stdin.encode(), inv.env.path, _ipam_environ(inv, state))
            restore_settings(host, inv.store, state)  # only while the VF is still claimed by this attachment
            restore_rate(inv.store, state)  # likewise
            if state.userspace_driver or not vf_lost and return_vf(host, host_fd, sysfs, state, netns_path):
                if removal is not None:
                    removal.wait_let_go()
                restore_representor(host, state)
            else:
                log.warning("VF %s is not home: representor %s left untouched", state.device_id, state.representor)
            return_rdma_devices(state.rdma_devices, state.device_id, netns_path, host_fd)  # ADD moved them first
        restore_device_info(state)
    finally:
        os.close(host_fd)
        if release is not None:
            release.wait()  # never leave it running
    if release is not None:
        release.result()  # a failed release fails DEL: the state stays, and the retry redoes it all


def forget_attachment(inv: Invocation, state: AttachmentState) -> None:
    """Undo an attachment and drop every record of it; the caller holds its locks.

    The state goes before the claim: while a state file exists, so does its
    claim, and no other pod can be given the VF.
    """
    teardown(inv, state)
    inv.store.remove(state.key)
    inv.store.release_device(state.device_id, state.key)


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
            # died after IPAM but before it could write anything, and drop a
            # claim ADD wrote before it died (it guards no state).
            for device_id, holder in store.claims().items():
                if holder == key:
                    with store.lock_device(device_id):
                        store.release_device(device_id, key)
            if inv.conf.ipam and inv.env.path:
                try:
                    invoke_ipam(inv.conf.ipam["type"], "DEL", inv.conf.raw, inv.env.path, _ipam_environ(inv, None))
                except CNIError as exc:
                    log.warning("IPAM DEL without state: %s", exc)
            return
        with store.lock_device(state.device_id):
            forget_attachment(inv, state)
    log.info("deleted attachment %s (VF %s)", key.describe(), state.device_id)
