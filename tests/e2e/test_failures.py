"""A failed ADD reports a clear CNI error and leaves the node exactly as it was."""

from __future__ import annotations

import json
import os

import pytest

from cni_hwol.cni import errors

POD_MAC = "02:aa:bb:cc:dd:ee"


def failed_add(node, pod, conf, device_id, expected_code):
    before = node.snapshot()
    status, body, stderr = node.exec_plugin("ADD", {**conf, "deviceID": device_id} if device_id else conf, pod)
    assert status != 0, body
    assert body["code"] == expected_code, body
    assert body["msg"], body
    assert "Traceback" not in json.dumps(body)
    assert node.snapshot() == before
    return body


def assert_deleted(node, conf, pod, before: dict) -> None:
    status, body, stderr = node.exec_plugin("DEL", conf, pod)
    assert status == 0, (body, stderr)
    assert node.snapshot() == before


def test_missing_bridge(node):
    pod = node.create_pod("p")
    body = failed_add(node, pod, node.netconf(bridge="br-none"), node.vf(0, 0).pci, errors.OVS_ERROR)
    assert "br-none does not exist" in body["msg"]


def test_ovsdb_unreachable(node):
    pod = node.create_pod("p")
    conf = node.netconf(ovsdbSocket=f"unix:{node.workdir}/no-such.sock")
    body = failed_add(node, pod, conf, node.vf(0, 0).pci, errors.TRY_AGAIN_LATER)
    assert "unreachable" in body["msg"]


def test_ipam_plugin_missing(node):
    pod = node.create_pod("p")
    body = failed_add(node, pod, node.netconf(ipam={"type": "no-such-ipam"}), node.vf(0, 1).pci, errors.INVALID_NETCONF)
    assert "no-such-ipam" in body["msg"]


def test_ipam_plugin_fails(node):
    pod = node.create_pod("p")
    conf = node.netconf(ipam={"type": "host-local", "subnet": "not-a-subnet", "dataDir": str(node.ipam_dir)})
    body = failed_add(node, pod, conf, node.vf(0, 1).pci, errors.IPAM_ERROR)
    assert "host-local" in body["msg"]


def test_a_route_the_kernel_refuses_after_the_port_was_added_undoes_every_step(node):
    """The last step of ADD fails: the port, lease, VF (MAC, MTU) and representor are all undone."""
    ipam = {
        "type": "host-local",
        "subnet": node.subnet,
        "dataDir": str(node.ipam_dir),
        "routes": [{"dst": "10.96.0.0/12", "gw": "10.255.0.1"}],  # a gateway on no link of the pod
    }
    conf = node.netconf(mtu=9000, runtimeConfig={"mac": POD_MAC}, ipam=ipam)
    vf = node.vf(0, 1)
    body = failed_add(node, node.create_pod("p"), conf, vf.pci, errors.NETLINK_ERROR)
    assert "10.96.0.0/12 via 10.255.0.1" in body["msg"]
    assert f"rollback: remove OVS port {vf.rep_name}" in node.log_file.read_text()  # it got that far


def test_check_of_an_attachment_never_made(node):
    before = node.snapshot()
    pod = node.create_pod("p")
    never_made = {"cniVersion": "1.0.0", "interfaces": [{"name": "net1", "sandbox": pod.netns}], "ips": []}
    conf = {**node.netconf(), "deviceID": node.vf(0, 1).pci, "prevResult": never_made}
    status, body, _ = node.exec_plugin("CHECK", conf, pod)
    assert (status, body["code"]) == (1, errors.UNKNOWN_CONTAINER), body
    assert pod.container_id in body["msg"]
    assert node.snapshot() == before


def test_exhausted_subnet_releases_nothing_it_did_not_take(node):
    before = node.snapshot()
    conf = node.netconf(ipam={"type": "host-local", "subnet": "192.168.9.0/30", "dataDir": str(node.ipam_dir)})
    first = node.create_pod("p1")
    status, body, _ = node.exec_plugin("ADD", {**conf, "deviceID": node.vf(0, 0).pci}, first)
    assert status == 0, body
    failed_add(node, node.create_pod("p2"), conf, node.vf(0, 1).pci, errors.IPAM_ERROR)  # the lease untouched
    assert_deleted(node, conf, first, before)  # and released by its DEL


def test_no_representor(node):
    pod = node.create_pod("p")
    vf = node.vf(1, 0)
    port_name = node.sysfs_root / "class/net" / vf.rep_name / "phys_port_name"
    os.remove(port_name)
    body = failed_add(node, pod, node.netconf(), vf.pci, errors.DEVICE_ERROR)
    assert "no representor" in body["msg"] and "pf1vf0" in body["details"]


def test_pf_is_not_a_vf(node):
    pod = node.create_pod("p")
    body = failed_add(node, pod, node.netconf(), node.pf_address(0), errors.DEVICE_ERROR)
    assert "not an SR-IOV VF" in body["msg"]


@pytest.mark.parametrize("device_id", ["0000:03:00", "../../../etc/passwd", "0000:99:00.0"])
def test_bad_device_ids(node, device_id):
    pod = node.create_pod("p")
    expected = errors.DEVICE_ERROR if device_id == "0000:99:00.0" else errors.INVALID_NETCONF
    failed_add(node, pod, node.netconf(), device_id, expected)


def test_missing_device_id(node):
    failed_add(node, node.create_pod("p"), node.netconf(), None, errors.INVALID_NETCONF)


def test_netns_that_is_not_a_namespace(node, tmp_path):
    pod = node.create_pod("p")
    pod.netns = str(tmp_path)
    body = failed_add(node, pod, node.netconf(), node.vf(0, 0).pci, errors.INVALID_ENVIRONMENT)
    assert "not a network namespace" in body["msg"]


def test_pod_already_has_the_interface_name(node):
    pod = node.create_pod("p")
    node.pod_sh(pod, "ip link add net1 type veth peer name other")
    failed_add(node, pod, node.netconf(), node.vf(0, 0).pci, errors.DEVICE_ERROR)


def test_second_pod_given_the_same_vf_is_refused_and_the_first_is_untouched(node):
    before = node.snapshot()
    conf = node.netconf()
    vf = node.vf(0, 2)
    first, second = node.create_pod("p1"), node.create_pod("p2")
    status, result, _ = node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, first)
    assert status == 0
    body = failed_add(node, second, conf, vf.pci, errors.DEVICE_ERROR)
    assert first.container_id in body["msg"]
    status, _, stderr = node.exec_plugin("CHECK", {**conf, "prevResult": result}, first)
    assert status == 0, stderr
    assert_deleted(node, conf, first, before)


def test_unwritable_state_directory_changes_nothing(node):
    pod = node.create_pod("p")
    blocker = node.workdir / "state-is-a-file"
    blocker.write_text("")
    body = failed_add(node, pod, node.netconf(stateDir=str(blocker)), node.vf(0, 0).pci, errors.IO_FAILURE)
    assert "state directory" in body["msg"]


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_every_result_version(node, version):
    before = node.snapshot()
    pod = node.create_pod("p")
    vf = node.vf(0, 3)
    conf = node.netconf(cni_version=version)
    status, result, stderr = node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, pod)
    assert status == 0, stderr
    assert result["cniVersion"] == version
    ip = result["ips"][0]
    assert ("version" in ip) == (version < "1.0.0")
    pod_iface = result["interfaces"][1]
    assert ("pciID" in pod_iface) == (version == "1.1.0")
    if version == "1.1.0":
        assert pod_iface["pciID"] == vf.pci and pod_iface["mtu"] == 1500
    status, body, stderr = node.exec_plugin("CHECK", {**conf, "prevResult": result}, pod)
    # CHECK came in CNI 0.4.0: older configs get the spec's error (tests/e2e/test_spec_letter.py).
    assert (status, body and body["code"]) == ((0, None) if version >= "0.4.0" else (1, 1)), stderr
    assert_deleted(node, conf, pod, before)


def test_version_and_unsupported_versions(node):
    status, body, _ = node.exec_plugin("VERSION", {"cniVersion": "1.1.0"})
    assert status == 0 and body["supportedVersions"] == ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    pod = node.create_pod("p")
    failed_add(node, pod, node.netconf(cni_version="0.2.0"), node.vf(0, 0).pci, errors.INCOMPATIBLE_VERSION)
