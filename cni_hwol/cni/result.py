"""CNI results: one internal form, read from and rendered to every supported version.

0.3.x and 0.4.0 carry an IP "version" field; 1.0.0 drops it; 1.1.0 adds
interface mtu/pciID and route mtu/advmss/priority/table/scope.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from cni_hwol.cni.errors import DECODE_FAILURE, CNIError
from cni_hwol.cni.versions import require_supported, version_tuple

_ROUTE_EXTRAS_1_1 = ("mtu", "advmss", "priority", "table", "scope")


@dataclass
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""
    mtu: int | None = None
    pci_id: str = ""


@dataclass
class IPConfig:
    address: str  # CIDR, e.g. 192.168.1.5/24
    gateway: str | None = None
    interface: int | None = None

    @property
    def family(self) -> int:
        return ipaddress.ip_interface(self.address).version


@dataclass
class Route:
    dst: str
    gw: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # 1.1.0 fields


@dataclass
class Result:
    interfaces: list[Interface] = field(default_factory=list)
    ips: list[IPConfig] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    dns: dict[str, Any] = field(default_factory=dict)


def _fail(msg: str) -> CNIError:
    return CNIError(DECODE_FAILURE, f"cannot read CNI result: {msg}")


def parse_result(body: dict[str, Any]) -> Result:
    """Read a result of any supported version (e.g. from IPAM or prevResult)."""
    if not isinstance(body, dict):
        raise _fail("not a JSON object")
    try:
        interfaces = [
            Interface(
                name=i["name"],
                mac=i.get("mac", ""),
                sandbox=i.get("sandbox", ""),
                mtu=i.get("mtu"),
                pci_id=i.get("pciID", ""),
            )
            for i in body.get("interfaces") or []
        ]
        ips = []
        for ip in body.get("ips") or []:
            ipaddress.ip_interface(ip["address"])
            ips.append(IPConfig(ip["address"], ip.get("gateway"), ip.get("interface")))
        routes = []
        for route in body.get("routes") or []:
            ipaddress.ip_network(route["dst"], strict=False)
            extras = {k: route[k] for k in _ROUTE_EXTRAS_1_1 if k in route}
            routes.append(Route(route["dst"], route.get("gw"), extras))
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    dns = body.get("dns") or {}
    if not isinstance(dns, dict):
        raise _fail("'dns' is not an object")
    return Result(interfaces, ips, routes, dns)


def render_result(result: Result, cni_version: str) -> dict[str, Any]:
    """The result as the runtime expects it for cni_version."""
    require_supported(cni_version)
    v = version_tuple(cni_version)
    with_ip_version = v < (1, 0, 0)
    v1_1 = v >= (1, 1, 0)

    interfaces = []
    for iface in result.interfaces:
        item: dict[str, Any] = {"name": iface.name}
        if iface.mac:
            item["mac"] = iface.mac
        if v1_1 and iface.mtu:
            item["mtu"] = iface.mtu
        if iface.sandbox:
            item["sandbox"] = iface.sandbox
        if v1_1 and iface.pci_id:
            item["pciID"] = iface.pci_id
        interfaces.append(item)

    ips = []
    for ip in result.ips:
        item = {"address": ip.address}
        if with_ip_version:
            item = {"version": str(ip.family), **item}
        if ip.gateway:
            item["gateway"] = ip.gateway
        if ip.interface is not None:
            item["interface"] = ip.interface
        ips.append(item)

    routes = []
    for route in result.routes:
        item = {"dst": route.dst}
        if route.gw:
            item["gw"] = route.gw
        if v1_1:
            item.update(route.extras)
        routes.append(item)

    body: dict[str, Any] = {"cniVersion": cni_version}
    if interfaces:
        body["interfaces"] = interfaces
    if ips:
        body["ips"] = ips
    if routes:
        body["routes"] = routes
    body["dns"] = result.dns
    return body
