"""A VF's administrative settings, read and set through its PF (as `ip link set <pf> vf N ...`).

The PF netdev's RTM_GETLINK reply lists its VFs (IFLA_VFINFO_LIST, asked for
with RTEXT_FILTER_VF); RTM_SETLINK with one IFLA_VF_INFO changes them. The
administrative MAC set here survives a rebind of the VF's driver. A PF whose
reply lists no VFs (a veth, some drivers) has no VF operations: read_vf answers None.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass

from cni_hwol.cni.errors import NETLINK_ERROR, CNIError
from cni_hwol.linux.links import RTEXT_FILTER_SKIP_STATS, RTM_GETLINK, RTM_SETLINK, Netlink
from cni_hwol.linux.nlsock import NetlinkError

RTEXT_FILTER_VF = 1 << 0
LINK_STATES = ("auto", "enable", "disable")  # IFLA_VF_LINK_STATE_AUTO, _ENABLE, _DISABLE
UNREPORTED = 0xFFFFFFFF  # the kernel's -1: the driver does not report this setting
EBUSY_RETRIES = 10  # some drivers answer EBUSY right after the VF moved namespaces
EBUSY_PAUSE_SECONDS = 0.05


@dataclass(frozen=True)
class VfSettings:
    """What the PF reports for one VF; None where the driver reports nothing."""

    mac: str
    spoofchk: bool | None = None
    trust: bool | None = None
    link_state: str | None = None

    def to_state(self) -> dict:
        return {"mac": self.mac, "spoofchk": self.spoofchk, "trust": self.trust, "link_state": self.link_state}

    @classmethod
    def from_state(cls, body: dict) -> VfSettings:
        return cls(body["mac"], body.get("spoofchk"), body.get("trust"), body.get("link_state"))


def _flag(value: int) -> bool | None:
    return None if value == UNREPORTED else bool(value)


def read_vf(host: Netlink, pf: str, vf_index: int) -> VfSettings | None:
    """The VF's settings as its PF reports them; None when the PF reports no VFs."""
    attrs = [("IFLA_IFNAME", pf), ("IFLA_EXT_MASK", RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS)]
    try:
        replies = host.sock.request(host._link_msg(0, attrs), RTM_GETLINK, 0)
    except NetlinkError as exc:
        raise CNIError(NETLINK_ERROR, f"cannot read PF {pf}", exc.strerror) from None
    vflist = replies[0].get_attr("IFLA_VFINFO_LIST") if replies else None
    for info in vflist.get_attrs("IFLA_VF_INFO") if vflist else []:
        mac = info.get_attr("IFLA_VF_MAC")
        if mac is None or mac["vf"] != vf_index:
            continue
        spoofchk, trust, link = (info.get_attr(f"IFLA_VF_{a}") for a in ("SPOOFCHK", "TRUST", "LINK_STATE"))
        return VfSettings(
            mac=mac["mac"],
            spoofchk=_flag(spoofchk["spoofchk"]) if spoofchk else None,
            trust=_flag(trust["trust"]) if trust else None,
            link_state=LINK_STATES[link["link_state"]] if link and link["link_state"] < 3 else None,
        )
    return None


def _vf_attrs(vf_index: int, changes: dict) -> list:
    attrs = []
    if "mac" in changes:
        attrs.append(("IFLA_VF_MAC", {"vf": vf_index, "mac": changes["mac"]}))
    if "spoofchk" in changes:
        attrs.append(("IFLA_VF_SPOOFCHK", {"vf": vf_index, "spoofchk": int(changes["spoofchk"])}))
    if "trust" in changes:
        attrs.append(("IFLA_VF_TRUST", {"vf": vf_index, "trust": int(changes["trust"])}))
    if "link_state" in changes:
        attrs.append(("IFLA_VF_LINK_STATE", {"vf": vf_index, "link_state": LINK_STATES.index(changes["link_state"])}))
    return attrs


def set_vf(host: Netlink, pf: str, pf_index: int, vf_index: int, changes: dict) -> None:
    """Apply {"mac"|"spoofchk"|"trust"|"link_state": value} to the VF in one request."""
    if not changes:
        return
    vfinfo = {"attrs": [("IFLA_VF_INFO", {"attrs": _vf_attrs(vf_index, changes)})]}
    for attempt in range(EBUSY_RETRIES + 1):
        try:
            host.sock.request(host._link_msg(pf_index, [("IFLA_VFINFO_LIST", vfinfo)]), RTM_SETLINK, 0)
            return
        except NetlinkError as exc:
            if exc.code != errno.EBUSY or attempt == EBUSY_RETRIES:
                what = ", ".join(f"{k} {v}" for k, v in changes.items())
                msg = f"cannot set {what} on VF {vf_index} through PF {pf}"
                raise CNIError(NETLINK_ERROR, msg, exc.strerror) from None
            time.sleep(EBUSY_PAUSE_SECONDS)
