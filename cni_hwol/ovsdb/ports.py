"""The plugin's bridge-port transactions: attach, detach, find, verify.

Each is one OVSDB transaction. The owner marker on Port and Interface rows
lets DEL, GC and operators tell our ports from anyone else's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, from_ovs_map, from_ovs_set, ovs_map
from cni_hwol.ovsdb.port_options import OfportHolders, OfportTaken, PortOptions, ofport_holders

log = logging.getLogger(__name__)

OWNER_KEY = "cni-hwol.owner"
OWNER_VALUE = "cni-hwol"
NETWORK_KEY = "cni-hwol.network"
CONTAINER_ID_KEY = "cni-hwol.container-id"
IFNAME_KEY = "cni-hwol.ifname"
_COLUMNS = ["_uuid", "name", "external_ids"]


class BridgeMissing(Exception):
    pass


class PortNameTaken(Exception):
    pass


@dataclass(frozen=True)
class PortRow:
    uuid: str
    name: str
    external_ids: dict[str, str]

    @property
    def ours(self) -> bool:
        return self.external_ids.get(OWNER_KEY) == OWNER_VALUE

    @property
    def attachment(self) -> tuple[str | None, str | None]:
        """(container id, ifname) the port was made for."""
        return self.external_ids.get(CONTAINER_ID_KEY), self.external_ids.get(IFNAME_KEY)

    def belongs_to(self, container_id: str, ifname: str) -> bool:
        return self.ours and self.attachment == (container_id, ifname)


def _port_row(row: dict) -> PortRow:
    return PortRow(row["_uuid"][1], row["name"], from_ovs_map(row["external_ids"]))


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
    ops = [
        {
            "op": "mutate",
            "table": "Bridge",
            "where": [["ports", "includes", ["uuid", port_uuid]]],
            "mutations": [["ports", "delete", ["uuid", port_uuid]]],
        },
        {"op": "comment", "comment": f"cni-hwol: detach port {port_uuid}"},
    ]
    if sync_timeout_ms:
        ops += [
            {"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["next_cfg", "+=", 1]]},
            {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]},
        ]
    results = client.transact(*ops)
    removed = results[0].get("count", 0) > 0
    if removed and sync_timeout_ms:
        target = results[3]["rows"][0]["next_cfg"]
        wait = {
            "op": "wait",
            "table": "Open_vSwitch",
            "where": [],
            "timeout": sync_timeout_ms,
            "columns": ["cur_cfg"],
            "until": "==",
            "rows": [{"cur_cfg": target}],
        }
        try:
            client.transact(wait)
        except OvsdbError as exc:
            log.warning("ovs-vswitchd did not apply the port removal within %d ms: %s", sync_timeout_ms, exc)
    return removed


def find_port(client: OvsdbClient, name: str) -> PortRow | None:
    rows = client.transact({"op": "select", "table": "Port", "where": [["name", "==", name]], "columns": _COLUMNS})[0][
        "rows"
    ]
    if not rows:
        return None
    row = rows[0]
    return _port_row(row)


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
    """Every port cni-hwol made for this network, on any bridge."""
    marker = ovs_map({OWNER_KEY: OWNER_VALUE, NETWORK_KEY: network})
    select = {"op": "select", "table": "Port", "where": [["external_ids", "includes", marker]], "columns": _COLUMNS}
    return [_port_row(row) for row in client.transact(select)[0]["rows"]]
