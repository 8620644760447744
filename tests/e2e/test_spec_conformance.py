"""Where a CNI 1.1 conformance trial found cni-hwol off the spec: each case as a runtime or an
operator would meet it, with the whole end state compared."""

from __future__ import annotations

import json

import pytest

from cni_hwol.cni import errors
from tests.e2e.test_gc_status_parallel import keep_and_drop
from tests.e2e.test_spec_letter import install_ipam_11, ipam_11_conf, recorded
from tests.simnode.nsexec import run


def pod_links(node, pod) -> list[str]:
    return sorted(entry["ifname"] for entry in json.loads(node.pod_sh(pod, "ip -j link show")))


@pytest.mark.parametrize("ifname", ["default", "all"])
def test_add_under_a_name_the_kernel_refuses_once_moved_brings_the_vf_home(node, ifname):
    """The kernel moves the VF into the pod, then refuses these names (its per-device sysctl
    directories): ADD fails and the VF is home, not stranded in the pod under its host name."""
    pod, vf = node.create_pod("p"), node.vf(0, 1)
    # The premise, on a throwaway veth: the kernel moves the link, then refuses the name.
    probe = f"hm{node.tag}"
    node.sh(f"ip link add {probe} type veth peer name {probe}p")
    refused = run(["ip", "link", "set", probe, "netns", pod.ns_name, "name", ifname], netns=node.netns, check=False)
    assert refused.returncode != 0, refused
    assert probe in pod_links(node, pod)
    node.pod_sh(pod, f"ip link del {probe}")  # its peer goes with it
    before = node.snapshot()
    conf = {**node.netconf(cni_version="1.1.0"), "deviceID": vf.pci}
    status, body, stderr = node.exec_plugin("ADD", conf, pod, ifname=ifname)
    assert (status, body["code"]) == (1, errors.NETLINK_ERROR), (body, stderr)
    assert ifname in body["msg"]
    assert pod_links(node, pod) == ["lo"]
    assert node.snapshot() == before


def test_gc_reads_the_valid_list_under_the_name_cni_1_1_0_gave_it(node):
    """CNI 1.1.0's text named GC's list cni.dev/attachments (libcni sends both names): a runtime
    sending only that name keeps its pods, and the IPAM plugin gets the list under both."""
    before = node.snapshot()
    record = install_ipam_11(node)
    conf = ipam_11_conf(node, record)
    _, valid, keep_only = keep_and_drop(node, conf)
    status, body, stderr = node.exec_plugin("GC", {**conf, "cni.dev/attachments": valid})
    assert status == 0, (body, stderr)
    assert node.snapshot() == keep_only
    assert recorded(record)[-1] == {"command": "GC", "valid": [valid, valid]}
    # JSON null is libcni's empty list (a runtime with no pods left): everything goes.
    status, body, stderr = node.exec_plugin("GC", {**conf, "cni.dev/valid-attachments": None})
    assert status == 0, (body, stderr)
    assert node.snapshot() == before
    assert recorded(record)[-1] == {"command": "GC", "valid": [[], []]}


@pytest.mark.parametrize(
    "listed",
    [
        pytest.param(None, id="no-list"),
        pytest.param({"cni.dev/valid-attachments": [{"containerID": "KEEP"}]}, id="entry-without-ifname"),
        pytest.param({"cni.dev/valid-attachments": [{"containerID": "KEEP", "ifname": 1}]}, id="ifname-a-number"),
        pytest.param({"cni.dev/attachments": [{"containerID": "KEEP", "ifname": None}]}, id="old-name-ifname-null"),
    ],
)
def test_gc_refuses_a_valid_list_it_cannot_read_and_removes_nothing(node, listed):
    """GC is the one verb that removes what it is not told about: without a list it can read it
    would remove live pods, so it refuses (code 7) and changes nothing."""
    conf = node.netconf(cni_version="1.1.0")
    pod = node.create_pod("keep")
    assert node.exec_plugin("ADD", {**conf, "deviceID": node.vf(1, 0).pci}, pod)[0] == 0
    attached = node.snapshot()
    gc_conf = json.loads(json.dumps(listed or {}).replace("KEEP", pod.container_id))
    status, body, stderr = node.exec_plugin("GC", {**conf, **gc_conf})
    assert (status, body["code"]) == (1, errors.INVALID_NETCONF), (body, stderr)
    assert "cni.dev/" in body["msg"]
    assert node.snapshot() == attached


def test_check_asks_the_ipam_plugin_whether_the_lease_is_still_held(node):
    """The spec has CHECK call CHECK on the plugins it delegates to (an IP reservation is among
    what CHECK must vouch for): a lease host-local no longer holds fails CHECK, which changes nothing."""
    pod, vf = node.create_pod("p"), node.vf(0, 2)
    conf = node.netconf(cni_version="1.1.0")
    status, result, stderr = node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, pod)
    assert status == 0, (result, stderr)
    check = {**conf, "prevResult": result}
    assert node.exec_plugin("CHECK", check, pod)[0] == 0
    (lease,) = (node.ipam_dir / "hwol").glob(result["ips"][0]["address"].split("/")[0])
    held = lease.read_bytes()
    lease.unlink()
    released = node.snapshot()
    status, body, stderr = node.exec_plugin("CHECK", check, pod)
    assert (status, body["code"]) == (1, errors.IPAM_ERROR), (body, stderr)
    assert "host-local CHECK failed" in body["msg"] and pod.container_id in body["msg"]
    assert node.snapshot() == released
    lease.write_bytes(held)
    assert node.exec_plugin("CHECK", check, pod)[0] == 0


def test_check_takes_the_pod_mac_from_the_result_a_later_plugin_changed(node):
    """tuning chained after cni-hwol sets the pod's MAC and says so in the chain's result: CHECK
    takes the expected MAC from prevResult (the spec lets later plugins change what we made), so
    the runtime's CHECK passes; DEL leaves the node as before."""
    before = node.snapshot()
    pod, vf = node.create_pod("p"), node.vf(1, 1)
    plugins = [
        node.plugin_conf(),
        {"type": "tuning", "mac": "02:11:22:33:44:55", "dataDir": str(node.workdir / "tuning")},
    ]
    conflist = {"cniVersion": "1.0.0", "name": "tuned", "plugins": plugins}
    (node.netconf_dir / "tuned.conflist").write_text(json.dumps(conflist))
    result = json.loads(node.cnitool_run("add", pod, vf.pci, network="tuned").stdout)
    assert result["interfaces"][1] == {"name": "net1", "mac": "02:11:22:33:44:55", "sandbox": pod.netns}
    assert node.pod_link(pod)["address"] == "02:11:22:33:44:55"
    node.cnitool_run("check", pod, vf.pci, network="tuned")
    node.pod_sh(pod, "ip link set net1 address 02:11:22:33:44:66")  # behind everyone's back
    checked = node.cnitool_run("check", pod, vf.pci, network="tuned", check=False)
    assert checked.returncode != 0 and "net1 has MAC 02:11:22:33:44:66" in checked.stderr.decode()
    node.cnitool_run("del", pod, vf.pci, network="tuned")
    assert node.snapshot() == before


def test_check_refuses_a_prev_result_without_the_pod_interface(node):
    pod, vf = node.create_pod("p"), node.vf(0, 3)
    conf = node.netconf(cni_version="1.1.0")
    status, result, stderr = node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, pod)
    assert status == 0, (result, stderr)
    attached = node.snapshot()
    host_side_only = {**result, "interfaces": result["interfaces"][:1]}
    status, body, stderr = node.exec_plugin("CHECK", {**conf, "prevResult": host_side_only}, pod)
    assert (status, body["code"]) == (1, errors.INVALID_NETCONF), (body, stderr)
    assert "prevResult lists no interface net1" in body["msg"]
    assert node.snapshot() == attached


def test_check_fails_for_a_route_of_the_result_gone_from_the_pod(node):
    """The spec has CHECK fail for a route of prevResult that is missing (the reference plugins
    look each one up); CHECK changes nothing."""
    pod, vf = node.create_pod("p"), node.vf(1, 3)
    routes = [{"dst": "0.0.0.0/0"}, {"dst": "10.9.0.0/16", "gw": "192.168.1.254"}]
    ipam = {"type": "host-local", "subnet": node.subnet, "dataDir": str(node.ipam_dir), "routes": routes}
    conf = node.netconf(cni_version="1.1.0", ipam=ipam)
    status, result, stderr = node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, pod)
    assert status == 0, (result, stderr)
    check = {**conf, "prevResult": result}
    assert node.exec_plugin("CHECK", check, pod)[0] == 0
    node.pod_sh(pod, "ip route del 10.9.0.0/16")
    in_pod = node.pod_sh(pod, "ip route show")
    removed = node.snapshot()
    status, body, stderr = node.exec_plugin("CHECK", check, pod)
    assert (status, body["code"]) == (1, errors.DEVICE_ERROR), (body, stderr)
    assert "lacks route(s) 10.9.0.0/16 via 192.168.1.254" in body["msg"]
    assert (node.snapshot(), node.pod_sh(pod, "ip route show")) == (removed, in_pod)
    node.pod_sh(pod, "ip route add 10.9.0.0/16 via 192.168.1.253")  # back, through another gateway
    status, body, stderr = node.exec_plugin("CHECK", check, pod)
    assert (status, body["code"]) == (1, errors.DEVICE_ERROR), (body, stderr)
    assert "lacks route(s) 10.9.0.0/16 via 192.168.1.254" in body["msg"]
    node.pod_sh(pod, "ip route replace 10.9.0.0/16 via 192.168.1.254")
    assert node.exec_plugin("CHECK", check, pod)[0] == 0
