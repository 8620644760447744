"""Link, address and route operations in one network namespace, over one RTNL socket."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from cni_hwol.cni.errors import NETLINK_ERROR, CNIError
from cni_hwol.linux.nlsock import NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NetlinkError, NetlinkSocket
from cni_hwol.linux.pyroute2_lazy import load_pyroute2

IFF_UP = 0x1
ENODEV = 19
EEXIST = 17
NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTM_NEWLINKPROP, RTM_DELLINKPROP = 108, 109
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTN_UNICAST = 1
IFA_F_NODAD = 0x02
RTEXT_FILTER_SKIP_STATS = 1 << 3  # link replies without counters: smaller, faster to decode


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mac: str
    mtu: int
    up: bool
    parent_device: str | None  # PCI address for a VF; None for virtual links
    altnames: tuple[str, ...] = ()  # alternative names (udev's path names, ip link property)
    alias: str | None = None  # IFLA_IFALIAS
    lower_index: int | None = None  # IFLA_LINK in this namespace: the link a VLAN or macvlan sits on


def rtnl_codecs() -> tuple:
    """pyroute2's link, address and route message classes, imported on first use."""
    load_pyroute2()
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    return ifinfmsg, ifaddrmsg, rtmsg


class Netlink:
    """RTNL for one namespace: the host's when netns_fd is None."""

    def __init__(self, netns_fd: int | None = None) -> None:
        self._ifinfmsg, self._ifaddrmsg, self._rtmsg = rtnl_codecs()
        self.sock = NetlinkSocket(NETLINK_ROUTE, netns_fd)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- links -------------------------------------------------------------------
    def _link_msg(self, index: int = 0, attrs: list | None = None, flags: int = 0, change: int = 0):
        msg = self._ifinfmsg()
        msg["family"] = socket.AF_UNSPEC
        msg["index"] = index
        msg["flags"] = flags
        msg["change"] = change
        msg["attrs"] = attrs or []
        return msg

    @staticmethod
    def _to_link(msg) -> Link:
        props = msg.get_attr("IFLA_PROP_LIST")
        return Link(
            index=msg["index"],
            name=msg.get_attr("IFLA_IFNAME"),
            mac=msg.get_attr("IFLA_ADDRESS") or "",
            mtu=msg.get_attr("IFLA_MTU") or 0,
            up=bool(msg["flags"] & IFF_UP),
            parent_device=msg.get_attr("IFLA_PARENT_DEV_NAME"),
            altnames=tuple(props.get_attrs("IFLA_ALT_IFNAME")) if props else (),
            alias=msg.get_attr("IFLA_IFALIAS") or None,
            # A lower link in another namespace (a veth's peer) carries IFLA_LINK_NETNSID.
            lower_index=None if msg.get_attr("IFLA_LINK_NETNSID") is not None else msg.get_attr("IFLA_LINK"),
        )

    def links(self) -> list[Link]:
        """Every link of the namespace."""
        try:
            replies = self.sock.request(
                self._link_msg(0, [("IFLA_EXT_MASK", RTEXT_FILTER_SKIP_STATS)]), RTM_GETLINK, NLM_F_DUMP
            )
        except NetlinkError as exc:
            raise CNIError(NETLINK_ERROR, "listing links", str(exc)) from None
        return [self._to_link(msg) for msg in replies]

    def stacked_on(self, link: Link) -> list[Link]:
        """The links of this namespace stacked on `link` (802.1Q VLANs, macvlans, ipvlans)."""
        return [other for other in self.links() if other.lower_index == link.index and other.index != link.index]

    def delete(self, link: Link) -> None:
        try:
            self.sock.request(self._link_msg(link.index), RTM_DELLINK, 0)
        except NetlinkError as exc:
            if exc.code != ENODEV:
                raise CNIError(NETLINK_ERROR, f"deleting {link.name} failed", str(exc)) from None

    def get(self, name: str) -> Link | None:
        """The link with this name or altname (the kernel looks up both)."""
        return self._get_by("IFLA_IFNAME", name)

    def by_index(self, index: int) -> Link | None:
        """The link with this ifindex, None when there is none."""
        try:
            replies = self.sock.request(
                self._link_msg(index, [("IFLA_EXT_MASK", RTEXT_FILTER_SKIP_STATS)]), RTM_GETLINK, 0
            )
        except NetlinkError as exc:
            if exc.code == ENODEV:
                return None
            raise CNIError(NETLINK_ERROR, f"reading link {index}", str(exc)) from None
        return self._to_link(replies[0]) if replies else None

    def name_holder(self, name: str) -> Link | None:
        """The link that has this name or altname, which may be longer than an
        ifname (up to 127 bytes), so it is looked up as an altname."""
        return self._get_by("IFLA_ALT_IFNAME", name)

    def _get_by(self, attr: str, name: str) -> Link | None:
        attrs = [(attr, name), ("IFLA_EXT_MASK", RTEXT_FILTER_SKIP_STATS)]
        try:
            replies = self.sock.request(self._link_msg(0, attrs), RTM_GETLINK, 0)
        except NetlinkError as exc:
            if exc.code == ENODEV:
                return None
            raise CNIError(NETLINK_ERROR, f"reading link {name}", str(exc)) from None
        return self._to_link(replies[0]) if replies else None

    def _set(self, what: str, link: Link, attrs: list | None = None, flags: int = 0, change: int = 0) -> None:
        try:
            self.sock.request(self._link_msg(link.index, attrs, flags, change), RTM_SETLINK, 0)
        except NetlinkError as exc:
            raise CNIError(NETLINK_ERROR, f"{what} failed", str(exc)) from None

    def move(self, link: Link, netns_fd: int, new_name: str) -> None:
        """Move a link to another namespace and rename it there, in one request.

        The kernel renames during the move, so the name is never taken twice.
        A name the kernel refuses only once moved ("all", "default": its
        per-device sysctl directories) fails the request with the link moved.
        """
        attrs = [("IFLA_NET_NS_FD", netns_fd), ("IFLA_IFNAME", new_name)]
        self._set(f"moving {link.name} to the target namespace as {new_name}", link, attrs)

    def set_down(self, link: Link) -> None:
        self._set(f"setting {link.name} down", link, flags=0, change=IFF_UP)

    def set_up(self, link: Link) -> None:
        self._set(f"setting {link.name} up", link, flags=IFF_UP, change=IFF_UP)

    def rename(self, link: Link, name: str) -> None:
        self._set(f"renaming {link.name} to {name}", link, [("IFLA_IFNAME", name)])

    def set_mac(self, link: Link, mac: str) -> None:
        self._set(f"setting MAC {mac} on {link.name}", link, [("IFLA_ADDRESS", mac)])

    def set_mtu(self, link: Link, mtu: int) -> None:
        self._set(f"setting MTU {mtu} on {link.name}", link, [("IFLA_MTU", mtu)])

    def _altname_request(self, what: str, link: Link, altname: str, msg_type: int, flags: int) -> None:
        attrs = [("IFLA_PROP_LIST", {"attrs": [("IFLA_ALT_IFNAME", altname)]})]
        try:
            self.sock.request(self._link_msg(link.index, attrs), msg_type, flags)
        except NetlinkError as exc:
            raise CNIError(NETLINK_ERROR, f"{what} failed", str(exc)) from None

    def add_altname(self, link: Link, altname: str) -> None:
        """What `ip link property add dev LINK altname NAME` sends."""
        what = f"adding altname {altname} to {link.name}"
        self._altname_request(what, link, altname, RTM_NEWLINKPROP, NLM_F_CREATE | NLM_F_EXCL)

    def del_altname(self, link: Link, altname: str) -> None:
        self._altname_request(f"removing altname {altname} from {link.name}", link, altname, RTM_DELLINKPROP, 0)

    # -- addresses -----------------------------------------------------------------
    def addresses(self, link: Link) -> list[str]:
        """The link's addresses as CIDR strings."""
        msg = self._ifaddrmsg()
        msg["family"] = socket.AF_UNSPEC
        try:
            replies = self.sock.request(msg, RTM_GETADDR, NLM_F_DUMP)
        except NetlinkError as exc:
            raise CNIError(NETLINK_ERROR, f"listing addresses of {link.name}", str(exc)) from None
        return [f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}" for m in replies if m["index"] == link.index]

    def add_address(self, link: Link, cidr: str, nodad: bool = False) -> None:
        address, _, prefix = cidr.partition("/")
        msg = self._ifaddrmsg()
        msg["family"] = socket.AF_INET6 if ":" in address else socket.AF_INET
        msg["prefixlen"] = int(prefix)
        msg["index"] = link.index
        msg["attrs"] = [("IFA_LOCAL", address), ("IFA_ADDRESS", address)]
        if nodad:
            msg["attrs"].append(("IFA_FLAGS", IFA_F_NODAD))
        try:
            self.sock.request(msg, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)
        except NetlinkError as exc:
            if exc.code != EEXIST:  # a retried ADD already put it there
                raise CNIError(NETLINK_ERROR, f"adding {cidr} to {link.name}", str(exc)) from None

    # -- routes --------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str | None]]:
        """Every route of this namespace, in any table: (destination CIDR, gateway or None)."""
        msg = self._rtmsg()
        msg["family"] = socket.AF_UNSPEC
        try:
            replies = self.sock.request(msg, RTM_GETROUTE, NLM_F_DUMP)
        except NetlinkError as exc:
            raise CNIError(NETLINK_ERROR, "listing routes", str(exc)) from None
        routes = []
        for m in replies:
            dst = m.get_attr("RTA_DST") or ("::" if m["family"] == socket.AF_INET6 else "0.0.0.0")
            routes.append((f"{dst}/{m['dst_len']}", m.get_attr("RTA_GATEWAY")))
        return routes

    def add_route(self, link: Link, dst: str, gateway: str | None, **extras: int) -> None:
        network, _, prefix = dst.partition("/")
        msg = self._rtmsg()
        msg["family"] = socket.AF_INET6 if ":" in network else socket.AF_INET
        msg["dst_len"] = int(prefix)
        msg["table"] = RT_TABLE_MAIN
        msg["proto"] = RTPROT_BOOT
        msg["scope"] = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
        msg["type"] = RTN_UNICAST
        attrs: list = [("RTA_OIF", link.index)]
        if int(prefix):
            attrs.append(("RTA_DST", network))
        if gateway:
            attrs.append(("RTA_GATEWAY", gateway))
        if "priority" in extras:
            attrs.append(("RTA_PRIORITY", extras["priority"]))
        if "table" in extras:
            msg["table"] = extras["table"] if extras["table"] < 256 else 252  # RT_TABLE_COMPAT
            attrs.append(("RTA_TABLE", extras["table"]))
        metrics = [(f"RTAX_{k.upper()}", extras[k]) for k in ("mtu", "advmss") if extras.get(k)]
        if metrics:
            attrs.append(("RTA_METRICS", {"attrs": metrics}))
        msg["attrs"] = attrs
        try:
            self.sock.request(msg, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL)
        except NetlinkError as exc:
            if exc.code != EEXIST:
                raise CNIError(NETLINK_ERROR, f"adding route {dst} via {gateway or link.name}", str(exc)) from None


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
