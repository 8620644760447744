"""ADD, CHECK, DEL through a libcni client on the simulated node."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import time

import pytest

from cni_hwol.linux.netns import socket_in

POD_MAC = "02:aa:bb:cc:dd:ee"

BANDWIDTH = {
    "bandwidth": {
        "ingressRate": 1_000_000_000,
        "ingressBurst": 10_000_000,
        "egressRate": 1_000_000_000,
        "egressBurst": 10_000_000,
    }
}


def address_of(result: dict) -> str:
    return result["ips"][0]["address"].split("/")[0]


def test_two_pods_on_two_pfs_ping_through_br_int_and_the_node_is_restored(node):
    before = node.snapshot()
    pod1, pod2 = node.create_pod("pod1"), node.create_pod("pod2")
    vf1, vf2 = node.vf(0, 1), node.vf(1, 1)

    # Multus-style runtimeConfig for one pod, CNI_ARGS for the other.
    r1 = json.loads(node.cnitool_run("add", pod1, vf1.pci, cap_args=BANDWIDTH).stdout)
    r2 = json.loads(node.cnitool_run("add", pod2, cap_args=BANDWIDTH, deviceID=vf2.pci).stdout)

    assert [i["name"] for i in r1["interfaces"]][:2] == [vf1.rep_name, "net1"]  # bandwidth appends its ifb
    assert r1["interfaces"][1]["sandbox"] == pod1.netns
    assert r1["ips"][0]["interface"] == 1
    assert sorted(node.ovs.ports("br-int")) == sorted([vf1.rep_name, vf2.rep_name])
    assert node.ping(pod1, address_of(r2)).returncode == 0
    assert node.ping(pod2, address_of(r1)).returncode == 0

    node.cnitool_run("check", pod1, vf1.pci, cap_args=BANDWIDTH)
    node.cnitool_run("check", pod2, cap_args=BANDWIDTH, deviceID=vf2.pci)

    for pod in (pod1, pod2):
        node.cnitool_run("del", pod, cap_args=BANDWIDTH)
        node.cnitool_run("del", pod, cap_args=BANDWIDTH)  # a second DEL is fine
    assert node.snapshot() == before


def test_pod_interface_gets_the_vf_with_requested_mac_and_mtu(node):
    ipam = {
        "type": "host-local",
        "subnet": node.subnet,
        "dataDir": str(node.ipam_dir),
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.96.0.0/12", "gw": "192.168.1.254"}],
    }
    node.write_conflist("hwol", mtu=9000, chained=False, ipam=ipam)
    pod = node.create_pod("pod1")
    vf = node.vf(0, 2)
    result = json.loads(node.cnitool_run("add", pod, vf.pci, cap_args={"mac": "02:aa:bb:cc:dd:ee"}).stdout)
    link = node.pod_link(pod)
    assert link["address"] == "02:aa:bb:cc:dd:ee" == result["interfaces"][1]["mac"]
    assert link["mtu"] == 9000
    assert "UP" in link["flags"]
    assert any(a["local"] == address_of(result) for a in link["addr_info"])
    rep = json.loads(node.sh(f"ip -j link show {vf.rep_name}"))[0]
    assert rep["mtu"] >= 9000 and "UP" in rep["flags"]
    assert not any(
        a["family"] == "inet6" for a in json.loads(node.sh(f"ip -j addr show {vf.rep_name}"))[0]["addr_info"]
    )
    routes = {r["dst"]: r.get("gateway") for r in json.loads(node.pod_sh(pod, "ip -j route show"))}
    assert routes["default"] == result["ips"][0]["gateway"]  # a route without gw uses IPAM's gateway
    assert routes["10.96.0.0/12"] == "192.168.1.254"
    node.cnitool_run("del", pod)


def test_ovs_port_carries_external_ids_vlan_and_owner(node):
    node.write_conflist(
        "hwol", chained=False, vlan=100, externalIDs={"iface-id": "{{.PodNamespace}}_{{.PodName}}", "attached-mac": "x"}
    )
    pod = node.create_pod("pod1")
    vf = node.vf(0, 0)
    node.cnitool_run("add", pod, vf.pci)
    ids = node.ovs.column("Interface", vf.rep_name, "external_ids")
    assert ids["iface-id"] == "default_pod1"
    assert ids["attached-mac"] == "x"
    assert ids["cni-hwol.container-id"] == pod.container_id
    assert ids["cni-hwol.device-id"] == vf.pci
    assert ids["cni-hwol.pod-uid"] == pod.uid
    assert ids["cni-hwol.owner"] == "cni-hwol"
    assert node.ovs.column("Port", vf.rep_name, "external_ids")["cni-hwol.ifname"] == "net1"
    assert node.ovs.column("Port", vf.rep_name, "tag") == 100
    node.cnitool_run("del", pod)
    assert node.ovs.ports("br-int") == []


@pytest.mark.parametrize("home_name", ["net1", "dev0"])
def test_del_after_the_namespace_is_gone_finds_the_vf_by_pci_address(node, home_name):
    """The kernel brings the VF home under its in-pod name, or devN when that is
    taken, with the pod's MAC and MTU: DEL restores its name, MAC and MTU."""
    before = node.snapshot()
    node.write_conflist("hwol", mtu=9000)
    pod, vf = node.create_pod("pod1"), node.vf(0, 3)
    node.cnitool_run("add", pod, vf.pci, cap_args={"mac": POD_MAC})
    if home_name != "net1":
        node.sh("ip link add net1 type veth peer name net1peer")  # the in-pod name is taken on the host
    node.destroy_pod(pod)
    assert node.sysfs.vf_netdevs(vf.pci) == [home_name]
    home = json.loads(node.sh(f"ip -j link show {home_name}"))[0]
    assert (home["address"], home["mtu"]) == (POD_MAC, 9000)  # so the comparison below is not vacuous
    node.cnitool_run("del", pod)
    if home_name != "net1":
        node.sh("ip link del net1")
    assert node.snapshot() == before


def test_del_without_add_succeeds_and_changes_nothing(node):
    before = node.snapshot()
    pod = node.create_pod("pod1")
    node.cnitool_run("del", pod)
    node.cnitool_run("del", pod)
    assert node.snapshot() == before


def test_check_reports_a_port_removed_behind_our_back(node):
    node.write_conflist("hwol", chained=False)
    pod = node.create_pod("pod1")
    vf = node.vf(0, 1)
    node.cnitool_run("add", pod, vf.pci)
    node.ovs.vsctl("del-port", "br-int", vf.rep_name)
    done = node.cnitool_run("check", pod, vf.pci, check=False)
    assert done.returncode != 0
    assert f"{vf.rep_name} is not a port of bridge br-int" in done.stderr.decode()
    node.cnitool_run("del", pod)


@pytest.mark.parametrize(
    ("change", "reported"),
    [
        ("pod: ip link set net1 down", "net1 in the pod is down"),
        ("pod: ip link set net1 address 02:00:00:00:00:99", "net1 has MAC 02:00:00:00:00:99"),
        ("pod: ip address flush dev net1", "net1 lacks address(es)"),
        ("node: ip link set {rep} down", "representor {rep} is missing or down"),
    ],
    ids=["pod-link-down", "another-mac", "address-gone", "representor-down"],
)
def test_check_fails_for_what_changed_behind_our_back(node, change, reported):
    """CHECK verifies the VF in the pod is up with its MAC and addresses, and the representor is up."""
    conf, pod, vf = node.netconf(), node.create_pod("p"), node.vf(1, 2)
    status, result, stderr = node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, pod)
    assert status == 0, stderr
    assert node.exec_plugin("CHECK", {**conf, "prevResult": result}, pod)[0] == 0
    where, command = change.format(rep=vf.rep_name).split(": ")
    if where == "pod":
        node.pod_sh(pod, command)
    else:
        node.sh(command)
    status, body, _ = node.exec_plugin("CHECK", {**conf, "prevResult": result}, pod)
    assert status == 1 and reported.format(rep=vf.rep_name) in body["msg"], body
    assert node.exec_plugin("DEL", conf, pod)[0] == 0


def test_a_representor_that_was_down_is_down_again_after_del(node):
    before = node.snapshot()
    vf = node.vf(0, 1)
    node.sh(f"ip link set {vf.rep_name} down")
    down = node.snapshot()
    pods = [node.create_pod(f"p{i}") for i in range(3)]
    for pod in pods:  # ADD then DEL at once, racing ovs-vswitchd's own flag handling
        node.cnitool_run("add", pod, vf.pci)
        node.cnitool_run("del", pod)
        assert node.snapshot() == down
    node.sh(f"ip link set {vf.rep_name} up")
    assert node.snapshot() == before


# A hang guard, not a window: the announcements come within a second or so.
ANNOUNCEMENTS_NEVER_CAME_S = 60


def _announcements(frames: list[bytes]) -> tuple[set[str], set[str]]:
    """(IPv4 addresses in gratuitous ARPs, IPv6 targets of unsolicited NAs) among Ethernet frames."""
    garp, na = set(), set()
    for frame in frames:
        kind = int.from_bytes(frame[12:14], "big")
        if kind == 0x0806 and len(frame) >= 42:
            sender, target = frame[28:32], frame[38:42]
            if sender == target:
                garp.add(str(ipaddress.IPv4Address(sender)))
        elif kind == 0x86DD and len(frame) >= 78 and frame[20] == 58 and frame[54] == 136:
            na.add(str(ipaddress.IPv6Address(frame[62:78])))
    return garp, na


def test_the_kernel_announces_the_pod_addresses_as_the_vf_comes_up(node):
    ipam = {
        "type": "host-local",
        "dataDir": str(node.ipam_dir),
        "ranges": [[{"subnet": node.subnet}], [{"subnet": "fd00:77::/64"}]],
    }
    node.write_conflist("hwol", chained=False, ipam=ipam)
    pod, vf = node.create_pod("pod1"), node.vf(0, 3)
    netns_fd = os.open(node.netns, os.O_RDONLY)
    try:
        sniffer = socket_in(netns_fd, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
    finally:
        os.close(netns_fd)
    with sniffer:
        sniffer.bind((vf.rep_name, 0))
        result = json.loads(node.cnitool_run("add", pod, vf.pci).stdout)
        addresses = {ip["address"].split("/")[0] for ip in result["ips"]}
        ipv4, ipv6 = {a for a in addresses if ":" not in a}, {a for a in addresses if ":" in a}
        # Read until both announcements are in: the frames end the wait (the
        # kernel may send them after ADD returns, once the link watcher runs).
        # The deadline only keeps a broken ADD from hanging the run.
        give_up = time.monotonic() + ANNOUNCEMENTS_NEVER_CAME_S
        frames: list[bytes] = []
        garp, na = _announcements(frames)
        while not (garp >= ipv4 and na >= ipv6):
            sniffer.settimeout(max(give_up - time.monotonic(), 0.001))
            try:
                frames.append(sniffer.recv(2048))
            except TimeoutError:
                pytest.fail(f"announced: {garp}, {na}; wanted {ipv4}, {ipv6}")
            garp, na = _announcements(frames)
    assert (garp, na) == (ipv4, ipv6)
    node.cnitool_run("del", pod)


def test_del_deletes_what_the_pod_stacked_on_its_vf(node):
    """A macvlan the pod made on its VF (as 802.1Q VLANs on a trunk port) would stay in the
    pod, bound to a VF that went home to be given to the next pod: DEL deletes it first."""
    before = node.snapshot()
    pod = node.create_pod("stack")
    vf = node.vf(0, 3)
    node.cnitool_run("add", pod, vf.pci)
    node.pod_sh(pod, "ip link add net1.mv link net1 type macvlan mode bridge")
    node.cnitool_run("del", pod)
    assert [link["ifname"] for link in json.loads(node.pod_sh(pod, "ip -j link show"))] == ["lo"]
    assert node.snapshot() == before
