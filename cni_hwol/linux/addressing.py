"""Apply a CNI result's addresses and routes to the pod interface."""

from __future__ import annotations

import ipaddress

from cni_hwol.cni.result import Result
from cni_hwol.linux.links import Link, Netlink

_ROUTE_KEYS = ("priority", "table", "mtu", "advmss")  # CNI 1.1 route fields we apply


def _gateway_for(result: Result, dst: str) -> str | None:
    """CNI convention: a route without gw goes through its family's IPAM gateway."""
    family = ipaddress.ip_network(dst, strict=False).version
    for ip in result.ips:
        if ip.gateway and ip.family == family:
            return ip.gateway
    return None


def add_addresses(nl: Netlink, link: Link, result: Result) -> None:
    """Before the link comes up, so that the kernel announces them as it does."""
    for ip in result.ips:
        # IPAM owns these addresses, so duplicate detection would only delay
        # the pod; NODAD also lets the kernel announce IPv6 at link up.
        nl.add_address(link, ip.address, nodad=ip.family == 6)


def add_routes(nl: Netlink, link: Link, result: Result) -> None:
    """Once the link is up: the kernel refuses a route through a link that is down."""
    for route in result.routes:
        gateway = route.gw or _gateway_for(result, route.dst)
        extras = {k: v for k, v in route.extras.items() if k in _ROUTE_KEYS and isinstance(v, int)}
        nl.add_route(link, str(ipaddress.ip_network(route.dst, strict=False)), gateway, **extras)


def missing_from(nl: Netlink, link: Link, result: Result) -> list[str]:
    """What CHECK finds absent: the result's addresses not on the link."""
    present = {str(ipaddress.ip_interface(a)) for a in nl.addresses(link)}
    return [ip.address for ip in result.ips if str(ipaddress.ip_interface(ip.address)) not in present]


def routes_missing_from(nl: Netlink, result: Result) -> list[str]:
    """What CHECK finds absent: the result's routes not in the namespace (destination, and
    gateway where the result names one), whichever link or table a later plugin moved them to."""
    present = [(ipaddress.ip_network(dst, strict=False), gw and ipaddress.ip_address(gw)) for dst, gw in nl.routes()]
    missing = []
    for route in result.routes:
        dst = ipaddress.ip_network(route.dst, strict=False)
        gw = ipaddress.ip_address(route.gw) if route.gw else None
        if not any(dst == have_dst and gw in (None, have_gw) for have_dst, have_gw in present):
            missing.append(f"{route.dst} via {route.gw}" if route.gw else route.dst)
    return missing
