"""Link operations in one network namespace, over one RTNL socket."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from cni_hwol.cni.errors import NETLINK_ERROR, CNIError
from cni_hwol.linux.netns import socket_in
from cni_hwol.linux.pyroute2_lazy import load_pyroute2

IFF_UP = 0x1
ENODEV = 19
NETLINK_ROUTE = 0


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mac: str
    mtu: int
    up: bool
    parent_device: str | None  # PCI address for a VF; None for virtual links


class Netlink:
    """RTNL for one namespace: the host's when netns_fd is None."""

    def __init__(self, netns_fd: int | None = None) -> None:
        load_pyroute2()
        from pyroute2.iproute.linux import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        self.NetlinkError = NetlinkError
        sock = socket_in(netns_fd, socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
        # groups=0: we never listen to broadcasts, only to our own replies.
        self.ipr = IPRoute(fileno=sock.detach(), groups=0)

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except self.NetlinkError as exc:
            raise CNIError(NETLINK_ERROR, f"{what} failed", str(exc)) from None

    @staticmethod
    def _to_link(msg) -> Link:
        return Link(
            index=msg["index"],
            name=msg.get_attr("IFLA_IFNAME"),
            mac=msg.get_attr("IFLA_ADDRESS") or "",
            mtu=msg.get_attr("IFLA_MTU") or 0,
            up=bool(msg["flags"] & IFF_UP),
            parent_device=msg.get_attr("IFLA_PARENT_DEV_NAME"),
        )

    def get(self, name: str) -> Link | None:
        try:
            return self._to_link(self.ipr.link("get", ifname=name)[0])
        except self.NetlinkError as exc:
            if exc.code == ENODEV:
                return None
            raise CNIError(NETLINK_ERROR, f"reading link {name}", str(exc)) from None

    def get_index(self, index: int) -> Link | None:
        try:
            return self._to_link(self.ipr.link("get", index=index)[0])
        except self.NetlinkError as exc:
            if exc.code == ENODEV:
                return None
            raise CNIError(NETLINK_ERROR, f"reading link #{index}", str(exc)) from None

    def move(self, link: Link, netns_fd: int, new_name: str) -> None:
        """Move a link to another namespace and rename it there, in one request.

        The kernel renames during the move, so the name is never taken twice
        and no half-moved state exists.
        """
        self._call(
            f"moving {link.name} to the target namespace as {new_name}",
            self.ipr.link,
            "set",
            index=link.index,
            net_ns_fd=netns_fd,
            ifname=new_name,
        )

    def set_down(self, link: Link) -> None:
        self._call(f"setting {link.name} down", self.ipr.link, "set", index=link.index, state="down")

    def set_up(self, link: Link) -> None:
        self._call(f"setting {link.name} up", self.ipr.link, "set", index=link.index, state="up")

    def rename(self, link: Link, name: str) -> None:
        self._call(f"renaming {link.name} to {name}", self.ipr.link, "set", index=link.index, ifname=name)

    def set_mac(self, link: Link, mac: str) -> None:
        self._call(f"setting MAC {mac} on {link.name}", self.ipr.link, "set", index=link.index, address=mac)

    def set_mtu(self, link: Link, mtu: int) -> None:
        self._call(f"setting MTU {mtu} on {link.name}", self.ipr.link, "set", index=link.index, mtu=mtu)

    def addresses(self, link: Link) -> list[str]:
        """The link's addresses as CIDR strings."""
        msgs = self._call(f"listing addresses of {link.name}", self.ipr.addr, "dump", index=link.index)
        return [f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}" for m in msgs]

    def add_address(self, link: Link, cidr: str, nodad: bool = False) -> None:
        address, _, prefix = cidr.partition("/")
        extra = {"IFA_FLAGS": 0x2} if nodad else {}  # IFA_F_NODAD
        try:
            self.ipr.addr("add", index=link.index, address=address, prefixlen=int(prefix), **extra)
        except self.NetlinkError as exc:
            if exc.code != 17:  # EEXIST: a retried ADD already put it there
                raise CNIError(NETLINK_ERROR, f"adding {cidr} to {link.name}", str(exc)) from None

    def add_route(self, link: Link, dst: str, gateway: str | None, **extras: int) -> None:
        spec = {"dst": dst, "oif": link.index, **extras}
        if gateway:
            spec["gateway"] = gateway
        try:
            self.ipr.route("add", **spec)
        except self.NetlinkError as exc:
            if exc.code != 17:
                raise CNIError(NETLINK_ERROR, f"adding route {dst} via {gateway or link.name}", str(exc)) from None

    def routes(self, link: Link, family: int) -> list[tuple[str, str | None]]:
        """(dst CIDR, gateway) of the main-table routes through the link."""
        msgs = self._call(f"listing routes of {link.name}", self.ipr.route, "dump", family=family, oif=link.index)
        found = []
        for m in msgs:
            if m.get_attr("RTA_TABLE") != 254:
                continue
            dst = m.get_attr("RTA_DST")
            default = "0.0.0.0" if family == socket.AF_INET else "::"
            found.append((f"{dst or default}/{m['dst_len']}", m.get_attr("RTA_GATEWAY")))
        return found


def _ipv6_conf(name: str) -> str:
    return f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6"


def ipv6_disabled(name: str) -> str | None:
    """The link's disable_ipv6 sysctl in this namespace; None where IPv6 is off in the kernel."""
    try:
        with open(_ipv6_conf(name)) as f:
            return f.read().strip()
    except OSError:
        return None


def set_ipv6_disabled(name: str, value: str) -> None:
    with open(_ipv6_conf(name), "w") as f:
        f.write(value)
