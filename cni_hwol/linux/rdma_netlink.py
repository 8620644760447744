"""RDMA netlink (NETLINK_RDMA, the "nldev" client): the few requests the plugin needs.

pyroute2 has no RDMA netlink module, but its generic message class encodes and
decodes any attribute list: an nldev message is a netlink header followed by
attributes, with no family header. Numbers from <rdma/rdma_netlink.h>; the
requests are the ones `rdma` (iproute2) sends for the same commands.
"""

from __future__ import annotations

import errno
import functools
from types import TracebackType

from cni_hwol.linux.nlsock import NLM_F_DUMP, NetlinkError, NetlinkSocket
from cni_hwol.linux.pyroute2_lazy import load_pyroute2

NETLINK_RDMA = 20
RDMA_NL_NLDEV = 5  # the RDMA device interface client
RDMA_NLDEV_CMD_GET = 1  # one device by index, or a dump of all
RDMA_NLDEV_CMD_SET = 2  # rename, or move into another netns
RDMA_NLDEV_CMD_SYS_GET = 6  # the RDMA subsystem's settings (netns mode)

RDMA_NLDEV_ATTR_DEV_INDEX = 1  # u32
RDMA_NLDEV_ATTR_DEV_NAME = 2  # string
RDMA_NLDEV_SYS_ATTR_NETNS_MODE = 66  # u8: 1 shared, 0 exclusive
RDMA_NLDEV_NET_NS_FD = 68  # u32

SHARED = "shared"  # every netns sees every RDMA device (the kernel's default)
EXCLUSIVE = "exclusive"  # an RDMA device belongs to one netns


def nldev_type(command: int) -> int:
    """RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, command): the client in the high bits, the command low."""
    return (RDMA_NL_NLDEV << 10) + command


class RdmaUnavailable(Exception):
    """This kernel has no RDMA netlink (ib_core is not loaded): no RDMA device can exist."""


@functools.cache
def _message_class():
    load_pyroute2()
    from pyroute2.netlink import nlmsg

    class nldev_msg(nlmsg):
        fields = ()  # attributes right after the netlink header
        nla_map = (
            (RDMA_NLDEV_ATTR_DEV_INDEX, "RDMA_NLDEV_ATTR_DEV_INDEX", "uint32"),
            (RDMA_NLDEV_ATTR_DEV_NAME, "RDMA_NLDEV_ATTR_DEV_NAME", "asciiz"),
            (RDMA_NLDEV_SYS_ATTR_NETNS_MODE, "RDMA_NLDEV_SYS_ATTR_NETNS_MODE", "uint8"),
            (RDMA_NLDEV_NET_NS_FD, "RDMA_NLDEV_NET_NS_FD", "uint32"),
        )

    return nldev_msg


def message(**attrs: int | str):
    """An nldev message with `attrs` (short names: dev_index=3) in the order given."""
    msg = _message_class()()
    names = {"dev_index": "RDMA_NLDEV_ATTR_DEV_INDEX", "net_ns_fd": "RDMA_NLDEV_NET_NS_FD"}
    msg["attrs"] = [(names[key], value) for key, value in attrs.items()]
    return msg


def set_netns_message(dev_index: int, netns_fd: int):
    """RDMA_NLDEV_CMD_SET moving device `dev_index` into the netns of `netns_fd` (header filled on send)."""
    return message(dev_index=dev_index, net_ns_fd=netns_fd)


class RdmaNetlink:
    """An RDMA netlink socket in this netns, or in the netns of `netns_fd`."""

    def __init__(self, netns_fd: int | None = None) -> None:
        try:
            self.sock = NetlinkSocket(NETLINK_RDMA, netns_fd)
        except OSError as exc:
            if exc.errno == errno.EPROTONOSUPPORT:
                raise RdmaUnavailable("no RDMA netlink in this kernel (is ib_core loaded?)") from None
            raise

    def __enter__(self) -> RdmaNetlink:
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.sock.close()

    def netns_mode(self) -> str:
        """`rdma system show netns`: shared or exclusive."""
        replies = self.sock.request(message(), nldev_type(RDMA_NLDEV_CMD_SYS_GET), 0)
        mode = replies[0].get_attr("RDMA_NLDEV_SYS_ATTR_NETNS_MODE") if replies else None
        if mode is None:
            raise NetlinkError(errno.EPROTO)
        return SHARED if mode else EXCLUSIVE

    def devices(self) -> dict[str, int]:
        """The RDMA devices this netns sees: name -> index."""
        replies = self.sock.request(message(), nldev_type(RDMA_NLDEV_CMD_GET), NLM_F_DUMP)
        return {r.get_attr("RDMA_NLDEV_ATTR_DEV_NAME"): r.get_attr("RDMA_NLDEV_ATTR_DEV_INDEX") for r in replies}

    def move(self, dev_index: int, netns_fd: int) -> None:
        """`rdma dev set <dev> netns <ns>`; the kernel answers EOPNOTSUPP for drivers that cannot move."""
        self.sock.request(set_netns_message(dev_index, netns_fd), nldev_type(RDMA_NLDEV_CMD_SET), 0)
