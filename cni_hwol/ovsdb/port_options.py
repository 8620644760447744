"""The representor's port as ovs-cni users configure it: VLANs and a fixed OpenFlow port number.

VLANs live on the Port row (tag, trunks, vlan_mode); the OpenFlow port number
on the Interface row (ofport_request, and the ofport ovs-vswitchd assigns).
OVS never refuses a taken ofport_request, it silently gives the port another
number, so the attach transaction carries waits that fail it when another
Interface already has that number, and the number is read back afterwards.
OpenFlow numbers are per bridge: holders on other bridges, once seen, are
named in the waits as expected rows, so they do not count as a conflict.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any

from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, from_ovs_set

# ovs-vswitchd assigns the ofport when it next reconfigures; give it this long.
OFPORT_WAIT_MS = 5000


class OfportTaken(Exception):
    def __init__(self, ofport: int, holders: list[str]) -> None:
        taken = f"is taken by OVS interface {', '.join(holders)}" if holders else "was taken while ADD ran"
        super().__init__(f"'ofport_request' {ofport} {taken}")
        self.ofport = ofport
        self.holders = holders


class OfportMismatch(Exception):
    def __init__(self, name: str, wanted: int, got: int | None) -> None:
        super().__init__(f"OVS gave {name} ofport {got if got is not None else 'none'}, not the requested {wanted}")
        self.got = got  # None: not numbered (yet)


@dataclass(frozen=True)
class PortOptions:
    """What the Port and Interface rows must say; None/() where the user asked for nothing."""

    tag: int | None = None
    trunks: tuple[int, ...] = ()
    vlan_mode: str | None = None
    ofport_request: int | None = None

    @classmethod
    def requested(cls, vlan: int | None, trunk: tuple[int, ...], ofport_request: int | None) -> PortOptions:
        if trunk and vlan is not None:
            mode = "native-untagged"  # untagged frames belong to `vlan`, tagged ones to the trunk
        elif trunk:
            mode = "trunk"
        elif vlan is not None:
            mode = "access"
        else:
            mode = None
        return cls(tag=vlan, trunks=tuple(trunk), vlan_mode=mode, ofport_request=ofport_request)

    def to_state(self) -> dict[str, Any]:
        return {**asdict(self), "trunks": list(self.trunks)}

    @classmethod
    def from_state(cls, body: dict[str, Any]) -> PortOptions:
        return cls(
            tag=body.get("tag"),
            trunks=tuple(body.get("trunks") or ()),
            vlan_mode=body.get("vlan_mode"),
            ofport_request=body.get("ofport_request"),
        )

    def port_columns(self) -> dict[str, Any]:
        """Columns of the Port row to insert."""
        columns: dict[str, Any] = {}
        if self.tag is not None:
            columns["tag"] = self.tag
        if self.trunks:
            columns["trunks"] = ["set", list(self.trunks)]
        if self.vlan_mode:
            columns["vlan_mode"] = self.vlan_mode
        return columns

    def interface_columns(self) -> dict[str, Any]:
        """Columns of the Interface row to insert."""
        return {"ofport_request": self.ofport_request} if self.ofport_request is not None else {}

    def ofport_free(self, elsewhere: OfportHolders | None = None) -> list[dict[str, Any]]:
        """Waits that fail the transaction at once when an Interface other than
        those `elsewhere` (on other bridges) requested or holds the number."""
        if self.ofport_request is None:
            return []
        return [
            _only_interfaces_with(column, self.ofport_request, elsewhere.uuids[column] if elsewhere else ())
            for column in OFPORT_COLUMNS
        ]


OFPORT_COLUMNS = ("ofport_request", "ofport")


def _only_interfaces_with(column: str, value: int, uuids: tuple[str, ...]) -> dict[str, Any]:
    return {
        "op": "wait",
        "table": "Interface",
        "timeout": 0,
        "where": [[column, "==", value]],
        "columns": ["_uuid"],
        "until": "==",
        "rows": [{"_uuid": ["uuid", uuid]} for uuid in uuids],
    }


@dataclass(frozen=True)
class OfportHolders:
    """The Interfaces that requested or hold an OpenFlow port number, by where they are."""

    on_bridge: tuple[str, ...]  # names of those on the bridge in question: a conflict
    uuids: dict[str, tuple[str, ...]]  # column -> uuids of those elsewhere: no conflict


def ofport_holders(client: OvsdbClient, bridge: str, ofport: int) -> OfportHolders:
    """Who requested or holds `ofport`, and which of them sit on `bridge` (one read)."""
    *by_column, bridge_result, port_result = client.transact(
        *(
            {"op": "select", "table": "Interface", "where": [[column, "==", ofport]], "columns": ["_uuid", "name"]}
            for column in OFPORT_COLUMNS
        ),
        {"op": "select", "table": "Bridge", "where": [["name", "==", bridge]], "columns": ["ports"]},
        {"op": "select", "table": "Port", "where": [], "columns": ["_uuid", "interfaces"]},
    )
    bridge_ports = {uuid[1] for row in bridge_result["rows"] for uuid in from_ovs_set(row["ports"])}
    on_bridge = {
        uuid[1]
        for port in port_result["rows"]
        if port["_uuid"][1] in bridge_ports
        for uuid in from_ovs_set(port["interfaces"])
    }
    names, elsewhere = set(), {}
    for column, result in zip(OFPORT_COLUMNS, by_column, strict=True):
        rows = result["rows"]
        names |= {row["name"] for row in rows if row["_uuid"][1] in on_bridge}
        elsewhere[column] = tuple(row["_uuid"][1] for row in rows if row["_uuid"][1] not in on_bridge)
    return OfportHolders(tuple(sorted(names)), elsewhere)


def _single(value: Any) -> Any:
    """An optional OVSDB column: the value, or None for the empty set."""
    items = from_ovs_set(value)
    return items[0] if items else None


def read_port_options(client: OvsdbClient, name: str) -> tuple[PortOptions, int | None] | None:
    """The port's VLAN columns and its Interface's ofport_request, and the ofport it got."""
    port_rows, iface_rows = (
        result["rows"]
        for result in client.transact(
            {
                "op": "select",
                "table": "Port",
                "where": [["name", "==", name]],
                "columns": ["tag", "trunks", "vlan_mode"],
            },
            {
                "op": "select",
                "table": "Interface",
                "where": [["name", "==", name]],
                "columns": ["ofport_request", "ofport"],
            },
        )
    )
    if not port_rows or not iface_rows:
        return None
    port, iface = port_rows[0], iface_rows[0]
    options = PortOptions(
        tag=_single(port["tag"]),
        trunks=tuple(sorted(from_ovs_set(port["trunks"]))),
        vlan_mode=_single(port["vlan_mode"]),
        ofport_request=_single(iface["ofport_request"]),
    )
    return options, _single(iface["ofport"])


def verify_ofport(client: OvsdbClient, name: str, wanted: int, timeout_ms: int = OFPORT_WAIT_MS) -> None:
    """Wait until ovs-vswitchd has numbered the Interface, then insist on the requested number."""
    wait = {
        "op": "wait",
        "table": "Interface",
        "timeout": timeout_ms,
        "where": [["name", "==", name]],
        "columns": ["ofport"],
        "until": "!=",
        "rows": [{"ofport": ["set", []]}],
    }
    with contextlib.suppress(OvsdbError):  # never numbered: reported below as "none"
        client.transact(wait)
    found = read_port_options(client, name)
    got = found[1] if found else None
    if got != wanted:
        raise OfportMismatch(name, wanted, got)
