"""Inside the VM: doctor's tc-rule warning on a netdevsim representor that OVS's kernel datapath
(hw-offload on) took for its tc flow API. OVS's ingress qdisc, a flower filter and a matchall police
(OVS's ingress policing) draw no warning; a tbf root qdisc and a u32 mirred redirect, what the
`bandwidth` plugin puts there, are named exactly."""

from __future__ import annotations

import os
import time

import pytest

if os.environ.get("CNI_HWOL_KERNEL_GUEST") != "1":
    pytest.skip("runs inside the VM booted by tests/kernel/run.sh", allow_module_level=True)

from tests.kernel.knode import sh  # noqa: E402
from tests.kernel.test_guest import tool  # noqa: E402


def tc_checks(knode) -> dict[str, dict]:
    _, report = tool(knode, "doctor", "--pf", "eni2np1", "--cni-path", f"{knode.bin_dir}:/usr/lib/cni")
    return {c["name"]: c for c in report["checks"] if "tc rules" in c["name"]}


def test_doctor_warns_only_of_tc_rules_that_are_not_ovs(knode, pod):
    device = knode.vfs[(2, 1)]
    rep = "eni2npf0vf1"
    assert knode.cnitool("add", pod, device).returncode == 0
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "ingress" not in sh("tc", "qdisc", "show", "dev", rep):
            time.sleep(0.1)
        assert "qdisc ingress ffff:" in sh("tc", "qdisc", "show", "dev", rep)  # OVS's, for its flow API
        sh("tc", "filter", "add", "dev", rep, "ingress", "pref", "3", "protocol", "ip", "flower", "skip_hw")
        police = ("action", "police", "rate", "1mbit", "burst", "10k")
        sh("tc", "filter", "add", "dev", rep, "ingress", "pref", "4", "matchall", "skip_hw", *police)
        assert tc_checks(knode) == {
            "tc rules on representors": {
                "name": "tc rules on representors",
                "ok": True,
                "detail": "1 attached, only OVS's rules",
                "fix": "",
                "warning": False,
            }
        }
        sh("ip", "link", "add", "tcsink0", "type", "dummy")
        tbf = ("tbf", "rate", "1mbit", "burst", "10kb", "latency", "50ms")
        sh("tc", "qdisc", "add", "dev", rep, "root", "handle", "1:", *tbf)
        redirect = ("action", "mirred", "egress", "redirect", "dev", "tcsink0")
        sh("tc", "filter", "add", "dev", rep, "ingress", "pref", "9", "u32", "match", "u32", "0", "0", *redirect)
        warning = tc_checks(knode)[f"{rep}: tc rules not OVS's"]
        assert warning["ok"] and warning["warning"]
        assert warning["detail"].split(" (attachment ")[0] == (
            "qdisc tbf 1: parent root; filter u32 pref 9 on ingress redirecting to tcsink0 (mirred)"
        )
    finally:
        sh("tc", "qdisc", "del", "dev", rep, "root", check=False)
        sh("tc", "filter", "del", "dev", rep, "ingress", "pref", "9", check=False)
        sh("tc", "filter", "del", "dev", rep, "ingress", "pref", "4", check=False)
        sh("tc", "filter", "del", "dev", rep, "ingress", "pref", "3", check=False)
        sh("ip", "link", "del", "tcsink0", check=False)
        knode.cnitool("del", pod, device)
