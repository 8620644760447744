"""The devlink port table and eswitch mode, through pyroute2's generic netlink.

Kernels without devlink (or without the family loaded) answer None, so the
caller can fall back to sysfs and say so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cni_hwol.linux.pyroute2_lazy import load_pyroute2

log = logging.getLogger(__name__)

# include/uapi/linux/devlink.h
FLAVOUR_PHYSICAL = 0
FLAVOUR_PCI_PF = 4
FLAVOUR_PCI_VF = 5
ESWITCH_MODES = {0: "legacy", 1: "switchdev"}
_CMD_ESWITCH_GET = 29


@dataclass(frozen=True)
class DevlinkPort:
    handle: str  # "bus/dev", e.g. "pci/0000:03:00.0" or "netdevsim/netdevsim1"
    index: int
    flavour: int | None
    pf_number: int | None
    vf_number: int | None
    netdev: str | None


class Devlink:
    """One devlink socket for one invocation; absent=True where the kernel has none."""

    def __init__(self) -> None:
        load_pyroute2()
        from pyroute2.devlink import DL
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            self._dl = DL()
        except (NetlinkError, OSError) as exc:
            log.info("devlink is not available (%s); representors are found through sysfs", exc)
            self._dl = None

    @property
    def absent(self) -> bool:
        return self._dl is None

    def close(self) -> None:
        if self._dl is not None:
            self._dl.close()
            self._dl = None

    def __enter__(self) -> Devlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ports(self) -> list[DevlinkPort]:
        """Every devlink port of the host (empty where devlink is absent)."""
        if self._dl is None:
            return []
        return [
            DevlinkPort(
                handle=f"{msg.get_attr('DEVLINK_ATTR_BUS_NAME')}/{msg.get_attr('DEVLINK_ATTR_DEV_NAME')}",
                index=msg.get_attr("DEVLINK_ATTR_PORT_INDEX"),
                flavour=msg.get_attr("DEVLINK_ATTR_PORT_FLAVOUR"),
                pf_number=msg.get_attr("DEVLINK_ATTR_PORT_PCI_PF_NUMBER"),
                vf_number=msg.get_attr("DEVLINK_ATTR_PORT_PCI_VF_NUMBER"),
                netdev=msg.get_attr("DEVLINK_ATTR_PORT_NETDEV_NAME"),
            )
            for msg in self._dl.get_port_dump()
        ]

    def eswitch_mode(self, handle: str) -> str | None:
        """ "legacy" or "switchdev" for a devlink instance; None where devlink cannot say."""
        if self._dl is None:
            return None
        from pyroute2.netlink import NLM_F_REQUEST
        from pyroute2.netlink.devlink import devlinkcmd
        from pyroute2.netlink.exceptions import NetlinkError

        bus, _, dev = handle.partition("/")
        msg = devlinkcmd()
        msg["cmd"] = _CMD_ESWITCH_GET
        msg["version"] = 1
        msg["attrs"] = [["DEVLINK_ATTR_BUS_NAME", bus], ["DEVLINK_ATTR_DEV_NAME", dev]]
        try:
            for reply in self._dl.nlm_request(msg, msg_type=self._dl.prid, msg_flags=NLM_F_REQUEST):
                mode = reply.get_attr("DEVLINK_ATTR_ESWITCH_MODE")
                if mode is not None:
                    return ESWITCH_MODES.get(mode, f"mode {mode}")
        except NetlinkError as exc:
            log.info("devlink eswitch get %s failed: %s", handle, exc)
        return None
