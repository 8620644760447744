"""The OVS port as ovs-cni users configure it, on the simulated node: access, native and trunk
VLANs, a fixed OpenFlow port number, and the bridge found from the VF's uplink."""

from __future__ import annotations

import json

from cni_hwol.ovsdb.client import OvsdbClient
from cni_hwol.ovsdb.port_options import OfportMismatch, verify_ofport
from tests.simnode.nsexec import run


def address_of(result: dict) -> str:
    return result["ips"][0]["address"].split("/")[0]


def add(node, pod_name: str, vf, **conf) -> dict:
    """ADD one pod on `vf` with these netconf keys (the conflist is rewritten; DEL does not read them)."""
    node.write_conflist("hwol", chained=False, **conf)
    pod = node.create_pod(pod_name)
    result = json.loads(node.cnitool_run("add", pod, vf.pci).stdout)
    return {"pod": pod, "vf": vf, "result": result}


def vlan_columns(node, port: str) -> tuple:
    return tuple(node.ovs.column("Port", port, column) for column in ("tag", "trunks", "vlan_mode"))


def whole_node(node, *bridges: str) -> dict:
    """The node's snapshot and the ports of the extra bridges a test made."""
    return {**node.snapshot(), **{f"ports of {b}": sorted(node.ovs.ports(b)) for b in bridges}}


def appctl(node, *args: str) -> str:
    return run(["ovs-appctl", "-t", "ovs-vswitchd", *args], env=node.ovs.env).stdout.decode()


def flooded_to(node, in_port: str, vlan: int | None = None) -> set[str]:
    """Ports a broadcast frame entering `in_port` (tagged with `vlan`) leaves by, per ofproto/trace."""
    numbers = {}
    for line in appctl(node, "dpif/show").splitlines():
        name, _, rest = line.strip().partition(" ")
        if "/" in rest and rest.split("/")[1].split(":")[0].isdigit():
            numbers[rest.split("/")[1].split(":")[0]] = name
    flow = f"in_port={in_port},dl_src=02:00:00:00:aa:01,dl_dst=ff:ff:ff:ff:ff:ff"
    if vlan is not None:
        flow += f",dl_vlan={vlan}"
    actions = appctl(node, "ofproto/trace", node.bridge, flow).split("Datapath actions:")[1].splitlines()[0]
    return {numbers[a] for a in actions.strip().split(",") if a.isdigit()} - {node.bridge}


def test_access_and_native_vlans_isolate_pods_and_trunks_forward_by_vlan(node):
    before = node.snapshot()
    a1 = add(node, "a1", node.vf(0, 0), vlan=100)
    a2 = add(node, "a2", node.vf(0, 1), vlan=100)
    c = add(node, "c", node.vf(0, 2), vlan=300)
    native = add(node, "n", node.vf(1, 0), vlan=100, trunk=[{"minID": 200, "maxID": 201}, {"id": 200}])
    trunk = add(node, "t", node.vf(1, 1), trunk=[{"id": 300}, {"id": 200}])

    assert vlan_columns(node, a1["vf"].rep_name) == (100, [], "access")
    assert vlan_columns(node, native["vf"].rep_name) == (100, [200, 201], "native-untagged")
    assert vlan_columns(node, trunk["vf"].rep_name) == ([], [200, 300], "trunk")

    # Access and native VLAN: untagged frames of the native port belong to VLAN 100.
    assert node.ping(a1["pod"], address_of(a2["result"]), count=2).returncode == 0
    assert node.ping(native["pod"], address_of(a1["result"]), count=2).returncode == 0
    assert node.ping(a1["pod"], address_of(c["result"]), count=2).returncode != 0
    assert node.ping(native["pod"], address_of(c["result"]), count=2).returncode != 0

    # Trunks (no 8021q module here, so traced): tagged frames reach their VLAN only.
    t_port = trunk["vf"].rep_name
    assert flooded_to(node, t_port, 300) == {c["vf"].rep_name}
    assert flooded_to(node, t_port, 200) == {native["vf"].rep_name}
    assert flooded_to(node, t_port, 400) == set()
    assert flooded_to(node, c["vf"].rep_name) == {t_port}
    assert flooded_to(node, a1["vf"].rep_name) == {a2["vf"].rep_name, native["vf"].rep_name}

    for attached in (a1, a2, c, native, trunk):
        node.cnitool_run("check", attached["pod"], attached["vf"].pci)
    for attached in (a1, a2, c, native, trunk):
        node.cnitool_run("del", attached["pod"])
    assert node.snapshot() == before


def test_check_fails_when_the_ports_tag_trunks_or_mode_differ(node):
    before = node.snapshot()
    attached = add(node, "p", node.vf(0, 0), vlan=100, trunk=[{"id": 200}])
    pod, vf = attached["pod"], attached["vf"]
    node.cnitool_run("check", pod, vf.pci)
    for change, restore, named in (
        ("tag=101", "tag=100", "tag 101, ADD set 100"),
        ("trunks=200,201", "trunks=200", "trunks [200, 201], ADD set [200]"),
        ("vlan_mode=trunk", "vlan_mode=native-untagged", "vlan_mode trunk, ADD set native-untagged"),
    ):
        node.ovs.vsctl("set", "Port", vf.rep_name, change)
        done = node.cnitool_run("check", pod, vf.pci, check=False)
        assert done.returncode != 0 and named in done.stderr.decode(), done.stderr
        node.ovs.vsctl("set", "Port", vf.rep_name, restore)
        node.cnitool_run("check", pod, vf.pci)
    node.cnitool_run("del", pod)
    assert node.snapshot() == before


def test_ofport_request_is_honoured_refused_when_taken_and_checked(node):
    # OpenFlow numbers are per bridge: 9 on another bridge is no conflict.
    node.ovs.add_bridge("br-other")
    node.ovs.vsctl(
        "add-port", "br-other", "elsewhere", "--", "set", "Interface", "elsewhere", "type=internal", "ofport_request=9"
    )
    before = whole_node(node, "br-other")
    first = add(node, "p1", node.vf(0, 0), ofport_request=9)
    rep = first["vf"].rep_name
    assert node.ovs.column("Interface", rep, "ofport") == 9 == node.ovs.column("Interface", "elsewhere", "ofport")
    node.cnitool_run("check", first["pod"], first["vf"].pci)
    with_first = node.snapshot()

    second = node.create_pod("p2")
    # Another Interface holding the number, by ofport_request and ofport (ours),
    # by ofport alone (a port OVS numbered), by ofport_request alone (no netdev).
    node.ovs.vsctl("add-port", node.bridge, "numbered", "--", "set", "Interface", "numbered", "type=internal")
    node.ovs.vsctl("add-port", node.bridge, "ghost", "--", "set", "Interface", "ghost", "ofport_request=11")
    numbered = node.ovs.column("Interface", "numbered", "ofport")
    for ofport, holder in ((9, rep), (numbered, "numbered"), (11, "ghost")):
        status, body, _ = node.exec_plugin(
            "ADD", node.netconf(deviceID=node.vf(0, 1).pci, ofport_request=ofport), second
        )
        assert status == 1 and body["code"] == 101, body
        assert f"'ofport_request' {ofport} is taken by OVS interface {holder}" in body["msg"]
    node.ovs.vsctl("del-port", "numbered")
    node.ovs.vsctl("del-port", "ghost")
    assert node.snapshot() == with_first

    node.ovs.vsctl("set", "Interface", rep, "ofport_request=10")
    done = node.cnitool_run("check", first["pod"], first["vf"].pci, check=False)
    assert done.returncode != 0 and f"{rep} has ofport_request 10, ADD set 9" in done.stderr.decode()
    node.cnitool_run("del", first["pod"])
    assert whole_node(node, "br-other") == before


def test_an_ofport_ovs_gave_otherwise_is_reported(node):
    for name in ("first", "second"):  # OVS gives "second" another number, silently
        node.ovs.vsctl(
            "add-port", node.bridge, name, "--", "set", "Interface", name, "type=internal", "ofport_request=20"
        )
    with OvsdbClient(node.ovs.socket) as ovsdb:
        verify_ofport(ovsdb, "first", 20)
        other = node.ovs.column("Interface", "second", "ofport")
        try:
            verify_ofport(ovsdb, "second", 20)
        except OfportMismatch as exc:
            assert str(exc) == f"OVS gave second ofport {other}, not the requested 20"
        else:
            raise AssertionError("verify_ofport accepted an ofport OVS gave otherwise")


def test_add_fails_and_rolls_back_when_ovs_does_not_give_the_requested_ofport(node):
    node.ovs._kill("ovs-vswitchd")  # the database stays: the port is recorded, never numbered
    before = node.snapshot()
    pod, vf = node.create_pod("p"), node.vf(0, 0)
    status, body, _ = node.exec_plugin("ADD", node.netconf(deviceID=vf.pci, ofport_request=9), pod)
    # Never numbered (vswitchd away, as while it reconnects after a restart): try again later.
    assert status == 1 and body["code"] == 11, body
    assert body["msg"] == f"'ofport_request' 9 not honoured: OVS gave {vf.rep_name} ofport none, not the requested 9"
    assert node.snapshot() == before


def _state_bridge(node, pod) -> str:
    path = node.state_dir / "attachments" / "hwol" / f"{pod.container_id}:net1.json"
    return json.loads(path.read_text())["bridge"]


def test_auto_bridge_is_the_bridge_of_the_pf_or_of_the_ovs_bond_holding_it(node):
    node.ovs.add_bridge("br-pf1")
    node.ovs.vsctl("add-port", "br-pf1", "enp3s0f1np1")
    node.sh("ip link add upl0b type veth peer name upl0bpeer")
    node.ovs.add_bridge("br-bond")
    node.ovs.vsctl("add-bond", "br-bond", "bond0", "enp3s0f0np0", "upl0b")
    before = whole_node(node, "br-pf1", "br-bond")

    on_pf1 = add(node, "p1", node.vf(1, 0), bridge="auto")
    on_bond = add(node, "p0", node.vf(0, 0), bridge="auto")
    assert node.ovs.ports("br-pf1") == sorted(["enp3s0f1np1", on_pf1["vf"].rep_name])
    assert node.ovs.ports("br-bond") == sorted(["bond0", on_bond["vf"].rep_name])
    assert node.ovs.ports("br-int") == []
    assert (_state_bridge(node, on_pf1["pod"]), _state_bridge(node, on_bond["pod"])) == ("br-pf1", "br-bond")

    # The uplink moves: CHECK and DEL still use the bridge ADD chose.
    node.ovs.vsctl("del-port", "br-pf1", "enp3s0f1np1")
    node.ovs.vsctl("add-port", "br-int", "enp3s0f1np1")
    for attached in (on_pf1, on_bond):
        node.cnitool_run("check", attached["pod"], attached["vf"].pci)
        node.cnitool_run("del", attached["pod"])
    node.ovs.vsctl("del-port", "br-int", "enp3s0f1np1")
    node.ovs.vsctl("add-port", "br-pf1", "enp3s0f1np1")
    assert whole_node(node, "br-pf1", "br-bond") == before


def test_auto_bridge_through_a_kernel_bond_limited_by_bridges_or_none_found(node):
    pf0, pf1 = "enp3s0f0np0", "enp3s0f1np1"
    node.sysfs.add_bond("bond1", [pf0, pf1])  # VF-LAG: both PFs in one kernel bond
    node.sh("ip link add bond1 type veth peer name bond1peer")
    node.ovs.add_bridge("br-lag")
    node.ovs.vsctl("add-port", "br-lag", "bond1")
    node.ovs.add_bridge("br-pf1")
    node.ovs.vsctl("add-port", "br-pf1", pf1)
    before = whole_node(node, "br-lag", "br-pf1")

    via_bond = add(node, "p0", node.vf(0, 0), bridge="auto")
    limited = add(node, "p1", node.vf(1, 0), bridge="auto", bridges=["br-lag"])  # not PF1's own br-pf1
    assert node.ovs.ports("br-lag") == sorted(["bond1", via_bond["vf"].rep_name, limited["vf"].rep_name])
    with_two = whole_node(node, "br-lag", "br-pf1")

    refused = node.create_pod("p2")
    status, body, _ = node.exec_plugin(
        "ADD", node.netconf(deviceID=node.vf(1, 1).pci, bridge="auto", bridges=["br-int"]), refused
    )
    assert status == 1 and body["code"] == 7, body
    assert f"among the allowed 'bridges' br-int holding the uplink of VF {node.vf(1, 1).pci}" in body["msg"]
    assert f"(tried {pf1} on br-pf1, bond1 on br-lag)" in body["msg"]
    node.ovs.vsctl("del-port", "br-lag", "bond1")
    status, body, _ = node.exec_plugin("ADD", node.netconf(deviceID=node.vf(0, 1).pci, bridge="auto"), refused)
    assert status == 1 and body["code"] == 7, body
    assert f"(tried {pf0} on none, bond1 on none)" in body["msg"]
    node.ovs.vsctl("add-port", "br-lag", "bond1")
    assert whole_node(node, "br-lag", "br-pf1") == with_two

    for attached in (via_bond, limited):
        node.cnitool_run("check", attached["pod"], attached["vf"].pci)
        node.cnitool_run("del", attached["pod"])
    assert whole_node(node, "br-lag", "br-pf1") == before


def test_status_with_auto_bridge_asks_only_that_ovsdb_answers(node):
    def status(bridge: str) -> tuple:
        return node.exec_plugin("STATUS", node.netconf(bridge=bridge, cni_version="1.1.0"))[:2]

    code, body = status("br-none")
    assert code == 1 and body["code"] == 50, body
    node.ovs.vsctl("del-br", node.bridge)
    assert status("auto") == (0, None)
    node.ovs.stop_database()
    code, body = status("auto")
    assert code == 1 and body["code"] == 50, body
