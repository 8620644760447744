"""OVS ports left behind by a DEL that ran while OVSDB was unreachable.

DEL finishes everything that does not need OVSDB and records the port in the
state directory (state.StalePort), since OVSDB cannot be written then. The first
ADD or GC that reaches that OVSDB settles each record: the ADD of that
representor, or GC, removes the port; any other ADD puts the stale marker
(ovsdb.ports.STALE_KEY) on it, so OVSDB's readers see it, and GC removes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cni_hwol.ovsdb.client import OvsdbClient
from cni_hwol.ovsdb.ports import detach_port, find_port, mark_stale
from cni_hwol.state import AttachmentState, StalePort, StateStore
from cni_hwol.verbs.common import VSWITCHD_SYNC_TIMEOUT_MS

log = logging.getLogger(__name__)


def stale_port_of(state: AttachmentState) -> StalePort:
    """The record of this attachment's port (StalePort's fields are AttachmentState's)."""
    return StalePort(**{name: getattr(state, name) for name in StalePort.__dataclass_fields__})


def settle_stale_ports(
    ovsdb: OvsdbClient, store: StateStore, records: list[StalePort], may_remove: Callable[[StalePort], bool]
) -> None:
    """Remove (where may_remove says so) or mark stale each recorded port of this OVSDB; drop its record."""
    for record in records:
        if record.ovsdb_socket != ovsdb.target:
            continue  # another OVSDB's: settled by whoever reaches that one
        who = f"{record.network}/{record.container_id}/{record.ifname}"
        if may_remove(record):
            port = find_port(ovsdb, record.representor)
            if port is not None and port.belongs_to(record.container_id, record.ifname):
                detach_port(ovsdb, port.uuid, VSWITCHD_SYNC_TIMEOUT_MS)  # before anyone reuses it
                log.info("removed stale OVS port %s of %s", record.representor, who)
        elif mark_stale(ovsdb, record.representor, record.container_id, record.ifname, f"DEL of {who}"):
            log.info("marked OVS port %s of %s stale", record.representor, who)
        store.drop_stale_port(record)
