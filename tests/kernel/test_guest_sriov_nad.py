"""Inside the VM (tests/kernel/run.sh): a NetworkAttachmentDefinition as the sriov-network-operator
generates it, with every key at its neutral value, on a netdevsim PF that has VF operations."""

from __future__ import annotations

import os

import pytest

if os.environ.get("CNI_HWOL_KERNEL_GUEST") != "1":
    pytest.skip("runs inside the VM booted by tests/kernel/run.sh", allow_module_level=True)

from tests.kernel.knode import sh  # noqa: E402
from tests.kernel.test_guest import port_rate, vf_as_pf_reports  # noqa: E402

OPERATOR_NAD = {
    "vlan": 0,
    "vlanQoS": 0,
    "spoofchk": "on",
    "trust": "off",
    "link_state": "auto",
    "min_tx_rate": 0,
    "max_tx_rate": 0,
    "logLevel": "info",
    "ipam": {},
}


def pf_settings(report: dict) -> list[tuple[str, str]]:
    """`ip link set <pf> vf N` arguments that give the VF these reported settings back."""
    on_off = {True: "on", False: "off"}
    return [
        ("spoofchk", on_off[report["spoofchk"]]),
        ("trust", on_off[report["trust"]]),
        ("state", report["link_state"]),
    ]


def test_an_operator_nad_with_neutral_vf_keys_attaches_checks_and_detaches(knode, pod):
    device, port = knode.vfs[(1, 2)], "netdevsim/netdevsim1/129"  # netdevsim numbers VF ports from 128
    found = vf_as_pf_reports("eni1np1", 2)  # given back at the end: other tests share this VF
    for setting in (("spoofchk", "on"), ("trust", "off"), ("state", "auto")):
        sh("ip", "link", "set", "eni1np1", "vf", "2", *setting)  # the neutral values, whatever ran before
    try:
        before = vf_as_pf_reports("eni1np1", 2)
        assert pf_settings(before) == [("spoofchk", "on"), ("trust", "off"), ("state", "auto")]
        rate_before = port_rate(port)
        snapshot = knode.snapshot(pod)

        status, result, stderr = knode.exec_plugin("ADD", pod, device, **OPERATOR_NAD)
        assert status == 0, stderr
        mac = result["interfaces"][1]["mac"]
        assert "ips" not in result
        assert vf_as_pf_reports("eni1np1", 2) == {**before, "address": mac}  # only the MAC changed
        assert port_rate(port) == rate_before
        rep = result["interfaces"][0]["name"]
        assert [knode.ovs.column("Port", rep, column) for column in ("tag", "trunks", "vlan_mode")] == [[], [], []]
        status, _, stderr = knode.exec_plugin("CHECK", pod, device, prevResult=result, **OPERATOR_NAD)
        assert status == 0, stderr
        for _ in range(2):
            status, _, stderr = knode.exec_plugin("DEL", pod, device, **OPERATOR_NAD)
            assert status == 0, stderr
        assert vf_as_pf_reports("eni1np1", 2) == before
        assert port_rate(port) == rate_before
        assert knode.snapshot(pod) == snapshot
    finally:
        knode.exec_plugin("DEL", pod, device, **OPERATOR_NAD)
        for setting in pf_settings(found):
            sh("ip", "link", "set", "eni1np1", "vf", "2", *setting)
