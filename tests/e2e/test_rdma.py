"""RDMA on the simulated node, whose kernel has no RDMA netlink (no ib_core): a VF that
sysfs describes with an RDMA device is refused (the pod could silently lack it), the
node is left as it was, and doctor says why; VFs without one are not affected."""

from __future__ import annotations

import json

import pytest

from cni_hwol.cni import errors
from tests.e2e.test_failures import failed_add
from tests.e2e.test_tools import checks, doctor
from tests.unit.test_rdma import rdma_netlink_here

pytestmark = pytest.mark.skipif(rdma_netlink_here(), reason="this kernel has RDMA netlink (ib_core loaded)")


def test_rdma_device_without_rdma_netlink_refused_and_reported(node):
    rdma_vf, plain_vf = node.vf(0, 1), node.vf(0, 2)
    node.sysfs.add_rdma_device(rdma_vf.pci, "mlx5_7", rdma_vf.vf_name)
    _, report = doctor(node)
    found = checks(report)
    mode = found["RDMA netns mode"]
    assert not mode["ok"] and mode["detail"] == (
        "no RDMA netlink (ib_core not loaded): this node has no RDMA devices;"
        f" yet sysfs lists RDMA devices of {rdma_vf.pci}: ADD of these VFs fails"
    )
    assert found[f"{rdma_vf.pci}: RDMA devices"]["detail"] == "mlx5_7 in the host namespace"
    assert f"{plain_vf.pci}: RDMA devices" not in found

    pod = node.create_pod("r")
    body = failed_add(node, pod, node.netconf(), rdma_vf.pci, errors.DEVICE_ERROR)
    assert body["msg"] == (
        f"VF {rdma_vf.pci} has RDMA device(s) mlx5_7 in sysfs, but the RDMA netns mode cannot be read:"
        " no RDMA netlink in this kernel (is ib_core loaded?)"
    )
    before = node.snapshot()
    node.cnitool_run("add", pod, plain_vf.pci)  # a VF without RDMA devices needs no RDMA netlink
    assert plain_vf.vf_name not in [link["ifname"] for link in json.loads(node.sh("ip -j link show"))]  # in the pod
    node.cnitool_run("del", pod, plain_vf.pci)
    assert node.snapshot() == before


def test_doctor_without_rdma_devices_passes_the_rdma_check(node):
    mode = checks(doctor(node)[1])["RDMA netns mode"]
    assert mode["ok"] and mode["detail"] == "no RDMA netlink (ib_core not loaded): this node has no RDMA devices"
