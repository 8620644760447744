"""Port hygiene on the simulated node: ports re-made by hand, ports someone else made,
and ports left by a node reboot (representor gone), each compared on the whole node after."""

from __future__ import annotations

import json
import shlex

import pytest

from cni_hwol.cni.errors import OVS_ERROR
from cni_hwol.ovsdb.ports import CONTAINER_ID_KEY
from tests.simnode.nsexec import ip, run


def add(node, pod, vf) -> tuple[int, dict | None, str]:
    return node.exec_plugin("ADD", node.netconf(deviceID=vf.pci), pod)


def delete(node, pod) -> None:
    status, body, stderr = node.exec_plugin("DEL", node.netconf(), pod)
    assert status == 0, (body, stderr)


def gc(node, *valid) -> None:
    listed = [{"containerID": pod.container_id, "ifname": "net1"} for pod in valid]
    conf = node.netconf(cni_version="1.1.0", **{"cni.dev/valid-attachments": listed})
    status, body, stderr = node.exec_plugin("GC", conf)
    assert status == 0, (body, stderr)


def set_ids(table: str, name: str, ids: dict[str, str]) -> list[str]:
    """ovs-vsctl arguments that give the row these external_ids."""
    return ["--", "set", table, name, *(f"external_ids:{k}={json.dumps(v)}" for k, v in ids.items())]


def attach_and_read_ids(node, pod, vf, marked: str) -> dict[str, str]:
    """ADD `pod` on `vf`; answers the external_ids ADD wrote on the port's `marked` row."""
    status, body, stderr = add(node, pod, vf)
    assert status == 0, (body, stderr)
    return node.ovs.column(marked, vf.rep_name, "external_ids")


@pytest.mark.parametrize("marked", ["Interface", "Port"])
def test_del_removes_a_port_remade_by_hand_that_carries_the_attachments_marker(node, marked):
    before = node.snapshot()
    pod, vf = node.create_pod("p"), node.vf(0, 0)
    ids = attach_and_read_ids(node, pod, vf, marked)
    # Deleted and re-added by hand, with the same external_ids on one of its rows:
    # a new uuid, so the one in the state file finds nothing.
    uuid = node.ovs.column("Port", vf.rep_name, "_uuid")
    remade = ["del-port", vf.rep_name, "--", "add-port", node.bridge, vf.rep_name]
    node.ovs.vsctl(*remade, *set_ids(marked, vf.rep_name, ids))
    assert node.ovs.column("Port", vf.rep_name, "_uuid") != uuid
    delete(node, pod)
    assert node.snapshot() == before
    # The VF is free for the next pod, with nothing in the way.
    second = node.create_pod("q")
    assert add(node, second, vf)[0] == 0
    delete(node, second)
    assert node.snapshot() == before


@pytest.mark.parametrize("marked", ["Interface", "Port"])
def test_add_replaces_a_port_of_ours_a_reboot_left_behind(node, marked):
    before = node.snapshot()
    old_pod, vf = node.create_pod("old"), node.vf(1, 1)
    ids = attach_and_read_ids(node, old_pod, vf, marked)
    delete(node, old_pod)
    # OVSDB outlives a reboot, the pods and their attachments do not: the port is
    # there again (here with our marker on one of its rows), its attachment is not.
    node.ovs.vsctl("add-port", node.bridge, vf.rep_name, *set_ids(marked, vf.rep_name, ids))
    pod = node.create_pod("new")
    status, body, stderr = add(node, pod, vf)
    assert status == 0, (body, stderr)
    assert node.ovs.column("Port", vf.rep_name, "external_ids")[CONTAINER_ID_KEY] == pod.container_id
    delete(node, pod)
    assert node.snapshot() == before


def test_add_over_a_foreign_port_names_it_and_how_to_remove_it(node):
    before = node.snapshot()
    pod, vf = node.create_pod("p"), node.vf(0, 1)
    node.ovs.vsctl("add-port", node.bridge, vf.rep_name)  # someone else's port on our representor
    with_foreign, foreign_uuid = node.snapshot(), node.ovs.column("Port", vf.rep_name, "_uuid")
    status, body, _ = add(node, pod, vf)
    assert status == 1 and body["code"] == OVS_ERROR, body
    assert f"an OVS port named {vf.rep_name} already exists and was not made by cni-hwol" in body["msg"]
    assert node.snapshot() == with_foreign  # nothing left behind
    assert node.ovs.column("Port", vf.rep_name, "_uuid") == foreign_uuid  # the foreign port untouched
    # The command the message gives removes it; then ADD succeeds.
    command = body["msg"].split("remove it: ")[1]
    assert command == f"ovs-vsctl --db={node.ovs.socket} del-port {vf.rep_name}"
    run(shlex.split(command), env=node.ovs.env)
    assert add(node, pod, vf)[0] == 0
    delete(node, pod)
    assert node.snapshot() == before


def test_gc_sweeps_ports_of_ours_whose_interface_shows_an_error(node):
    before = node.snapshot()
    gone, kept = node.create_pod("gone"), node.create_pod("kept")
    vf_gone, vf_kept = node.vf(0, 2), node.vf(1, 2)
    assert add(node, gone, vf_gone)[0] == 0
    assert add(node, kept, vf_kept)[0] == 0
    node.ovs.vsctl("add-port", node.bridge, "foreign0")  # not ours, no such netdev: left alone
    # As after a reboot: the representor is gone and ovs-vswitchd, restarted, cannot open it.
    ip("link", "set", vf_gone.rep_name, "name", "hwol-away", netns=node.netns)
    node.ovs.restart_vswitchd()
    assert "No such device" in node.ovs.column("Interface", vf_gone.rep_name, "error")
    assert node.ovs.column("Interface", "foreign0", "error")
    assert node.ovs.column("Interface", vf_kept.rep_name, "error") == []

    gc(node, gone, kept)  # the runtime still lists both: the errored port goes all the same
    assert sorted(node.ovs.ports(node.bridge)) == sorted(["foreign0", vf_kept.rep_name])

    node.ovs.vsctl("del-port", "foreign0")
    ip("link", "set", "hwol-away", "name", vf_gone.rep_name, netns=node.netns)
    delete(node, gone)
    delete(node, kept)
    assert node.snapshot() == before
