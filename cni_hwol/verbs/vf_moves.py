"""Moving a VF into a pod and back, and preparing its representor.

A VF is always identified by its PCI address: in the pod by the parent device
the kernel reports (whatever a NET_ADMIN pod renamed it to), and in the host
through sysfs, which lists the VF's current netdev name whatever it was renamed
to (the kernel brings a VF home from a destroyed namespace under its in-pod
name, or devN).
"""

from __future__ import annotations

import logging
import os
import random

from cni_hwol.cni.errors import DEVICE_ERROR, CNIError
from cni_hwol.hw.sysfs import Sysfs
from cni_hwol.linux.ethtool import disable_feature, enable_feature, feature_state
from cni_hwol.linux.links import Link, Netlink, ipv6_disabled, set_ipv6_disabled
from cni_hwol.linux.netns import NetnsGone, NotANetns, open_netns
from cni_hwol.state import AttachmentState

log = logging.getLogger(__name__)


class VfNowhere(Exception):
    """The VF's PCI function is there, its driver bound, but its netdev is in no
    namespace we can see: the pod's namespace is still being torn down, or the
    VF went somewhere we cannot follow."""


def pci_function_of(link: Link) -> str | None:
    """The PCI function a netdev belongs to: the parent device the kernel reports.

    Virtual links have none; the test rig labels each veth that stands in for a
    VF with that VF's PCI address as its alias (tests/simnode), read only for
    links without a parent. A real VF always reports its parent, so an alias
    never speaks for one.
    """
    return link.parent_device if link.parent_device is not None else link.alias


def is_vf(link: Link, device_id: str) -> bool:
    """A link found under the expected name is our VF when it belongs to that PCI
    function; an unlabelled virtual link (the kernel tier's dummies) is trusted by name."""
    return pci_function_of(link) in (None, device_id)


def find_vf(netlink: Netlink, name: str, device_id: str) -> Link | None:
    """The VF in this namespace: under the expected name, else whatever it was renamed to."""
    link = netlink.get(name)
    if link is not None and is_vf(link, device_id):
        return link
    return next((link for link in netlink.links() if pci_function_of(link) == device_id), None)


def usable_mac(mac: str) -> bool:
    return bool(mac) and mac != "00:00:00:00:00:00" and not int(mac[:2], 16) & 1


def random_mac() -> str:
    octets = [random.randrange(256) for _ in range(6)]
    octets[0] = (octets[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{o:02x}" for o in octets)


def host_vf_link(host: Netlink, names: list[str], device_id: str) -> Link | None:
    """The VF's netdev in the host namespace among the names sysfs lists for its
    PCI function; None when it is elsewhere."""
    for name in names:
        link = host.get(name)
        if link is not None and is_vf(link, device_id):
            return link
    return None


def move_vf(src: Netlink, link: Link, dst: Netlink, dst_fd: int, new_name: str) -> None:
    """Move the VF from src's namespace into dst's, renamed to new_name.

    The kernel refuses the move (EEXIST) while a link in the target namespace
    has one of the VF's altnames as its name or altname, and the rename while
    the VF has new_name as an altname of its own: drop those altnames for the
    move. Once the VF is home, give_back_altnames restores its own from the state.
    """
    for altname in link.altnames:
        if altname == new_name or dst.name_holder(altname) is not None:
            log.warning("VF %s: dropping its altname %s, taken in the target namespace", link.name, altname)
            src.del_altname(link, altname)
    src.move(link, dst_fd, new_name)


def give_back_altnames(host: Netlink, link: Link, altnames: list[str]) -> None:
    """The VF's altnames from before ADD, each where no other host link took it meanwhile."""
    for altname in altnames:
        if altname in link.altnames:
            continue
        holder = host.name_holder(altname)
        if holder is not None:
            log.warning("VF %s: altname %s stays with %s, which took it meanwhile", link.name, altname, holder.name)
            continue
        host.add_altname(link, altname)


def tc_offload_off(rep: Link) -> bool:
    """hw-tc-offload is off and can be turned on: ADD will, and DEL turns it off again."""
    return feature_state(rep.name, "hw-tc-offload") == "off"


def prepare_representor(host: Netlink, rep: Link, min_mtu: int) -> None:
    """MTU at least the VF's, no IPv6 of its own, hw-tc-offload on where possible, up."""
    if rep.mtu < min_mtu:
        host.set_mtu(rep, min_mtu)
    if ipv6_disabled(rep.name) == "0":
        set_ipv6_disabled(rep.name, "1")
    try:
        outcome = enable_feature(rep.name, "hw-tc-offload")
    except OSError as exc:
        outcome = f"unsupported ({exc.strerror})"
    if outcome.startswith("unsupported"):
        log.warning("representor %s: hw-tc-offload %s; flows stay in software", rep.name, outcome)
    if not rep.up:
        host.set_up(rep)


def restore_representor(host: Netlink, state: AttachmentState) -> None:
    rep = host.get(state.representor)
    if rep is None:
        log.warning("representor %s is gone; nothing to restore on it", state.representor)
        return
    if not state.representor_was_up and rep.up:
        host.set_down(rep)
    elif state.representor_was_up and not rep.up:  # set down while attached (by hand, a flapping driver)
        host.set_up(rep)
    if rep.mtu != state.representor_mtu:
        host.set_mtu(rep, state.representor_mtu)
    if state.representor_ipv6_disabled is not None and ipv6_disabled(rep.name) != state.representor_ipv6_disabled:
        set_ipv6_disabled(rep.name, state.representor_ipv6_disabled)
    if state.representor_tc_offload_was_off:
        disable_feature(rep.name, "hw-tc-offload")


def _restore_host_vf(host: Netlink, link: Link, state: AttachmentState) -> None:
    if link.name != state.vf_name:
        if link.up:
            host.set_down(link)
        if host.get(state.vf_name) is not None:
            raise CNIError(
                DEVICE_ERROR,
                f"cannot give VF {state.device_id} back its name {state.vf_name}: another link has it",
            )
        host.rename(link, state.vf_name)
        link = host.get(state.vf_name) or link
    if state.vf_mac and link.mac != state.vf_mac and usable_mac(state.vf_mac):
        host.set_mac(link, state.vf_mac)
    if state.vf_mtu and link.mtu != state.vf_mtu:
        host.set_mtu(link, state.vf_mtu)
    give_back_altnames(host, link, state.vf_altnames)


def _delete_stacked_links(pod: Netlink, vf: Link) -> None:
    """Delete what the pod stacked on its VF (802.1Q VLANs, macvlans) before the VF leaves.

    The kernel keeps such links when their lower device only changes namespace:
    left in the pod, they would still send through a VF given to the next pod.
    """
    for upper in pod.stacked_on(vf):
        log.info("deleting %s, stacked on VF %s in the pod, before the VF goes home", upper.name, vf.name)
        pod.delete(upper)


def _open_pod(netns_path: str) -> int | None:
    if not netns_path:
        return None
    try:
        return open_netns(netns_path)
    except (NetnsGone, NotANetns):
        return None  # the pod is gone: the kernel brings the VF home


def _vf_gone_for_good(sysfs: Sysfs, device_id: str) -> str:
    """Why the VF will never come back ("" when it may): its PCI function is gone
    (sriov_numvfs changed) or unbound from its driver (its netdev went with it)."""
    try:
        device = sysfs.pci_device(device_id)
    except CNIError as exc:
        return str(exc)
    if not (device / "driver").exists():
        return f"VF {device_id} is bound to no driver"
    return ""


def locate_vf(host: Netlink, sysfs: Sysfs, state: AttachmentState, netns_path: str) -> bool:
    """Where the VF is, changing nothing: True in the pod or the host, False when it
    is gone for good; raises VfNowhere while it may still come back."""
    netns_fd = _open_pod(netns_path)
    if netns_fd is not None:
        try:
            with Netlink(netns_fd) as pod:
                if find_vf(pod, state.ifname, state.device_id) is not None:
                    return True
        finally:
            os.close(netns_fd)
    return _host_vf(host, sysfs, state) is not None or _not_found(sysfs, state)


def _not_found(sysfs: Sysfs, state: AttachmentState) -> bool:
    """False when the VF is gone for good; raises VfNowhere while it may come back."""
    gone = _vf_gone_for_good(sysfs, state.device_id)
    if gone:
        log.warning("VF %s: %s", state.device_id, gone)
        return False
    raise VfNowhere(f"VF {state.device_id} is in neither the pod's namespace nor the host's")


def _host_vf(host: Netlink, sysfs: Sysfs, state: AttachmentState) -> Link | None:
    try:
        return host_vf_link(host, sysfs.netdevs_of(sysfs.pci_device(state.device_id)), state.device_id)
    except CNIError:  # the PCI function itself is gone
        return None


def return_vf(host: Netlink, host_fd: int, sysfs: Sysfs, state: AttachmentState, netns_path: str) -> bool:
    """Bring the VF back to the host under its original name, MAC and MTU.

    Answers False when the VF is gone for good; raises VfNowhere while it is in
    no namespace we can see but may come back.
    """
    netns_fd = _open_pod(netns_path)
    if netns_fd is not None:
        try:
            with Netlink(netns_fd) as pod:
                link = find_vf(pod, state.ifname, state.device_id)
                if link is not None:
                    _delete_stacked_links(pod, link)
                    move_vf(pod, link, host, host_fd, state.vf_name)
        finally:
            os.close(netns_fd)
    link = _host_vf(host, sysfs, state)
    if link is None:
        return _not_found(sysfs, state)
    _restore_host_vf(host, link, state)
    return True
