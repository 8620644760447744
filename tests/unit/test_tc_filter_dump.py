"""Telling OVS's tc filters from others on what Linux 6.1 really dumps.

tests/unit/data/tc_filter_dump_linux6.1.hex is the RTM_GETTFILTER dump of an
ingress block, recorded in the kernel tier's guest after
  tc filter add dev dbg0 ingress pref 4 matchall skip_hw action police rate 1mbit burst 10k
  tc filter add dev dbg0 ingress pref 9 u32 match u32 0 0 action mirred egress redirect dev dbg1
(dbg1 had ifindex 2). The kernel sends each classifier's head (no options) before its rules:
judging messages one by one called OVS's own ingress policing foreign."""

import struct
from pathlib import Path

from cni_hwol.linux.tc_rules import foreign_filters, tc_codec

DUMP = Path(__file__).parent / "data" / "tc_filter_dump_linux6.1.hex"
NLMSG_DONE = 3


def recorded_dump() -> list:
    data, messages, offset = bytes.fromhex(DUMP.read_text().strip()), [], 0
    while offset < len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if kind != NLMSG_DONE:
            msg = tc_codec()(data[offset : offset + length])
            msg.decode()
            messages.append(msg)
        offset += (length + 3) & ~3
    return messages


def test_the_recording_holds_heads_and_rules_of_both_filters():
    dump = recorded_dump()
    assert [(m.get_attr("TCA_KIND"), m["info"] >> 16, m.get_attr("TCA_OPTIONS") is None) for m in dump] == [
        ("matchall", 4, True),
        ("matchall", 4, False),
        ("u32", 9, True),
        ("u32", 9, False),
        ("u32", 9, False),
    ]


def test_only_the_u32_redirect_is_foreign_and_police_matchall_is_ovs():
    assert foreign_filters(recorded_dump(), "ingress", {2: "dbg1"}.get) == [
        "filter u32 pref 9 on ingress redirecting to dbg1 (mirred)"
    ]


def encoded_matchall(pref: int, *actions: dict) -> object:
    """A matchall filter message with these actions, encoded and decoded as the kernel's would be."""
    from pyroute2.netlink.rtnl.tcmsg.common_act import get_tca_action

    msg = tc_codec()()
    msg["info"], msg["handle"] = pref << 16, 1
    options = {"attrs": [["TCA_MATCHALL_ACT", get_tca_action({"action": list(actions)})]]}
    msg["attrs"] = [["TCA_KIND", "matchall"], ["TCA_OPTIONS", options]]
    msg.encode()
    decoded = tc_codec()(msg.data)
    decoded.decode()
    return decoded


def test_a_matchall_that_polices_and_also_redirects_is_foreign():
    police = {"kind": "police", "rate": 125000, "burst": 10240, "limit": 0}
    mirred = {"kind": "mirred", "direction": "egress", "action": "redirect", "ifindex": 7}
    assert foreign_filters([encoded_matchall(5, police)], "ingress", {}.get) == []
    assert foreign_filters([encoded_matchall(5, police, mirred)], "ingress", {7: "ifb3"}.get) == [
        "filter matchall pref 5 on ingress redirecting to ifb3 (mirred)"
    ]
