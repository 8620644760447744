"""OVN and Multus on the simulated node: a pod's cni-args (args.cni), OvnPort from CNI_ARGS, the
port identity OVN-Kubernetes writes on the Interface, the node file deciding what a pod may set,
and an ADD that returns only when the port forwards (ovs-vswitchd has it, its link is up, the
controller has written the keys the netconf waits for), else fails with code 11 and undoes all."""

from __future__ import annotations

import json
import threading

from tests.e2e.test_security import refused, strict_node_file


def exec_add(node, pod, vf, conf: dict, **cni_args: str) -> tuple[int, dict, str]:
    env = {"CNI_ARGS": node.cni_args(pod, **cni_args)}
    return node.exec_plugin("ADD", {**node.netconf(), "deviceID": vf.pci, **conf}, pod, env_overrides=env)


def add(node, pod, vf, conf: dict, **cni_args: str) -> dict:
    """ADD through the real executable with these netconf keys and extra CNI_ARGS; answers the result."""
    status, body, stderr = exec_add(node, pod, vf, conf, **cni_args)
    assert status == 0, (body, stderr)
    return body


def failed_add(node, pod, vf, conf: dict) -> dict:
    """ADD fails with code 11 and leaves the whole node as it was; answers the error."""
    before = node.snapshot()
    status, body, stderr = exec_add(node, pod, vf, conf)
    assert status == 1 and body["code"] == 11, (body, stderr)
    assert node.snapshot() == before
    return body


def play_controller(node, vf, delay_s: float, **columns: str) -> threading.Thread:
    """As ovn-controller (or a stand-in for a stopped vswitchd): once the representor's Interface
    exists, wait delay_s, then set these columns on it."""

    def controller() -> None:
        node.ovs.vsctl("wait-until", "Interface", vf.rep_name)
        threading.Event().wait(delay_s)
        node.ovs.vsctl("--no-wait", "set", "Interface", vf.rep_name, *(f"{k}={v}" for k, v in columns.items()))

    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    return thread


def delete(node, pod, vf) -> None:
    status, body, stderr = node.exec_plugin("DEL", {**node.netconf(), "deviceID": vf.pci}, pod)
    assert status == 0, (body, stderr)


def interface_ids(node, vf) -> dict:
    return node.ovs.column("Interface", vf.rep_name, "external_ids")


def pod_mac(node, pod) -> str:
    return json.loads(node.pod_sh(pod, "ip -j link show net1"))[0]["address"]


def test_cni_args_override_cni_args_env_and_netconf_and_write_ovns_port_identity(node):
    before = node.snapshot()
    conf = {
        "mac": "02:00:00:00:0a:01",
        "externalIDs": {"net": "netconf", "both": "netconf", "seen": "{{.MAC}} {{.IPAddresses}} {{.PodUID}}"},
    }
    # args.cni beats CNI_ARGS, which beats the netconf.
    pod_a, vf_a = node.create_pod("ovna"), node.vf(0, 0)
    args_cni = {"mac": "02:00:00:00:0a:03", "ovnPort": "default_ovna", "externalIDs": {"both": "pod"}}
    result = add(node, pod_a, vf_a, {**conf, "args": {"cni": args_cni}}, MAC="02:00:00:00:0a:02", OvnPort="env")
    cidr = result["ips"][0]["address"]
    assert pod_mac(node, pod_a) == "02:00:00:00:0a:03"
    ids = interface_ids(node, vf_a)
    assert {k: v for k, v in ids.items() if not k.startswith("cni-hwol")} == {
        "net": "netconf",
        "both": "pod",
        "seen": f"02:00:00:00:0a:03 {cidr} {pod_a.uid}",
        "iface-id": "default_ovna",
        "iface-id-ver": pod_a.uid,
        "attached_mac": "02:00:00:00:0a:03",
        "ip_addresses": cidr,
        "sandbox": pod_a.container_id,
    }

    # CNI_ARGS alone (ovs-cni's OvnPort and MAC) beat the netconf; runtimeConfig.mac beats args.cni.
    pod_b, vf_b = node.create_pod("ovnb"), node.vf(0, 1)
    add(node, pod_b, vf_b, conf, MAC="02:00:00:00:0b:02", OvnPort="default_ovnb")
    assert pod_mac(node, pod_b) == "02:00:00:00:0b:02"
    assert interface_ids(node, vf_b)["iface-id"] == "default_ovnb"
    assert interface_ids(node, vf_b)["attached_mac"] == "02:00:00:00:0b:02"
    pod_c, vf_c = node.create_pod("ovnc"), node.vf(0, 2)
    runtime = {"runtimeConfig": {"mac": "02:00:00:00:0c:04"}, "args": {"cni": {"mac": "02:00:00:00:0c:03"}}}
    add(node, pod_c, vf_c, {**conf, **runtime}, MAC="02:00:00:00:0c:02")
    assert pod_mac(node, pod_c) == "02:00:00:00:0c:04"
    # Without an OVN port, none of OVN's keys.
    assert not {"iface-id", "iface-id-ver", "attached_mac", "ip_addresses", "sandbox"} & set(interface_ids(node, vf_c))

    for pod, vf in ((pod_a, vf_a), (pod_b, vf_b), (pod_c, vf_c)):
        delete(node, pod, vf)
    assert node.snapshot() == before


def test_node_file_refuses_a_pods_ovn_port_and_external_ids_but_not_its_mac(node):
    strict_node_file(node)
    pod, vf = node.create_pod("ovnpolicy"), node.vf(0, 0)
    conf = {**node.netconf(), "deviceID": vf.pci}
    refused(node, pod, {**conf, "args": {"cni": {"ovnPort": "default_other"}}}, "args.cni.ovnPort")
    refused(node, pod, {**conf, "args": {"cni": {"externalIDs": {"iface-id": "x"}}}}, "args.cni.externalIDs")
    before = node.snapshot()
    add(node, pod, vf, {"args": {"cni": {"mac": "02:00:00:00:0d:01"}}})
    assert pod_mac(node, pod) == "02:00:00:00:0d:01"
    delete(node, pod, vf)
    assert node.snapshot() == before


def test_add_returns_only_once_the_controller_set_ovn_installed_and_the_port_forwards(node):
    before = node.snapshot()
    pod, vf = node.create_pod("ovnwait"), node.vf(0, 0)
    controller = play_controller(node, vf, 1.0, **{"external_ids:ovn-installed": '"true"'})
    add(node, pod, vf, {"waitForExternalIDs": {"ovn-installed": "true"}, "waitTimeoutMs": 30000})
    # Read before the controller is joined: ADD returned after the key was set, not before.
    assert interface_ids(node, vf)["ovn-installed"] == "true"
    assert node.ovs.column("Interface", vf.rep_name, "link_state") == "up"
    assert node.ovs.column("Interface", vf.rep_name, "ofport") > 0
    controller.join()
    delete(node, pod, vf)
    assert node.snapshot() == before


def test_a_controller_that_never_sets_the_key_fails_add_with_11_and_undoes_everything(node):
    pod, vf = node.create_pod("ovnnever"), node.vf(0, 0)
    body = failed_add(node, pod, vf, {"waitForExternalIDs": {"ovn-installed": "true"}, "waitTimeoutMs": 300})
    assert "ovn-installed=true" in body["msg"], body


def test_add_fails_with_11_when_vswitchd_never_numbers_the_port(node):
    pod, vf = node.create_pod("ovnnoport"), node.vf(0, 0)
    with node.ovs.vswitchd_frozen():
        body = failed_add(node, pod, vf, {"link_state_check_retries": 2, "link_state_check_interval": 100})
    assert "ofport" in body["msg"] and "200 ms" in body["msg"], body


def test_add_fails_with_11_when_the_link_never_comes_up_in_ovs(node):
    pod, vf = node.create_pod("ovnnolink"), node.vf(0, 0)
    with node.ovs.vswitchd_frozen():
        # The port numbered (as vswitchd would), but its link_state never follows the VF up.
        numbering = play_controller(node, vf, 0, ofport="4242")
        body = failed_add(node, pod, vf, {"link_state_check_retries": 3, "link_state_check_interval": 100})
        numbering.join()
    assert "link_state" in body["msg"], body
