"""VFs bound to a userspace driver (vfio-pci: a DPDK or VPP pod, a KubeVirt VM) on the
simulated node: ADD moves nothing, wires the representor, returns the lease's IPs
and the VF's pciID without applying anything; CHECK, DEL (also once the pod's
namespace is gone) and GC follow. The simulated PF is a veth without VF
operations: the implicit MAC is skipped with a warning, a requested one refused."""

from __future__ import annotations

import json

import pytest

from tests.simnode.nsexec import run


def conf_for(node, vf, **extra) -> dict:
    return {**node.netconf(cni_version="1.1.0"), "deviceID": vf.pci, **extra}


def pod_view(node, pod) -> list[tuple]:
    """Every link of the pod and its addresses: a userspace VF's ADD puts nothing there."""
    out = run(["ip", "-j", "addr", "show"], netns=pod.netns).stdout
    return sorted((e["ifname"], sorted(a["local"] for a in e.get("addr_info", []))) for e in json.loads(out))


def representor(node, vf) -> dict:
    return json.loads(node.sh(f"ip -j link show {vf.rep_name}"))[0]


def test_add_check_del_of_a_vfio_vf_wires_only_its_representor(node):
    vf = node.bind_userspace(0, 1)
    pod = node.create_pod("dpdk")
    before, pod_before = node.snapshot(), pod_view(node, pod)
    rep_before = representor(node, vf)
    conf = conf_for(node, vf, mtu=9000)

    status, result, stderr = node.exec_plugin("ADD", conf, pod)
    assert status == 0, (result, stderr)
    assert result == {
        "cniVersion": "1.1.0",
        "interfaces": [
            {"name": vf.rep_name, "mac": rep_before["address"]},
            {"name": "net1", "sandbox": pod.netns, "pciID": vf.pci},  # no MAC: the PF could not set one
        ],
        "ips": [{"address": "192.168.1.2/24", "gateway": "192.168.1.1", "interface": 1}],
        "dns": {},
    }
    after = node.snapshot()
    # The representor on the bridge, raised to the pod's MTU, IPv6 off; nothing else changed.
    rep = representor(node, vf)
    assert (rep["mtu"], "UP" in rep["flags"]) == (9000, True)
    assert after["ipv6_disabled"][vf.rep_name] == "1"
    assert after["ports"] == [vf.rep_name]
    unchanged = [link for link in before["links"] if link[0] not in (vf.rep_name, "br-int")]  # OVS follows the MTU
    assert [link for link in after["links"] if link[0] not in (vf.rep_name, "br-int")] == unchanged
    assert after["addresses"] == before["addresses"] and pod_view(node, pod) == pod_before  # IPs not applied
    assert len(after["leases"]) == len(before["leases"]) + 1
    state = json.loads(next((node.state_dir / "attachments" / "hwol").glob("*.json")).read_text())
    assert (state["userspace_driver"], state["vf_name"], state["pod_mac"]) == ("vfio-pci", "", "")
    assert "PF enp3s0f0np0 has no VF operations" in node.log_file.read_text()

    status, body, stderr = node.exec_plugin("CHECK", {**conf, "prevResult": result}, pod)
    assert status == 0, (body, stderr)  # no pod link looked for
    node.ovs.vsctl("del-port", vf.rep_name)
    status, body, _ = node.exec_plugin("CHECK", {**conf, "prevResult": result}, pod)
    assert (status, body["code"]) == (1, 101), body
    assert body["msg"] == f"representor {vf.rep_name} is not a port of bridge br-int"

    status, body, stderr = node.exec_plugin("DEL", conf, pod)
    assert status == 0, (body, stderr)
    assert node.snapshot() == before


def added(node, pf: int, index: int, driver: str, pod_name: str) -> tuple[dict, object, dict]:
    """A VF bound to `driver`, attached to a new pod: (its netconf, the pod, the node before ADD)."""
    vf = node.bind_userspace(pf, index, driver=driver)
    pod = node.create_pod(pod_name)
    before = node.snapshot()
    conf = conf_for(node, vf)
    status, result, stderr = node.exec_plugin("ADD", conf, pod)
    assert status == 0, (result, stderr)
    after = node.snapshot()
    # attached for real, so DEL and GC have a port, a lease and a state file to take back
    assert vf.rep_name in after["ports"] and vf.rep_name not in before["ports"]
    assert len(after["leases"]) == len(before["leases"]) + 1
    assert len(after["state"]) > len(before["state"])
    return conf, pod, before


def test_del_of_a_vfio_vf_after_the_pod_namespace_is_gone(node):
    conf, pod, before = added(node, 1, 2, "uio_pci_generic", "gone")
    node.destroy_pod(pod)
    status, body, stderr = node.exec_plugin("DEL", conf, pod)
    assert status == 0, (body, stderr)
    assert node.snapshot() == before


def test_gc_removes_a_vfio_vf_attachment_not_listed(node):
    conf, _, before = added(node, 0, 3, "igb_uio", "gc")
    status, body, stderr = node.exec_plugin("GC", {**conf, "cni.dev/valid-attachments": []})
    assert status == 0, (body, stderr)
    assert node.snapshot() == before


BAD_USERSPACE = [
    ({"mac": "02:00:00:00:00:01"}, 103, "PF enp3s0f0np0 has no VF operations: cannot set mac 02:00:00:00:00:01"),
    ({"runtimeConfig": {"mac": "02:00:00:00:00:02"}}, 103, "cannot set mac 02:00:00:00:00:02 on VF 1"),
    ({"spoofchk": "on"}, 103, "PF enp3s0f0np0 has no VF operations: cannot set spoofchk"),
    ({"mtu": 9001}, 7, "'mtu' 9001 exceeds the MTU 9000 of the uplink enp3s0f0np0"),
]


@pytest.mark.parametrize(("extra", "code", "names"), BAD_USERSPACE, ids=[str(c[0]) for c in BAD_USERSPACE])
def test_bad_input_for_a_vfio_vf_leaves_nothing_behind(node, extra, code, names):
    vf = node.bind_userspace(0, 1)
    pod = node.create_pod("bad")
    before, pod_before = node.snapshot(), pod_view(node, pod)
    status, body, stderr = node.exec_plugin("ADD", conf_for(node, vf, **extra), pod)
    assert (status, body["code"]) == (1, code), (body, stderr)
    assert names in body["msg"], body
    assert "Traceback" not in stderr
    assert node.snapshot() == before and pod_view(node, pod) == pod_before


@pytest.mark.parametrize("driver", ["mlx5_core", None])
def test_a_vf_without_netdev_on_a_kernel_driver_or_none_is_still_refused(node, driver):
    vf = node.vf(0, 2)
    node.sysfs.bind_driver(vf.pci, driver or "mlx5_core")  # its netdev is elsewhere (another pod)
    if driver is None:
        (node.sysfs_root / "bus/pci/devices" / vf.pci / "driver").unlink()
    pod = node.create_pod("kernel")
    before = node.snapshot()
    status, body, stderr = node.exec_plugin("ADD", conf_for(node, vf), pod)
    assert (status, body["code"]) == (1, 100), (body, stderr)
    assert body["msg"] == (
        f"VF {vf.pci} has no netdev in the host network namespace (sysfs lists none, driver {driver or 'none'}): "
        "it is in use by another pod or its driver is not bound"
    )
    assert node.snapshot() == before
