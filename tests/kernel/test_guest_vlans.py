"""Inside the VM (tests/kernel/run.sh): the OVS port's VLANs with real 802.1Q traffic,
and `"bridge": "auto"` through a real kernel bond of netdevsim ports.

netdevsim's VFs have no datapath, so the VLAN test wires VFs as the simulated node
does: a veth end is the VF (described by a fake sysfs tree of this test's own), its
peer the representor (described by that tree's phys_port_name, since netdevsim's
devlink does not know it), on a bridge of the OVS kernel datapath. The pods put
8021q VLAN interfaces on their VF, as a pod using a trunk port does.

The bond test enslaves two netdevsim PF ports of devices of its own to a kernel
bond; the fake sysfs tree copies the master link the real /sys shows for the PF
(the plugin reads its sysfsRoot only). Each test removes all it created.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

if os.environ.get("CNI_HWOL_KERNEL_GUEST") != "1":
    pytest.skip("runs inside the VM booted by tests/kernel/run.sh", allow_module_level=True)

from cni_hwol.cni.errors import INVALID_NETCONF  # noqa: E402
from cni_hwol.hw.devlink import Devlink  # noqa: E402
from tests.kernel.knode import sh  # noqa: E402
from tests.simnode.fake_sysfs import FakeSysfs  # noqa: E402


@contextmanager
def own_sysfs() -> Iterator[FakeSysfs]:
    root = Path(tempfile.mkdtemp(prefix="hwol-ksys-"))
    try:
        yield FakeSysfs(root / "sys")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def pods(*names: str) -> Iterator[list[str]]:
    made = [f"{name}{time.monotonic_ns() % 10**6}" for name in names]
    try:
        for pod in made:
            sh("ip", "netns", "add", pod)
        yield made
    finally:
        for pod in made:
            sh("ip", "netns", "del", pod, check=False)


@contextmanager
def kernel_bridge(knode, *names: str) -> Iterator[None]:
    try:
        for name in names:
            knode.ovs.add_bridge(name, datapath="system")
        yield
    finally:
        for name in names:
            knode.ovs.vsctl("--if-exists", "del-br", name, check=False)


def add_vlan_link(pod: str, vlan: int, address: str) -> None:
    """An 802.1Q interface net1.<vlan> on the pod's VF, with an address of that VLAN's subnet."""
    sh("ip", "-n", pod, "link", "add", "link", "net1", "name", f"net1.{vlan}", "type", "vlan", "id", str(vlan))
    sh("ip", "-n", pod, "addr", "add", f"{address}/24", "dev", f"net1.{vlan}")
    sh("ip", "-n", pod, "link", "set", f"net1.{vlan}", "up")


def pings(pod: str, address: str) -> bool:
    done = subprocess.run(
        ["ip", "netns", "exec", pod, "ping", "-c", "2", "-W", "2", "-q", address], capture_output=True, check=False
    )
    return done.returncode == 0


def pod_address(result: dict) -> str:
    return result["ips"][0]["address"].split("/")[0]


VLAN_PF = "0000:0a:00.0"
VLAN_SWITCH_ID = "00000000000000aa"


def wire_veth_vfs(sysfs: FakeSysfs, count: int) -> dict[int, str]:
    """A PF (a dummy) with `count` VFs: veth kvvf<N> as the VF, kvrep<N> its sysfs representor."""
    base = 0x0B << 8
    sh("ip", "link", "add", "kvpf0", "type", "dummy")
    sysfs.add_pf(VLAN_PF, "kvpf0", VLAN_SWITCH_ID, base, count)
    vfs = {}
    for vf in range(count):
        vfs[vf] = pci = sysfs.add_vf(VLAN_PF, vf, base, f"kvvf{vf}")
        sysfs.add_representor(VLAN_PF, f"kvrep{vf}", VLAN_SWITCH_ID, f"pf0vf{vf}")
        sh("ip", "link", "add", f"kvvf{vf}", "type", "veth", "peer", "name", f"kvrep{vf}")
        sh("ip", "link", "set", f"kvrep{vf}", "up")
        sh("ip", "link", "set", f"kvvf{vf}", "alias", pci)  # the simulated node's stand-in for a PCI parent
    return vfs


def unwire_veth_vfs(count: int) -> None:
    for vf in range(count):
        sh("ip", "link", "del", f"kvvf{vf}", check=False)
    sh("ip", "link", "del", "kvpf0", check=False)


def test_trunk_and_native_vlans_carry_tagged_traffic_between_8021q_interfaces(knode):
    """Trunk port a carries VLANs 10 and 20-21, native port b VLAN 5 untagged and 10, 21, 30
    tagged; c and d are access ports of VLANs 5 and 6. Tagged frames pass where both trunks
    allow the VLAN, untagged ones only within an access VLAN and its native port."""
    port_options = {
        "a": {"trunk": [{"id": 10}, {"minID": 20, "maxID": 21}]},
        "b": {"vlan": 5, "trunk": [{"id": 10}, {"id": 21}, {"id": 30}]},
        "c": {"vlan": 5},
        "d": {"vlan": 6},
    }
    attached: dict[str, str] = {}  # pod -> its VF, from ADD until DEL
    with own_sysfs() as sysfs, kernel_bridge(knode, "br-kvlan"), pods(*(f"kv{key}" for key in port_options)) as names:
        # A veth representor's Interface goes up in OVSDB once its peer (the VF) is up in
        # the pod: under TCG on a loaded machine that can take longer than the default 3 s.
        readiness = {"link_state_check_retries": 60, "link_state_check_interval": 500}
        common = {"bridge": "br-kvlan", "sysfsRoot": str(sysfs.root), **readiness}
        try:
            vfs = wire_veth_vfs(sysfs, len(names))
            before = knode.snapshot(*names)
            results = {}
            for index, (key, pod) in enumerate(zip(port_options, names, strict=True)):
                status, results[key], stderr = knode.exec_plugin("ADD", pod, vfs[index], **common, **port_options[key])
                assert status == 0, (key, results[key], stderr)
                attached[pod] = vfs[index]
            assert knode.ovs.ports("br-kvlan") == [f"kvrep{vf}" for vf in range(4)]
            pod = dict(zip(port_options, names, strict=True))
            for vlan in (10, 20, 21, 30):
                add_vlan_link(pod["a"], vlan, f"10.78.{vlan}.1")
                add_vlan_link(pod["b"], vlan, f"10.78.{vlan}.2")
            assert pings(pod["a"], "10.78.10.2")  # both trunks carry 10
            assert pings(pod["b"], "10.78.21.1")  # 21: a's range 20-21, b's single id
            assert not pings(pod["a"], "10.78.20.2")  # b does not carry 20
            assert not pings(pod["b"], "10.78.30.1")  # a does not carry 30
            assert pings(pod["b"], pod_address(results["c"]))  # b's untagged frames are its native VLAN 5
            assert not pings(pod["c"], pod_address(results["d"]))  # access VLANs 5 and 6
            assert not pings(pod["a"], pod_address(results["c"]))  # a trunk without native VLAN: no untagged
            assert [knode.ovs.column("Port", f"kvrep{vf}", "vlan_mode") for vf in range(4)] == [
                "trunk",
                "native-untagged",
                "access",
                "access",
            ]
            # The 8021q links the pods made on their VFs stay until DEL: DEL deletes them before
            # the VF goes home (the kernel would keep them in the pod, bound to the VF).
            for index, (key, pod_name) in enumerate(zip(port_options, names, strict=True)):
                status, body, stderr = knode.exec_plugin(
                    "CHECK", pod_name, vfs[index], **common, **port_options[key], prevResult=results[key]
                )
                assert status == 0, (key, body, stderr)
                status, body, stderr = knode.exec_plugin("DEL", pod_name, vfs[index], **common, **port_options[key])
                assert status == 0, (key, body, stderr)
                del attached[pod_name]
            assert knode.ovs.ports("br-kvlan") == []
            assert knode.snapshot(*names) == before
        finally:
            for pod_name, vf_pci in attached.items():  # a failed test leaves no attachment behind
                knode.exec_plugin("DEL", pod_name, vf_pci, **common)
            unwire_veth_vfs(len(names))


BOND_DEVICES = (4, 5)  # netdevsim devices of this test, beside the knode's 1-3


def add_netdevsim(dev: int, vfs: int) -> str:
    Path("/sys/bus/netdevsim/new_device").write_text(f"{dev} 1")
    port = f"eni{dev}np1"
    deadline = time.monotonic() + 10
    while not Path(f"/sys/class/net/{port}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if vfs:
        Path(f"/sys/bus/netdevsim/devices/netdevsim{dev}/sriov_numvfs").write_text(str(vfs))
        with Devlink() as devlink:
            devlink.set_eswitch_mode(f"netdevsim/netdevsim{dev}", "switchdev")
    return port


def mirror_bond_master(sysfs: FakeSysfs, slaves: list[str]) -> str:
    """The fake tree's class/net/<PF>/master as the real /sys has it, for a bond the kernel made."""
    (master,) = {os.path.basename(os.readlink(f"/sys/class/net/{slave}/master")) for slave in slaves}
    assert Path(f"/sys/class/net/{master}/bonding").is_dir()
    sysfs.add_bond(master, slaves)
    return master


def test_auto_bridge_is_the_bridge_of_a_kernel_bond_of_netdevsim_ports(knode, pod):
    device, vf_pci = BOND_DEVICES[0], "0000:0d:00.0"
    attached = False
    with own_sysfs() as sysfs, kernel_bridge(knode, "br-kbond", "br-kbond2"):
        conf = {"bridge": "auto", "sysfsRoot": str(sysfs.root)}
        try:
            slaves = [add_netdevsim(dev, vfs=2 if dev == device else 0) for dev in BOND_DEVICES]
            base = 0x0D << 8
            for dev, slave in zip(BOND_DEVICES, slaves, strict=True):
                sysfs.add_pf(f"0000:0{dev}:00.0", slave, f"{dev:016x}", base, 2 if dev == device else 0)
            sh("ip", "link", "add", "kvbondvf", "type", "dummy")
            assert sysfs.add_vf(f"0000:0{device}:00.0", 0, base, "kvbondvf") == vf_pci
            sh("ip", "link", "add", "kbond0", "type", "bond", "mode", "active-backup")
            # no IPv6 link-local: the kernel adds it a while after "up", racing the snapshots
            sh("ip", "link", "set", "kbond0", "addrgenmode", "none")
            for slave in slaves:
                sh("ip", "link", "set", slave, "master", "kbond0")
            sh("ip", "link", "set", "kbond0", "up")
            assert mirror_bond_master(sysfs, slaves) == "kbond0"
            knode.ovs.vsctl("add-port", "br-kbond", "kbond0")
            before = knode.snapshot(pod)

            status, body, _ = knode.exec_plugin("ADD", pod, vf_pci, **conf, bridges=["br-int", "br-kbond2"])
            assert (status, body.get("code")) == (1, INVALID_NETCONF), body
            assert body["msg"] == (
                '"bridge": "auto" found no OVS bridge among the allowed \'bridges\' br-int, br-kbond2 holding '
                f"the uplink of VF {vf_pci} (tried {slaves[0]} on none, kbond0 on br-kbond)"
            )
            assert knode.snapshot(pod) == before

            status, result, stderr = knode.exec_plugin("ADD", pod, vf_pci, **conf)
            assert status == 0, (result, stderr)
            attached = True
            rep = result["interfaces"][0]["name"]
            assert rep == f"eni{device}npf0vf0"  # netdevsim's devlink representor
            assert knode.ovs.ports("br-kbond") == sorted(["kbond0", rep])
            knode.ovs.vsctl("del-port", "br-kbond", "kbond0")  # the uplink moves after ADD
            knode.ovs.vsctl("add-port", "br-kbond2", "kbond0")
            status, body, stderr = knode.exec_plugin("CHECK", pod, vf_pci, **conf, prevResult=result)
            assert status == 0, (body, stderr)  # against the recorded bridge
            status, body, stderr = knode.exec_plugin("DEL", pod, vf_pci, **conf)
            assert status == 0, (body, stderr)
            attached = False
            assert (knode.ovs.ports("br-kbond"), knode.ovs.ports("br-kbond2")) == ([], ["kbond0"])
            assert knode.snapshot(pod) == before
        finally:
            if attached:  # a failed test leaves no attachment behind
                knode.exec_plugin("DEL", pod, vf_pci, **conf)
            sh("ip", "link", "del", "kbond0", check=False)
            sh("ip", "link", "del", "kvbondvf", check=False)
            for dev in BOND_DEVICES:
                if Path(f"/sys/bus/netdevsim/devices/netdevsim{dev}").exists():
                    Path("/sys/bus/netdevsim/del_device").write_text(str(dev))
