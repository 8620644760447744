"""GC (CNI 1.1): remove every attachment of this network the runtime no longer lists.

Attachments are found in the state directory and, for ports whose state file
was lost, among OVS ports carrying our owner marker. Ports of ours whose
Interface shows an error (the representor is gone) and ports a DEL left while
OVSDB was down (verbs/stale_ports.py) are removed too, as are VF claims whose
ADD died before writing its state.
"""

from __future__ import annotations

import json
import logging

from cni_hwol.cni.errors import INVALID_NETCONF, TRY_AGAIN_LATER, CNIError
from cni_hwol.cni.netconf import VALID_ATTACHMENTS_KEYS
from cni_hwol.ipam import invoke as invoke_ipam
from cni_hwol.ipam import speaks
from cni_hwol.ovsdb.client import OvsdbError, OvsdbUnavailable
from cni_hwol.ovsdb.ports import detach_port, owned_ports
from cni_hwol.verbs.common import VSWITCHD_SYNC_TIMEOUT_MS, Invocation, connect_ovsdb, ovs_failure
from cni_hwol.verbs.delete import forget_attachment
from cni_hwol.verbs.stale_ports import settle_stale_ports

log = logging.getLogger(__name__)


def cmd_gc(inv: Invocation) -> None:
    if inv.conf.valid_attachments is None:  # never read as "none valid": GC would remove every pod's
        raise CNIError(
            INVALID_NETCONF, f"GC needs the attachments still valid: '{VALID_ATTACHMENTS_KEYS[0]}' is missing"
        )
    valid = {(a["containerID"], a["ifname"]) for a in inv.conf.valid_attachments}
    store = inv.store
    failures: list[str] = []
    remaining = set()  # attachments still on record after this pass, of any network
    for state in store.all_attachments():
        if state.network != inv.conf.name or (state.container_id, state.ifname) in valid:
            remaining.add((state.container_id, state.ifname))
            continue
        try:
            with store.lock_attachment(state.key), store.lock_device(state.device_id):
                forget_attachment(inv, state)
            log.info("GC removed %s", state.key.describe())
        except CNIError as exc:
            remaining.add((state.container_id, state.ifname))
            failures.append(f"{state.key.describe()}: {exc}")
    # Each step below runs whatever failed before it (OVSDB down, an attachment
    # that would not go): GC removes as much as it can and reports the rest.
    _release_stateless_claims(inv, valid | remaining)
    try:
        _collect_orphan_ports(inv, valid | remaining)
    except CNIError as exc:
        failures.append(f"orphan OVS ports: {exc}")
    try:
        _forward_to_ipam(inv)
    except CNIError as exc:
        if not failures:
            raise  # the IPAM plugin's own error, when nothing else went wrong
        failures.append(f"IPAM GC: {exc}")
    if failures:
        raise CNIError(TRY_AGAIN_LATER, "GC could not remove every stale attachment", "; ".join(failures))


def _forward_to_ipam(inv: Invocation) -> None:
    """The spec asks GC to reach the plugins we delegate to, with the same valid attachments."""
    ipam_type = (inv.conf.ipam or {}).get("type")
    if ipam_type and speaks(ipam_type, "1.1.0", inv.env.path, inv.environ):
        # The list under both names, as libcni sends it: the IPAM plugin may read either.
        conf = json.loads(inv.conf.raw)
        conf.update(dict.fromkeys(VALID_ATTACHMENTS_KEYS, list(inv.conf.valid_attachments or ())))
        invoke_ipam(ipam_type, "GC", json.dumps(conf).encode(), inv.env.path, inv.environ)
    elif ipam_type:
        # An older IPAM plugin has no GC; the leases of the attachments removed
        # above were already released one by one through IPAM DEL.
        log.info("IPAM plugin %s predates CNI 1.1: GC not delegated", ipam_type)


def _release_stateless_claims(inv: Invocation, keep: set) -> None:
    """Claims of this network whose ADD died between the claim and the state file."""
    store = inv.store
    for device_id, holder in store.claims().items():
        if holder.network == inv.conf.name and (holder.container_id, holder.ifname) not in keep:
            with store.lock_device(device_id):
                if store.load(holder) is None:
                    store.release_device(device_id, holder)


def _collect_orphan_ports(inv: Invocation, keep: set) -> None:
    """Ports we own for this network whose attachment is neither valid nor on record,
    and ports a DEL recorded as stale (any network's: their attachment is gone)."""
    with connect_ovsdb(inv.conf.ovsdb_socket) as ovsdb:
        try:
            for record in inv.store.stale_ports():
                with inv.store.lock_device(record.device_id):  # not while an ADD of its VF runs
                    settle_stale_ports(ovsdb, inv.store, [record], may_remove=lambda _: True)
            for port in owned_ports(ovsdb, inv.conf.name):
                # A port whose Interface shows an error (its representor gone, as
                # after a reboot) carries no traffic: swept even when listed.
                if port.stale or port.interface_error or port.attachment not in keep:
                    # Wait for vswitchd to let the device go: its next user comes after.
                    detach_port(ovsdb, port.uuid, VSWITCHD_SYNC_TIMEOUT_MS)
                    log.info("GC removed OVS port %s of %s %s", port.name, port.attachment, port.interface_error)
        except (OvsdbError, OvsdbUnavailable) as exc:
            raise ovs_failure("collecting orphan ports", exc) from None
