"""The plugin's bridge-port transactions: attach, detach, find, verify.

Each is one OVSDB transaction. The owner marker on Port and Interface rows
lets DEL, GC and operators tell our ports from anyone else's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, from_ovs_map, from_ovs_set, ovs_map
from cni_hwol.ovsdb.port_options import OfportHolders, OfportTaken, PortOptions, ofport_holders

log = logging.getLogger(__name__)

OWNER_KEY = "cni-hwol.owner"
OWNER_VALUE = "cni-hwol"
NETWORK_KEY = "cni-hwol.network"
CONTAINER_ID_KEY = "cni-hwol.container-id"
IFNAME_KEY = "cni-hwol.ifname"
# The stale marker, on Port rows: the attachment this port was made for is gone
# (its DEL ran while OVSDB was unreachable), so cni-hwol removes the port at the
# next ADD of its representor or at GC, and anyone may. While OVSDB is down it
# cannot be written: DEL then records the port in the state directory
# (state.StalePort, node-local and durable), and the first ADD or GC that reaches
# OVSDB turns that record into this marker, or removes the port outright when it
# may (see verbs/stale_ports.py). The marker is what OVSDB's other readers see
# (operators, doctor, a port-hygiene rule); the record is what survives the outage.
STALE_KEY = "cni-hwol.stale"
_COLUMNS = ["_uuid", "name", "external_ids", "interfaces"]
_INTERFACE_COLUMNS = ["_uuid", "external_ids", "error"]


class BridgeMissing(Exception):
    pass


class PortNameTaken(Exception):
    pass


@dataclass(frozen=True)
class PortRow:
    uuid: str
    name: str
    external_ids: dict[str, str]
    # The port's Interface row (where read): a port re-made by hand may carry
    # our marker on its Interface alone; OVS writes its failure to open the
    # netdev (a representor gone, as after a reboot) into `error`.
    interface_ids: dict[str, str] = field(default_factory=dict)
    interface_error: str = ""

    def _marked(self) -> list[dict[str, str]]:
        """The rows of this port that carry our owner marker: Port, Interface, both or none."""
        return [ids for ids in (self.external_ids, self.interface_ids) if ids.get(OWNER_KEY) == OWNER_VALUE]

    @property
    def ours(self) -> bool:
        return bool(self._marked())

    @property
    def attachment(self) -> tuple[str | None, str | None]:
        """(container id, ifname) the port was made for."""
        ids = (self._marked() or [{}])[0]
        return ids.get(CONTAINER_ID_KEY), ids.get(IFNAME_KEY)

    def belongs_to(self, container_id: str, ifname: str) -> bool:
        """The Port or the Interface row carries this attachment's marker."""
        return any((ids.get(CONTAINER_ID_KEY), ids.get(IFNAME_KEY)) == (container_id, ifname) for ids in self._marked())

    @property
    def stale(self) -> bool:
        """Ours, and marked stale: its attachment is gone (see STALE_KEY)."""
        return self.ours and STALE_KEY in self.external_ids


def attachment_port_where(name: str, container_id: str, ifname: str) -> list:
    """An OVSDB condition for the Port named `name` that cni-hwol made for this attachment."""
    marker = ovs_map({OWNER_KEY: OWNER_VALUE, CONTAINER_ID_KEY: container_id, IFNAME_KEY: ifname})
    return [["name", "==", name], ["external_ids", "includes", marker]]


def mark_stale(client: OvsdbClient, name: str, container_id: str, ifname: str, since: str) -> bool:
    """Put the stale marker on this attachment's port; False when there is no such port."""
    results = client.transact(
        {
            "op": "mutate",
            "table": "Port",
            "where": attachment_port_where(name, container_id, ifname),
            "mutations": [["external_ids", "insert", ovs_map({STALE_KEY: since})]],
        },
        {"op": "comment", "comment": f"cni-hwol: port {name} is stale"},
    )
    return results[0].get("count", 0) > 0


def _port_row(row: dict, interfaces: Sequence[dict] = ()) -> PortRow:
    """A Port row, with its Interface among `interfaces` (selected alongside) when there."""
    members = {uuid for _, uuid in from_ovs_set(row["interfaces"])} if "interfaces" in row else set()
    interface = next((i for i in interfaces if i["_uuid"][1] in members), None)
    if interface is None:
        return PortRow(row["_uuid"][1], row["name"], from_ovs_map(row["external_ids"]))
    error = from_ovs_set(interface["error"])  # an optional string: empty set or the text
    return PortRow(
        row["_uuid"][1], row["name"], from_ovs_map(row["external_ids"]), from_ovs_map(interface["external_ids"]), *error
    )


def _bridge_exists(bridge: str) -> dict:
    # A wait with timeout 0 fails the whole transaction at once when the
    # bridge is missing, instead of inserting rows nothing references.
    return {
        "op": "wait",
        "table": "Bridge",
        "timeout": 0,
        "where": [["name", "==", bridge]],
        "columns": ["name"],
        "until": "==",
        "rows": [{"name": bridge}],
    }


def attach_port(
    client: OvsdbClient,
    bridge: str,
    name: str,
    interface_ids: dict[str, str],
    port_ids: dict[str, str],
    options: PortOptions,
    ofport_elsewhere: OfportHolders | None = None,
) -> str:
    """Add a system port for netdev `name` to `bridge`; answers the Port uuid.

    ofport_elsewhere: the Interfaces on other bridges known to have the
    requested ofport (OpenFlow numbers are per bridge, so they may).
    """
    port_row: dict = {
        "name": name,
        "interfaces": ["named-uuid", "iface"],
        "external_ids": ovs_map({**port_ids, OWNER_KEY: OWNER_VALUE}),
        **options.port_columns(),
    }
    ofport_free = options.ofport_free(ofport_elsewhere)  # before the insert, which would match itself
    try:
        results = client.transact(
            _bridge_exists(bridge),
            *ofport_free,
            {
                "op": "insert",
                "table": "Interface",
                "uuid-name": "iface",
                "row": {
                    "name": name,
                    "type": "",
                    "external_ids": ovs_map({**interface_ids, OWNER_KEY: OWNER_VALUE}),
                    **options.interface_columns(),
                },
            },
            {"op": "insert", "table": "Port", "uuid-name": "port", "row": port_row},
            {
                "op": "mutate",
                "table": "Bridge",
                "where": [["name", "==", bridge]],
                "mutations": [["ports", "insert", ["set", [["named-uuid", "port"]]]]],
            },
            {"op": "comment", "comment": f"cni-hwol: attach {name} to {bridge}"},
        )
    except OvsdbError as exc:
        if exc.op_index == 0:
            raise BridgeMissing(bridge) from None
        if exc.op_index is not None and exc.op_index <= len(ofport_free) and options.ofport_request is not None:
            holders = ofport_holders(client, bridge, options.ofport_request)
            if holders.on_bridge == (name,):
                # Only an Interface named like ours has the number: a port left for this
                # representor (the name is taken too), which the caller may replace.
                raise PortNameTaken(name) from None
            if holders.on_bridge or ofport_elsewhere is not None:
                raise OfportTaken(options.ofport_request, list(holders.on_bridge)) from None
            # Only other bridges have the number: again, expecting exactly those.
            return attach_port(client, bridge, name, interface_ids, port_ids, options, holders)
        if exc.error == "constraint violation" and "index" in exc.details:
            raise PortNameTaken(name) from None
        raise
    return results[2 + len(ofport_free)]["uuid"][1]


def detach_port(client: OvsdbClient, port_uuid: str, sync_timeout_ms: int = 0) -> bool:
    """Remove the port from whichever bridge holds it; False when none did.

    Port and Interface rows are not root rows, so OVSDB deletes them as soon
    as no bridge refers to them. With sync_timeout_ms, also wait (as ovs-vsctl
    does) until ovs-vswitchd has applied the change: it restores the netdev
    flags it cached when it lets a device go, so whoever changes the device
    next must come after that.
    """
    target = send_detach(client, port_uuid, count_config=bool(sync_timeout_ms))
    if target and sync_timeout_ms:
        await_vswitchd(client, target, sync_timeout_ms, "the port removal")
    return target is not None


def send_detach(client: OvsdbClient, port_uuid: str, count_config: bool) -> int | None:
    """The removal alone: None when no bridge held the port, else the configuration
    number ovs-vswitchd applies it in (0 without count_config), for await_vswitchd
    once the caller has done what it can meanwhile."""
    ops = [
        {
            "op": "mutate",
            "table": "Bridge",
            "where": [["ports", "includes", ["uuid", port_uuid]]],
            "mutations": [["ports", "delete", ["uuid", port_uuid]]],
        },
        {"op": "comment", "comment": f"cni-hwol: detach port {port_uuid}"},
    ]
    if count_config:
        ops += [
            {"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["next_cfg", "+=", 1]]},
            {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]},
        ]
    results = client.transact(*ops)
    if results[0].get("count", 0) == 0:
        return None
    return results[3]["rows"][0]["next_cfg"] if count_config else 0


def await_vswitchd(client: OvsdbClient, target: int, timeout_ms: int, what: str) -> None:
    """wait_for_vswitchd, logging (not failing) when vswitchd is late: nothing to undo then."""
    if not wait_for_vswitchd(client, target, timeout_ms):
        log.warning("ovs-vswitchd did not apply %s within %d ms", what, timeout_ms)


def wait_for_vswitchd(client: OvsdbClient, target: int, timeout_ms: int) -> bool:
    """Wait until ovs-vswitchd has applied configuration `target` (cur_cfg >= target).

    vswitchd jumps straight to the newest next_cfg, so when someone else bumps
    it too, cur_cfg never equals our target. OVSDB's "wait" knows only == and
    !=, so this monitors by waiting: each round blocks in the server until
    cur_cfg differs from the value last seen, then compares with >= (what
    ovs-vsctl does with its IDL). False when the time runs out.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    seen = client.transact(_select_cur_cfg())[0]["rows"][0]["cur_cfg"]
    while seen < target:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            return False
        changed = {
            "op": "wait",
            "table": "Open_vSwitch",
            "where": [],
            "timeout": remaining_ms,
            "columns": ["cur_cfg"],
            "until": "!=",
            "rows": [{"cur_cfg": seen}],
        }
        try:
            seen = client.transact(changed, _select_cur_cfg())[1]["rows"][0]["cur_cfg"]
        except OvsdbError:  # RFC 7047: "timed out"
            return False
    return True


def _select_cur_cfg() -> dict:
    return {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["cur_cfg"]}


def find_port(client: OvsdbClient, name: str) -> PortRow | None:
    """The port named `name`, with its Interface of that name, in one read."""
    port_rows, interface_rows = (
        r["rows"]
        for r in client.transact(
            {"op": "select", "table": "Port", "where": [["name", "==", name]], "columns": _COLUMNS},
            {"op": "select", "table": "Interface", "where": [["name", "==", name]], "columns": _INTERFACE_COLUMNS},
        )
    )
    return _port_row(port_rows[0], interface_rows) if port_rows else None


def port_on_bridge(client: OvsdbClient, bridge: str, name: str) -> tuple[PortRow | None, bool]:
    """The port named `name` and whether `bridge` holds it, in one read."""
    bridge_rows, port_rows = (
        r["rows"]
        for r in client.transact(
            {"op": "select", "table": "Bridge", "where": [["name", "==", bridge]], "columns": ["ports"]},
            {
                "op": "select",
                "table": "Port",
                "where": [["name", "==", name]],
                "columns": _COLUMNS,
            },
        )
    )
    if not port_rows:
        return None, False
    row = port_rows[0]
    port = _port_row(row)
    held = bool(bridge_rows) and ["uuid", port.uuid] in from_ovs_set(bridge_rows[0]["ports"])
    return port, held


def owned_ports(client: OvsdbClient, network: str) -> list[PortRow]:
    """Every port cni-hwol made for this network, on any bridge, with its Interface's error."""
    where = [["external_ids", "includes", ovs_map({OWNER_KEY: OWNER_VALUE, NETWORK_KEY: network})]]
    port_rows, interface_rows = (
        r["rows"]
        for r in client.transact(
            {"op": "select", "table": "Port", "where": where, "columns": _COLUMNS},
            {"op": "select", "table": "Interface", "where": where, "columns": _INTERFACE_COLUMNS},
        )
    )
    return [_port_row(row, interface_rows) for row in port_rows]
