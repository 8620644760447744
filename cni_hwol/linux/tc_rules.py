"""tc rules on a representor that are not Open vSwitch's: traffic they touch leaves the hardware path.

OVS's tc offload puts an ingress (or clsact) qdisc on each port and flower
filters in it (ingress policing: a matchall filter with a police action). The
`bandwidth` plugin chained after cni-hwol adds a tbf root qdisc (the pod's
ingress) and an ingress u32 filter redirecting (mirred) to an ifb device (the
pod's egress): none of that is offloaded. A qdisc the kernel made itself has
handle 0 (noqueue, mq and its children); any other is someone's shaping. Read
through RTNL with pyroute2's tc codecs over our own netlink socket.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator

from cni_hwol.linux.links import Netlink
from cni_hwol.linux.nlsock import NLM_F_DUMP
from cni_hwol.linux.pyroute2_lazy import load_pyroute2

RTM_GETQDISC, RTM_GETTFILTER = 38, 46
TC_H_ROOT = 0xFFFFFFFF
TC_H_INGRESS = 0xFFFFFFF1  # the parent of an ingress or clsact qdisc
TC_H_MIN_INGRESS, TC_H_MIN_EGRESS = 0xFFFFFFF2, 0xFFFFFFF3  # their filter blocks
OVS_QDISCS = ("ingress", "clsact")
OVS_FILTERS = ("flower",)


def _handle(value: int) -> str:
    """As tc prints a handle: root, 1:, ffff:fff1."""
    if value == TC_H_ROOT:
        return "root"
    major, minor = value >> 16, value & 0xFFFF
    return f"{major:x}:{minor:x}" if minor else f"{major:x}:"


def _walk(nla) -> Iterator[tuple[str, object]]:
    """Every (attribute name, value) in a decoded netlink attribute tree."""
    for name, value in nla.get("attrs", []) if hasattr(nla, "get") else []:
        yield name, value
        yield from _walk(value)


def _actions(msg) -> tuple[list[str], list[int]]:
    """The filter's action kinds and the ifindexes its mirred actions send to (decoded for u32, matchall...)."""
    kinds, targets = [], []
    for name, value in _walk(msg.get_attr("TCA_OPTIONS") or {}):
        if name == "TCA_ACT_KIND":
            kinds.append(value)
        elif name == "TCA_MIRRED_PARMS":
            targets.append(value["ifindex"])
    return kinds, targets


def tc_codec() -> type:
    """pyroute2's tc message class (and its qdisc, filter and action codecs), imported on first use."""
    load_pyroute2()
    from pyroute2.netlink.rtnl.tcmsg import tcmsg

    return tcmsg


def _tc_dump(links: Netlink, kind: int, index: int, parent: int = 0) -> list:
    """A qdisc or filter dump of link `index` on the links' RTNL socket."""
    msg = tc_codec()()
    msg["family"] = socket.AF_UNSPEC
    msg["index"] = index
    msg["parent"] = parent
    return [reply for reply in links.sock.request(msg, kind, NLM_F_DUMP) if reply["index"] == index]


def foreign_tc_rules(links: Netlink, name: str) -> list[str]:
    """The qdiscs and filters on netdev `name` that are not OVS's, described for a person;
    NetlinkError when the kernel cannot tell, LookupError when there is no such netdev."""
    link = links.get(name)
    if link is None:
        raise LookupError(name)

    def name_of(index: int) -> str | None:  # asked per redirect target: a whole link dump costs ms
        target = links.by_index(index)
        return target.name if target else None

    rules, blocks = [], []
    for qdisc in _tc_dump(links, RTM_GETQDISC, link.index):
        kind, handle, parent = qdisc.get_attr("TCA_KIND"), qdisc["handle"], qdisc["parent"]
        if kind in OVS_QDISCS and parent == TC_H_INGRESS:
            blocks += [TC_H_MIN_INGRESS] + ([TC_H_MIN_EGRESS] if kind == "clsact" else [])
        elif handle:
            rules.append(f"qdisc {kind} {_handle(handle)} parent {_handle(parent)}")
            blocks.append(handle)
    for block in blocks:
        where = {TC_H_MIN_INGRESS: "ingress", TC_H_MIN_EGRESS: "egress"}.get(block, _handle(block))
        rules += foreign_filters(_tc_dump(links, RTM_GETTFILTER, link.index, block), where, name_of)
    return rules


def foreign_filters(dump: Iterable, where: str, name_of: Callable[[int], str | None]) -> list[str]:
    """The filters of one block's dump that are not OVS's, described for a person.

    The kernel dumps each classifier (kind, pref) as several messages: a head
    without options, then its rules (u32 adds its hash table), so a filter is
    judged on the actions of all its messages together: OVS's are flower, and
    matchall whose only action is police (OVS's ingress policing)."""
    found: dict[tuple[str, int], tuple[list[str], list[str]]] = {}  # (kind, pref) -> action kinds, redirect targets
    for rule in dump:
        kinds, targets = found.setdefault((rule.get_attr("TCA_KIND"), rule["info"] >> 16), ([], []))
        actions, ifindexes = _actions(rule)
        kinds += actions
        for target in (name_of(index) or f"ifindex {index}" for index in ifindexes):
            if target not in targets:
                targets.append(target)
    foreign = []
    for (kind, pref), (actions, targets) in found.items():
        if kind in OVS_FILTERS or (kind == "matchall" and set(actions) == {"police"}):
            continue
        redirects = "".join(f" redirecting to {target} (mirred)" for target in targets)
        foreign.append(f"filter {kind} pref {pref} on {where}{redirects}")
    return foreign
