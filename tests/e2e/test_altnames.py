"""Altnames: the kernel refuses to move a netdev into a namespace where another
link has one of its names or altnames. ADD drops the VF's conflicting altname for
the move into the pod, DEL for the move home, and the VF gets its own altnames
back (from the state) wherever no other link took them meanwhile.

The VFs here are veths; altnames are set with `ip link property`, as udev sets
a real VF's path names.
"""

from __future__ import annotations

import copy
import json

import pytest

from cni_hwol.cni import errors
from tests.simnode.nsexec import ip

SHARED = "vfalt0"  # the altname that ends up wanted twice
KEPT = "vf-altname-longer-than-an-ifname"  # over 15 bytes: looked up as an altname, not an ifname


def altnames(netns: str) -> dict[str, list[str]]:
    """Each link's altnames in a namespace, sorted (the kernel lists them in the order they were added)."""
    return {
        entry["ifname"]: sorted(entry.get("altnames", []))
        for entry in json.loads(ip("-j", "link", "show", netns=netns))
    }


def whole_node(node) -> dict:
    return {**node.snapshot(), "altnames": altnames(node.netns)}


def pod_links(node, pod) -> dict:
    """The pod's links by name, with their altnames and addresses."""
    return {entry["ifname"]: entry for entry in json.loads(ip("-j", "addr", "show", netns=pod.netns))}


def give_altnames(netns: str, link: str, *names: str) -> None:
    for name in names:
        ip("link", "property", "add", "dev", link, "altname", name, netns=netns)


@pytest.mark.parametrize("pod_has", ["an-altname", "a-link-name", "the-ifname"])
def test_add_drops_the_vf_altname_the_pod_has_and_del_gives_it_back(node, pod_has):
    vf = node.vf(0, 1)
    pod = node.create_pod("p")
    shared = "net1" if pod_has == "the-ifname" else SHARED  # CNI_IFNAME is net1
    give_altnames(node.netns, vf.vf_name, shared, KEPT)
    if pod_has == "an-altname":
        ip("link", "add", "podl0", "type", "veth", "peer", "name", "podl0p", netns=pod.netns)
        give_altnames(pod.netns, "podl0", SHARED)
    elif pod_has == "a-link-name":
        ip("link", "add", SHARED, "type", "veth", "peer", "name", "podl0p", netns=pod.netns)
    before, pod_before = whole_node(node), altnames(pod.netns)

    node.cnitool_run("add", pod, vf.pci)
    # In the pod the VF has every altname but the one the pod (or its own new name) has.
    assert altnames(pod.netns) == {**pod_before, "net1": [KEPT]}
    assert whole_node(node)["altnames"] == {k: v for k, v in before["altnames"].items() if k != vf.vf_name}

    node.cnitool_run("del", pod, vf.pci)
    assert whole_node(node) == before  # the VF home with both altnames
    assert altnames(pod.netns) == pod_before


def test_del_brings_the_vf_home_when_the_host_took_its_altname(node):
    vf = node.vf(1, 2)
    pod = node.create_pod("p")
    give_altnames(node.netns, vf.vf_name, SHARED, KEPT)
    node.sh("ip link add hostl0 type veth peer name hostl0p")
    before = whole_node(node)
    node.cnitool_run("add", pod, vf.pci)
    assert altnames(pod.netns)["net1"] == sorted([SHARED, KEPT])  # nothing in the pod had them

    give_altnames(node.netns, "hostl0", SHARED)  # the host takes SHARED while the VF is away
    node.cnitool_run("del", pod, vf.pci)
    expected = copy.deepcopy(before)
    expected["altnames"][vf.vf_name] = [KEPT]  # SHARED stays with the link that took it
    expected["altnames"]["hostl0"] = [SHARED]
    assert whole_node(node) == expected
    assert "net1" not in pod_links(node, pod)
    node.cnitool_run("del", pod, vf.pci)  # a retried DEL has nothing left to do
    assert whole_node(node) == expected


def test_a_failed_add_gives_the_vf_back_the_altname_it_dropped(node):
    vf = node.vf(0, 2)
    pod = node.create_pod("p")
    give_altnames(node.netns, vf.vf_name, SHARED)
    ip("link", "add", "podl0", "type", "veth", "peer", "name", "podl0p", netns=pod.netns)
    give_altnames(pod.netns, "podl0", SHARED)
    before, pod_before = whole_node(node), pod_links(node, pod)
    # The bridge is looked up after the VF moved: the undo brings it home.
    status, body, _ = node.exec_plugin("ADD", {**node.netconf(bridge="br-none"), "deviceID": vf.pci}, pod)
    assert (status, body["code"]) == (1, errors.OVS_ERROR), body
    assert "br-none does not exist" in body["msg"]
    assert whole_node(node) == before
    assert pod_links(node, pod) == pod_before


def test_del_reads_a_state_file_written_before_altnames_were_recorded(node):
    vf = node.vf(1, 1)
    pod = node.create_pod("p")
    give_altnames(node.netns, vf.vf_name, KEPT)
    before = whole_node(node)
    node.cnitool_run("add", pod, vf.pci)
    (path,) = (node.state_dir / "attachments").rglob("*.json")
    body = json.loads(path.read_text())
    assert body.pop("vf_altnames") == [KEPT]
    path.write_text(json.dumps(body))  # as an older cni-hwol wrote it
    node.cnitool_run("del", pod, vf.pci)
    assert whole_node(node) == before
