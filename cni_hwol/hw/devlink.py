"""The devlink port table and eswitch mode, through pyroute2's generic netlink.

Kernels without devlink (or without the family loaded) answer None, so the
caller can fall back to sysfs and say so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from cni_hwol.linux.pyroute2_lazy import load_pyroute2

log = logging.getLogger(__name__)

# include/uapi/linux/devlink.h (enum devlink_port_flavour: physical 0, cpu 1, dsa 2, pci_pf 3, pci_vf 4)
FLAVOUR_PCI_VF = 4
ESWITCH_MODES = {0: "legacy", 1: "switchdev"}
_CMD_ESWITCH_GET = 29
_CMD_ESWITCH_SET = 30


@dataclass(frozen=True)
class DevlinkPort:
    handle: str  # "bus/dev", e.g. "pci/0000:03:00.0" or "netdevsim/netdevsim1"
    index: int
    flavour: int | None
    pf_number: int | None
    vf_number: int | None
    netdev: str | None


NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
DEVLINK_CMD_PORT_GET = 5
DEVLINK_CMD_RATE_GET = 74
DEVLINK_CMD_RATE_SET = 75
DEVLINK_GENL_VERSION = 1
ENOENT = 2


def _devlink_message_class():
    load_pyroute2()
    from pyroute2.netlink import genlmsg

    class devlink_msg(genlmsg):
        # Only the attributes we read, numbered as in include/uapi/linux/devlink.h.
        nla_map = (
            (1, "DEVLINK_ATTR_BUS_NAME", "asciiz"),
            (2, "DEVLINK_ATTR_DEV_NAME", "asciiz"),
            (3, "DEVLINK_ATTR_PORT_INDEX", "uint32"),
            (7, "DEVLINK_ATTR_PORT_NETDEV_NAME", "asciiz"),
            (25, "DEVLINK_ATTR_ESWITCH_MODE", "uint16"),
            (77, "DEVLINK_ATTR_PORT_FLAVOUR", "uint16"),
            (127, "DEVLINK_ATTR_PORT_PCI_PF_NUMBER", "uint16"),
            (128, "DEVLINK_ATTR_PORT_PCI_VF_NUMBER", "uint16"),
            (165, "DEVLINK_ATTR_RATE_TYPE", "uint16"),
            (166, "DEVLINK_ATTR_RATE_TX_SHARE", "uint64"),  # bytes per second
            (167, "DEVLINK_ATTR_RATE_TX_MAX", "uint64"),
        )

    return devlink_msg


def _port_attrs(handle: str, port_index: int) -> list:
    bus, _, dev = handle.partition("/")
    return [("DEVLINK_ATTR_BUS_NAME", bus), ("DEVLINK_ATTR_DEV_NAME", dev), ("DEVLINK_ATTR_PORT_INDEX", port_index)]


class Devlink:
    """One devlink socket for one invocation; absent=True where the kernel has none."""

    def __init__(self) -> None:
        load_pyroute2()
        from pyroute2.netlink import ctrlmsg

        from cni_hwol.linux.nlsock import NetlinkError, NetlinkSocket

        self._sock: NetlinkSocket | None = NetlinkSocket(NETLINK_GENERIC)
        self._family = 0
        self._msg = _devlink_message_class()
        query = ctrlmsg()
        query["cmd"] = CTRL_CMD_GETFAMILY
        query["version"] = 1
        query["attrs"] = [("CTRL_ATTR_FAMILY_NAME", "devlink")]
        try:
            replies = self._sock.request(query, GENL_ID_CTRL, 0)
            self._family = replies[0].get_attr("CTRL_ATTR_FAMILY_ID")
        except (NetlinkError, IndexError) as exc:
            log.info("devlink is not available (%s); representors are found through sysfs", exc)
            self.close()

    @property
    def absent(self) -> bool:
        return self._sock is None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Devlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, cmd: int, attrs: list, flags: int) -> list:
        msg = self._msg()
        msg["cmd"] = cmd
        msg["version"] = DEVLINK_GENL_VERSION
        msg["attrs"] = attrs
        return self._sock.request(msg, self._family, flags)

    def ports(self) -> list[DevlinkPort]:
        """Every devlink port of the host (empty where devlink is absent)."""
        if self._sock is None:
            return []
        from cni_hwol.linux.nlsock import NLM_F_DUMP

        return [
            DevlinkPort(
                handle=f"{msg.get_attr('DEVLINK_ATTR_BUS_NAME')}/{msg.get_attr('DEVLINK_ATTR_DEV_NAME')}",
                index=msg.get_attr("DEVLINK_ATTR_PORT_INDEX"),
                flavour=msg.get_attr("DEVLINK_ATTR_PORT_FLAVOUR"),
                pf_number=msg.get_attr("DEVLINK_ATTR_PORT_PCI_PF_NUMBER"),
                vf_number=msg.get_attr("DEVLINK_ATTR_PORT_PCI_VF_NUMBER"),
                netdev=msg.get_attr("DEVLINK_ATTR_PORT_NETDEV_NAME"),
            )
            for msg in self._request(DEVLINK_CMD_PORT_GET, [], NLM_F_DUMP)
        ]

    def eswitch_mode(self, handle: str) -> str | None:
        """ "legacy" or "switchdev" for a devlink instance; None where devlink cannot say."""
        if self._sock is None:
            return None
        from cni_hwol.linux.nlsock import NetlinkError

        bus, _, dev = handle.partition("/")
        attrs = [("DEVLINK_ATTR_BUS_NAME", bus), ("DEVLINK_ATTR_DEV_NAME", dev)]
        try:
            for reply in self._request(_CMD_ESWITCH_GET, attrs, 0):
                mode = reply.get_attr("DEVLINK_ATTR_ESWITCH_MODE")
                if mode is not None:
                    return ESWITCH_MODES.get(mode, f"mode {mode}")
        except NetlinkError as exc:
            log.info("devlink eswitch get %s failed: %s", handle, exc)
        return None

    def set_eswitch_mode(self, handle: str, mode: str) -> None:
        """Switch a devlink instance to "legacy" or "switchdev" (raises NetlinkError)."""
        code = {name: value for value, name in ESWITCH_MODES.items()}[mode]
        bus, _, dev = handle.partition("/")
        attrs = [("DEVLINK_ATTR_BUS_NAME", bus), ("DEVLINK_ATTR_DEV_NAME", dev), ("DEVLINK_ATTR_ESWITCH_MODE", code)]
        self._request(_CMD_ESWITCH_SET, attrs, 0)

    def port_rate(self, handle: str, port_index: int) -> dict[str, int]:
        """The rate object of a port (its leaf): {"tx_share", "tx_max"} in bytes per second."""
        attrs = _port_attrs(handle, port_index)
        (reply,) = self._request(DEVLINK_CMD_RATE_GET, attrs, 0)
        return {
            "tx_share": reply.get_attr("DEVLINK_ATTR_RATE_TX_SHARE") or 0,
            "tx_max": reply.get_attr("DEVLINK_ATTR_RATE_TX_MAX") or 0,
        }

    def set_port_rate(self, handle: str, port_index: int, rate: dict[str, int]) -> None:
        """Set tx_share and/or tx_max (bytes per second; 0: no limit) of a port's rate (raises NetlinkError)."""
        attrs = _port_attrs(handle, port_index)
        attrs += [(f"DEVLINK_ATTR_RATE_{key.upper()}", value) for key, value in rate.items()]
        self._request(DEVLINK_CMD_RATE_SET, attrs, 0)


# Where devlink is read from. Callers open it with open_devlink(); a test hands them another
# source with Devlink's methods (absent, ports, eswitch_mode, set_eswitch_mode, close) through
# use_devlink_source, since this kernel may have no devlink, or a host's real one.
_source: Callable[[], Devlink] = Devlink


def open_devlink() -> Devlink:
    return _source()


def use_devlink_source(source: Callable[[], Devlink]) -> None:
    global _source
    _source = source
