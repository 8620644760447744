"""A tenant's netconf cannot reach root's powers on a node with a node file (cni_hwol/cni/policy.py).

Each attack is one a NetworkAttachmentDefinition's author can write today; each
test installs a strict node file, as the DaemonSet does, and proves the whole
node stayed as it was. Without a node file the keys work as the netconf says.
"""

from __future__ import annotations

import json
import os
import socket
import threading

from cni_hwol.cni import errors
from cni_hwol.linux.netns import socket_in
from tests.simnode.fake_sysfs import FakeSysfs


def strict_node_file(node, allow_ipam_dir: bool = True, **rules) -> None:
    """The node's own settings, and no rule: a netconf may only repeat them (and name the rig's IPAM directory)."""
    settings = {
        "ovsdbSocket": node.ovs.socket,
        "stateDir": str(node.state_dir),
        "sysfsRoot": str(node.sysfs_root),
        "logFile": str(node.log_file),
        "logLevel": "debug",
        "bridge": node.bridge,
    }
    if allow_ipam_dir:
        rules = {"ipam.dataDir": [str(node.ipam_dir)], **rules}
    node.write_node_config({"settings": settings, "netconf": rules})


def refused(node, pod, conf: dict, key: str) -> dict:
    """ADD of conf is refused naming key, and nothing on the node changed."""
    before = node.snapshot()
    status, body, _ = node.exec_plugin("ADD", conf, pod)
    assert status == 1, body
    assert body["code"] == errors.INVALID_NETCONF, body
    assert key in body["msg"] and str(node.node_config) in body["details"], body
    assert node.snapshot() == before
    assert [link["ifname"] for link in json.loads(node.pod_sh(pod, "ip -j link show"))] == ["lo"]
    return body


def test_a_netconf_naming_no_node_key_runs_on_the_node_file_settings(node):
    strict_node_file(node)
    before = node.snapshot()
    pod = node.create_pod("p")
    bare = {
        "cniVersion": "1.0.0",
        "name": "hwol",
        "type": "cni-hwol",
        "deviceID": node.vf(0, 0).pci,
        "ipam": {"type": "host-local", "subnet": node.subnet, "dataDir": str(node.ipam_dir)},
    }
    status, body, _ = node.exec_plugin("ADD", bare, pod)
    assert status == 0, body
    # The node's OVSDB, bridge, sysfs, state directory and log file, none named by the netconf.
    assert node.ovs.ports(node.bridge) == [node.vf(0, 0).rep_name]
    assert node.snapshot()["state"] == [
        "attachments/hwol/" + pod.container_id + ":net1.json",
        "devices/0000:04:00.0.json",
    ]
    assert f"ADD {pod.container_id} net1" in node.log_file.read_text()
    assert node.exec_plugin("DEL", bare, pod)[0] == 0
    assert node.snapshot() == before


def test_a_netconf_repeating_the_node_settings_or_asking_what_the_file_allows_works(node):
    strict_node_file(node, logFile=[f"{node.workdir}/tenant-logs/"])
    pod = node.create_pod("p")
    tenant_log = node.workdir / "tenant-logs" / "net.log"
    conf = node.netconf(logFile=str(tenant_log), deviceID=node.vf(0, 1).pci)
    status, body, _ = node.exec_plugin("ADD", conf, pod)
    assert status == 0, body
    assert f"ADD {pod.container_id} net1" in tenant_log.read_text()
    assert node.exec_plugin("DEL", conf, pod)[0] == 0


def test_a_forged_sysfs_tree_cannot_move_the_nodes_uplink_into_a_pod(node):
    """A pod's emptyDir lies on the node's disk: a tree there names the uplink as a "VF"."""
    strict_node_file(node)
    forged_root = node.workdir / "pod-emptydir" / "sys"
    forged = FakeSysfs(forged_root)
    switch_id = "00000000deadbeef"
    forged.add_pf("0000:03:00.0", "forgedpf", switch_id, 0x0400, 1)
    forged.add_vf("0000:03:00.0", 0, 0x0400, "enp3s0f1np1")  # the node's uplink
    forged.add_representor("0000:03:00.0", "pf1peer", switch_id, "pf0vf0")  # any netdev
    pod = node.create_pod("p")
    conf = node.netconf(sysfsRoot=str(forged_root), deviceID="0000:04:00.0")
    body = refused(node, pod, conf, "sysfsRoot")
    assert str(node.sysfs_root) in body["msg"]


def test_a_state_dir_elsewhere_neither_creates_directories_nor_claims_a_held_vf_again(node):
    strict_node_file(node)
    vf = node.vf(0, 2)
    holder, thief = node.create_pod("holder"), node.create_pod("thief")
    status, body, _ = node.exec_plugin("ADD", node.netconf(deviceID=vf.pci), holder)
    assert status == 0, body
    holder_link = node.pod_link(holder)
    elsewhere = node.workdir / "anywhere" / "state"
    refused(node, thief, node.netconf(stateDir=str(elsewhere), deviceID=vf.pci), "stateDir")
    assert not (node.workdir / "anywhere").exists()
    assert node.pod_link(holder) == holder_link
    assert node.exec_plugin("DEL", node.netconf(), holder)[0] == 0


def test_an_ovsdb_socket_elsewhere_is_never_connected(node):
    """tcp: would reach any host with the pod's metadata; here a listener on the node's loopback."""
    strict_node_file(node)
    with open(node.netns) as netns:
        listener = socket_in(netns.fileno(), socket.AF_INET, socket.SOCK_STREAM)
    connections: list[bytes] = []

    def accept() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:  # closed: nobody came
            return
        with conn:
            conn.settimeout(5)
            connections.append(conn.recv(65536))

    with listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        thread = threading.Thread(target=accept)
        thread.start()
        try:
            pod = node.create_pod("p")
            refused(
                node, pod, node.netconf(ovsdbSocket=f"tcp:127.0.0.1:{port}", deviceID=node.vf(0, 3).pci), "ovsdbSocket"
            )
        finally:
            listener.shutdown(socket.SHUT_RDWR)
            listener.close()
            thread.join()
    assert connections == []


def test_a_log_file_elsewhere_is_refused_and_not_created(node):
    strict_node_file(node)
    target = node.workdir / "etc-cron.d" / "tenant"
    pod = node.create_pod("p")
    refused(node, pod, node.netconf(logFile=str(target), deviceID=node.vf(1, 0).pci), "logFile")
    assert not target.parent.exists()
    # The operator finds the refusal in the node's own log.
    assert f"ADD {pod.container_id} net1 ADD failed: logFile '{target}' is not allowed" in node.log_file.read_text()


def test_an_ipam_data_dir_elsewhere_is_refused_before_host_local_writes_there(node):
    strict_node_file(node, allow_ipam_dir=False)
    elsewhere = node.workdir / "etc-cron.d"
    ipam = {"type": "host-local", "subnet": node.subnet, "dataDir": str(elsewhere)}
    refused(node, node.create_pod("p"), node.netconf(ipam=ipam, deviceID=node.vf(1, 3).pci), "ipam.dataDir")
    assert not elsewhere.exists()


def test_a_newline_from_ipam_output_does_not_forge_a_log_line(node):
    """host-local echoes the bad subnet in its error; the plugin logs that error."""
    pod = node.create_pod("p")
    subnet = "10.0.0.0/33\n2030-01-01 00:00:00,000 INFO [1] ADD forged line"
    conf = node.netconf(ipam={"type": "host-local", "subnet": subnet, "dataDir": str(node.ipam_dir)})
    before = node.snapshot()
    status, body, _ = node.exec_plugin("ADD", {**conf, "deviceID": node.vf(1, 1).pci}, pod)
    assert (status, body["code"]) == (1, errors.IPAM_ERROR), body
    assert node.snapshot() == before
    lines = node.log_file.read_text().splitlines()
    assert lines and not any(line.startswith("2030-01-01") for line in lines)
    assert any("\\n2030-01-01" in line for line in lines)  # the text is there, escaped


def test_a_log_file_that_is_a_link_is_not_followed(node):
    """Without a node file any path works, but never through a link to another file."""
    victim = node.workdir / "victim"
    victim.write_text("root's file\n")
    link = node.workdir / "tenant" / "cni.log"
    link.parent.mkdir()
    os.symlink(victim, link)
    pod = node.create_pod("p")
    conf = node.netconf(logFile=str(link), deviceID=node.vf(1, 2).pci)
    status, body, stderr = node.exec_plugin("ADD", conf, pod)
    assert status == 0, body
    assert "cannot open log file" in stderr
    assert node.exec_plugin("DEL", conf, pod)[0] == 0
    assert victim.read_text() == "root's file\n"  # after ADD and DEL alike
