"""Inside the VM (tests/kernel/run.sh): a netdevsim VF described as bound to vfio-pci
(no dummy netdev plays it; the fake sysfs lists none and names the driver). ADD sets
the pod's MAC through netdevsim's PF as the VF's administrative MAC, wires the
devlink representor and applies nothing; CHECK reads the MAC back from the PF;
DEL gives the PF its old answer back. The node and fixtures: tests/kernel/conftest.py."""

from __future__ import annotations

import ipaddress
import json
import os

import pytest

if os.environ.get("CNI_HWOL_KERNEL_GUEST") != "1":
    pytest.skip("runs inside the VM booted by tests/kernel/run.sh", allow_module_level=True)

from tests.kernel.knode import sh  # noqa: E402

PF, VF, DUMMY, REP = "eni2np1", 3, "vf2x3", "eni2npf0vf3"
POD_MAC = "02:00:00:00:23:03"


def pf_reported_mac() -> str:
    """The VF's administrative MAC in the PF's IFLA_VFINFO_LIST, as iproute2 prints it."""
    (entry,) = [v for v in json.loads(sh("ip", "-j", "link", "show", PF))[0]["vfinfo_list"] if v["vf"] == VF]
    return entry["address"]


@pytest.fixture
def vfio_vf(knode):
    """netdevsim2's VF 3 bound to vfio-pci: its dummy netdev gone, sysfs listing none."""
    pci = knode.vfs[(2, VF)]
    sh("ip", "link", "del", DUMMY)
    knode.sysfs.bind_driver(pci, "vfio-pci")
    yield pci
    sh("ip", "link", "add", DUMMY, "type", "dummy")
    knode.sysfs.bind_driver(pci, "mlx5_core", DUMMY)


def test_a_vfio_vf_gets_its_mac_through_the_pf_and_its_representor_wired(knode, pod, vfio_vf):
    mac_before = pf_reported_mac()
    assert mac_before != POD_MAC
    snapshot = knode.snapshot(pod)
    keys = {"cniVersion": "1.1.0", "mac": POD_MAC}
    status, result, stderr = knode.exec_plugin("ADD", pod, vfio_vf, **keys)
    attached = True
    try:
        assert status == 0, stderr
        rep_mac = json.loads(sh("ip", "-j", "link", "show", REP))[0]["address"]
        (ip,) = result["ips"]
        assert ipaddress.ip_interface(ip["address"]).network == ipaddress.ip_network("10.77.0.0/24")
        assert {**result, "ips": [{**ip, "address": "leased"}]} == {
            "cniVersion": "1.1.0",
            "interfaces": [
                {"name": REP, "mac": rep_mac},
                {"name": "net1", "mac": POD_MAC, "sandbox": f"/run/netns/{pod}", "pciID": vfio_vf},
            ],
            "ips": [{"address": "leased", "gateway": "10.77.0.1", "interface": 1}],
            "dns": {},
        }
        assert pf_reported_mac() == POD_MAC
        assert REP in knode.ovs.ports("br-int")
        after = knode.snapshot(pod)
        assert after["pods"] == snapshot["pods"] and after["addresses"] == snapshot["addresses"]  # nothing applied

        status, body, stderr = knode.exec_plugin("CHECK", pod, vfio_vf, prevResult=result, **keys)
        assert status == 0, (body, stderr)
        sh("ip", "link", "set", PF, "vf", str(VF), "mac", "02:00:00:00:23:ff")  # changed behind our back
        status, body, _ = knode.exec_plugin("CHECK", pod, vfio_vf, prevResult=result, **keys)
        assert status != 0 and body["code"] == 100, body
        assert f"has mac 02:00:00:00:23:ff, ADD set {POD_MAC}" in body["msg"]
        sh("ip", "link", "set", PF, "vf", str(VF), "mac", POD_MAC)

        status, body, stderr = knode.exec_plugin("DEL", pod, vfio_vf, **keys)
        assert status == 0, (body, stderr)
        attached = False
    finally:
        if attached:  # a failed test leaves no attachment behind
            knode.exec_plugin("DEL", pod, vfio_vf, **keys)
    assert pf_reported_mac() == mac_before
    assert knode.snapshot(pod) == snapshot
