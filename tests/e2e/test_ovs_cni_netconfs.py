"""ovs-cni's documented netconfs (docs/cni-plugin.md, docs/ovs-offload.md, its flat file's keys)
through cni-hwol on the simulated node, as an operator moving from ovs-cni's hardware-offload
mode writes them: ADD, CHECK, DEL and DEL again through the libcni client, the port and the pod's
link as ovs-cni would make them, the node as before. Adapted only where the node differs: the
bridge is the node's br-int, socket_file its private OVS, deviceID the VF the test gives."""

from __future__ import annotations

import json

import pytest

# name -> (the netconf's keys, the Port's (tag, trunks, vlan_mode), the pod's MTU or None: the VF's own)
DOCUMENTED = {
    "vlan": ({"vlan": 100}, (100, [], "access"), None),
    "trunk-and-jumbo-frames": (
        {"mtu": 9000, "trunk": [{"id": 42}, {"minID": 1000, "maxID": 1010}]},
        ([], [42, *range(1000, 1011)], "trunk"),
        9000,
    ),
    "offload-trunk": ({"trunk": [{"minID": 1050, "maxID": 1059}]}, ([], list(range(1050, 1060)), "trunk"), None),
    "flat-file-keys": ({"link_state_check_retries": 5, "link_state_check_interval": 1000}, ([], [], []), None),
    "interface-type-system": ({"interface_type": "system"}, ([], [], []), None),
    # What a Go generator of ovs-cni netconfs writes for every key it leaves unset.
    "go-zero-values": (
        {
            "vlan": 100,
            "mtu": 0,
            "ofport_request": 0,
            "link_state_check_retries": 0,
            "link_state_check_interval": 0,
            "interface_type": "",
            "configuration_path": "",
        },
        (100, [], "access"),
        None,
    ),
}


def ovs_cni_conflist(node, keys: dict) -> None:
    """The node's conflist with ovs-cni's socket_file in place of ovsdbSocket."""
    plugin = {k: v for k, v in node.plugin_conf().items() if k != "ovsdbSocket"}
    plugin.update({"socket_file": node.ovs.socket.removeprefix("unix:"), **keys})
    body = {"cniVersion": "0.4.0", "name": "hwol", "plugins": [plugin]}
    (node.netconf_dir / "hwol.conflist").write_text(json.dumps(body))


@pytest.mark.parametrize("case", DOCUMENTED)
def test_a_documented_ovs_cni_netconf_runs_as_written(node, case):
    keys, port_columns, pod_mtu = DOCUMENTED[case]
    ovs_cni_conflist(node, keys)
    vf, pod = node.vf(0, 1), node.create_pod("ovs-cni")
    before = node.snapshot()
    vf_mtu = next(mtu for name, mtu, _, _ in before["links"] if name == vf.vf_name)

    node.cnitool_run("add", pod, vf.pci)
    rep = vf.rep_name
    assert tuple(node.ovs.column("Port", rep, c) for c in ("tag", "trunks", "vlan_mode")) == port_columns
    interface = {c: node.ovs.column("Interface", rep, c) for c in ("type", "ofport_request")}
    assert interface == {"type": "", "ofport_request": []}
    link = node.pod_link(pod)
    assert (link["mtu"], "UP" in link["flags"]) == (pod_mtu or vf_mtu, True)
    node.cnitool_run("check", pod, vf.pci)

    node.cnitool_run("del", pod, vf.pci)
    assert node.snapshot() == before
    node.cnitool_run("del", pod, vf.pci)
    assert node.snapshot() == before


@pytest.mark.parametrize(
    "keys, named, del_parses",
    [
        ({"interface_type": "dpdk"}, "'interface_type' \"dpdk\"", True),
        ({"configuration_path": "/etc/cni/net.d/ovs.d/ovs.conf"}, "'configuration_path'", True),
        ({"socket_file": "ssl:127.0.0.1:6640"}, "socket_file 'ssl:127.0.0.1:6640'", False),
    ],
    ids=["interface_type-dpdk", "configuration_path", "socket_file-ssl"],
)
def test_an_ovs_cni_key_without_its_meaning_here_is_refused_naming_it(node, keys, named, del_parses):
    """Code 7 from ADD naming the key, nothing changed; DEL still parses what only ADD refuses."""
    vf, pod = node.vf(0, 2), node.create_pod("refused")
    plugin = {k: v for k, v in node.plugin_conf().items() if k != "ovsdbSocket"}
    conf = {"cniVersion": "0.4.0", "name": "hwol", **plugin, "deviceID": vf.pci}
    conf.update({"socket_file": node.ovs.socket.removeprefix("unix:"), **keys})
    before = node.snapshot()
    status, body, stderr = node.exec_plugin("ADD", conf, pod)
    assert (status, body["code"]) == (1, 7), body
    assert named in body["msg"] and "Traceback" not in stderr, (body, stderr)
    assert node.snapshot() == before
    status, body, _ = node.exec_plugin("DEL", conf, pod)
    assert (status, body and body["code"]) == ((0, None) if del_parses else (1, 7)), body
    assert node.snapshot() == before
