"""The operator tools' report: a warning is shown (WARN, with its fix) but fails nothing."""

from __future__ import annotations

import json

from cni_hwol.tools.report import Report


def test_a_warning_is_shown_with_its_fix_and_keeps_the_report_ok():
    report = Report("doctor")
    report.add("bridge br-int", True, "present", "ovs-vsctl add-br br-int")
    report.warn("eth0rep1: tc rules not OVS's", "qdisc tbf 1: parent root", "drop the bandwidth plugin")
    assert report.ok
    assert report.render(as_json=False).splitlines() == [
        "[ok] bridge br-int: present",
        "[WARN] eth0rep1: tc rules not OVS's: qdisc tbf 1: parent root",
        "       fix: drop the bandwidth plugin",
        "doctor: 2 passed, 0 failed, 1 warning(s)",
    ]
    body = json.loads(report.render(as_json=True))
    assert body["ok"] and [c["warning"] for c in body["checks"]] == [False, True]
    report.add("OVS reachable", False, "gone", "start it")
    assert not report.ok and report.render(as_json=False).endswith("doctor: 2 passed, 1 failed, 1 warning(s)")
