"""Which OVS bridge holds a netdev: as its own port, or among the interfaces of a bond port."""

from __future__ import annotations

from cni_hwol.ovsdb.client import OvsdbClient, from_ovs_set


def bridges_holding(client: OvsdbClient, netdevs: list[str]) -> dict[str, str]:
    """{netdev: bridge} for each of `netdevs` that is an Interface of some bridge's Port.

    One transaction: the Interfaces by name, and every Port's and Bridge's
    membership (a bond port's name is its own, so Ports are matched by the
    Interface uuids they hold, not by name).
    """
    results = client.transact(
        *(
            {"op": "select", "table": "Interface", "where": [["name", "==", name]], "columns": ["_uuid", "name"]}
            for name in netdevs
        ),
        {"op": "select", "table": "Port", "where": [], "columns": ["_uuid", "interfaces"]},
        {"op": "select", "table": "Bridge", "where": [], "columns": ["name", "ports"]},
    )
    *interface_results, port_result, bridge_result = results
    bridge_of_port = {
        uuid[1]: bridge["name"] for bridge in bridge_result["rows"] for uuid in from_ovs_set(bridge["ports"])
    }
    port_of_interface = {
        uuid[1]: port["_uuid"][1] for port in port_result["rows"] for uuid in from_ovs_set(port["interfaces"])
    }
    found = {}
    for result in interface_results:
        for row in result["rows"]:
            bridge = bridge_of_port.get(port_of_interface.get(row["_uuid"][1], ""))
            if bridge is not None:
                found[row["name"]] = bridge
    return found
