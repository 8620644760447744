"""Where a CNI 1.1 conformance trial found cni-hwol off the spec: each case as a runtime or an
operator would meet it, with the whole end state compared."""

from __future__ import annotations

import json

import pytest

from cni_hwol.cni import errors


def pod_links(node, pod) -> list[str]:
    return sorted(entry["ifname"] for entry in json.loads(node.pod_sh(pod, "ip -j link show")))


@pytest.mark.parametrize("ifname", ["default", "all"])
def test_add_under_a_name_the_kernel_refuses_once_moved_brings_the_vf_home(node, ifname):
    """The kernel moves the VF into the pod, then refuses these names (its per-device sysctl
    directories): ADD fails and the VF is home, not stranded in the pod under its host name."""
    before = node.snapshot()
    pod, vf = node.create_pod("p"), node.vf(0, 1)
    conf = {**node.netconf(cni_version="1.1.0"), "deviceID": vf.pci}
    status, body, stderr = node.exec_plugin("ADD", conf, pod, ifname=ifname)
    assert (status, body["code"]) == (1, errors.NETLINK_ERROR), (body, stderr)
    assert ifname in body["msg"]
    assert pod_links(node, pod) == ["lo"]
    assert node.snapshot() == before
