"""tc rules on a representor that are not OVS's (cni_hwol/linux/tc_rules.py): Debian's real
`bandwidth` plugin chained after cni-hwol (the node's "hwol" conflist) puts a tbf root qdisc and an
ingress u32 filter redirecting to an ifb on the representor; doctor warns of them by name (exit
status unchanged), CHECK logs a warning and still succeeds. A representor without them: no warning."""

from __future__ import annotations

import json

from tests.e2e.test_lifecycle import BANDWIDTH
from tests.e2e.test_tools import checks, doctor


def check_warnings(node, representor: str) -> list[str]:
    return [
        line for line in node.log_file.read_text().splitlines() if f"representor {representor} carries tc rules" in line
    ]


def test_doctor_and_check_warn_of_the_bandwidth_plugins_rules_on_a_representor(node):
    before = node.snapshot()
    plain_pod, shaped_pod = node.create_pod("plain"), node.create_pod("shaped")
    plain, shaped = node.vf(0, 1), node.vf(1, 1)
    node.write_conflist("plain", chained=False)  # bandwidth's CHECK without its capability panics (Debian's 1.1.1)
    node.cnitool_run("add", plain_pod, plain.pci, network="plain")
    status_before, report = doctor(node)
    found = checks(report)
    assert found["tc rules on representors"] == {
        "name": "tc rules on representors",
        "ok": True,
        "detail": "1 attached, only OVS's rules",
        "fix": "",
        "warning": False,
    }
    node.cnitool_run("check", plain_pod, plain.pci, network="plain")
    assert check_warnings(node, plain.rep_name) == []

    node.cnitool_run("add", shaped_pod, shaped.pci, cap_args=BANDWIDTH)
    status, report = doctor(node)
    found = checks(report)
    warning = found[f"{shaped.rep_name}: tc rules not OVS's"]
    assert warning["ok"] and warning["warning"]
    qdisc, redirect = warning["detail"].split(" (attachment ")[0].split("; ")
    assert qdisc == "qdisc tbf 1: parent root"  # the pod's ingress rate
    assert redirect.startswith("filter u32 pref ") and " on ingress redirecting to bwp" in redirect  # its egress
    assert f"/{shaped_pod.container_id}/net1" in warning["detail"]
    assert "`bandwidth` capability" in warning["fix"] and f"tc qdisc del dev {shaped.rep_name} root" in warning["fix"]
    assert "tc rules on representors" not in found and f"{plain.rep_name}: tc rules not OVS's" not in found
    assert status == status_before  # a warning fails nothing

    node.cnitool_run("check", shaped_pod, shaped.pci, cap_args=BANDWIDTH)  # succeeds
    (logged,) = check_warnings(node, shaped.rep_name)
    assert "qdisc tbf 1: parent root" in logged and "redirecting to bwp" in logged and "WARNING" in logged
    assert check_warnings(node, plain.rep_name) == []

    node.cnitool_run("del", plain_pod, network="plain")
    node.cnitool_run("del", shaped_pod, cap_args=BANDWIDTH)
    assert json.loads(node.sh("ip -j link show type ifb")) == []  # bandwidth's DEL took its ifb
    assert node.snapshot() == before  # VFs home, representors, ports, leases and state as before
