"""Inside the VM (tests/kernel/run.sh): the plugin against a real kernel's devlink,
netdevsim switchdev representors and the OVS kernel datapath with hw-offload.

netdevsim gives devlink instances with pcivf ports and representor netdevs but no
VF netdevs or PCI functions, so the VF side is a dummy netdev described by a fake
sysfs tree whose PF netdev is netdevsim's physical port. The tree carries no
representor attributes: only devlink can answer the representor lookup.

The node is tests/kernel/knode.py; its fixtures (one node per VM session, a pod
netns per test) are in tests/kernel/conftest.py. Topic files
tests/kernel/test_guest_<topic>.py share them; guest.sh runs every test_guest*.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

if os.environ.get("CNI_HWOL_KERNEL_GUEST") != "1":
    pytest.skip("runs inside the VM booted by tests/kernel/run.sh", allow_module_level=True)

from cni_hwol.cni.errors import DEVICE_ERROR  # noqa: E402
from cni_hwol.hw.devlink import FLAVOUR_PCI_VF, Devlink  # noqa: E402
from cni_hwol.linux.ethtool import enable_feature, feature_state  # noqa: E402
from tests.kernel.knode import LEGACY, SWITCHDEV, VFS, altnames, give_altnames, sh  # noqa: E402


def test_devlink_ports_and_eswitch_modes_decode(knode):
    with Devlink() as devlink:
        assert not devlink.absent
        ports = devlink.ports()
        for dev in (*SWITCHDEV, LEGACY):
            assert devlink.eswitch_mode(f"netdevsim/netdevsim{dev}") == ("legacy" if dev == LEGACY else "switchdev")
    vf_ports = {(p.handle, p.vf_number): p for p in ports if p.flavour == FLAVOUR_PCI_VF}
    for dev in SWITCHDEV:
        for vf in range(VFS):
            port = vf_ports[(f"netdevsim/netdevsim{dev}", vf)]
            assert (port.pf_number, port.netdev) == (0, f"eni{dev}npf0vf{vf}")


def test_add_attaches_the_devlink_representor_to_a_kernel_datapath_bridge(knode, pod):
    device = knode.vfs[(1, 2)]
    before = knode.snapshot(pod)
    vswitchd_log = knode.ovs.dir / "ovs-vswitchd.log"
    log_start = vswitchd_log.stat().st_size
    done = knode.cnitool("add", pod, device)
    assert done.returncode == 0, done.stderr
    rep = json.loads(done.stdout)["interfaces"][0]["name"]
    assert rep == "eni1npf0vf2"
    assert "representor eni1npf0vf2 (devlink)" in knode.log()  # not the sysfs fallback
    assert rep in knode.ovs.ports("br-int")
    assert feature_state(rep, "hw-tc-offload") == "on"  # the plugin turned it on

    def vswitchd_log_since_add() -> str:
        with open(vswitchd_log) as f:
            f.seek(log_start)
            return f.read()

    # OVS's tc flow API took the port: its ingress qdisc, and the port's own log
    # line written after this ADD (other ports get linux_tc too).
    assigned = f"{rep}: Assigned flow API 'linux_tc'."
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        "ingress" in sh("tc", "qdisc", "show", "dev", rep) and assigned in vswitchd_log_since_add()
    ):
        time.sleep(0.1)
    assert "ingress" in sh("tc", "qdisc", "show", "dev", rep)
    assert assigned in vswitchd_log_since_add()
    assert sh("ip", "-n", pod, "-br", "link", "show", "net1").startswith("net1")
    done = knode.cnitool("del", pod, device)
    assert done.returncode == 0, done.stderr
    assert rep not in knode.ovs.ports("br-int")
    assert sh("ip", "-br", "link", "show", "vf1x2").startswith("vf1x2")  # home under its own name
    assert feature_state(rep, "hw-tc-offload") == "off"  # DEL turned it off again
    assert knode.snapshot(pod) == before


def vf_as_pf_reports(pf: str, vf: int) -> dict:
    """The VF's entry in the PF's IFLA_VFINFO_LIST, as iproute2 prints it."""
    (entry,) = [v for v in json.loads(sh("ip", "-j", "link", "show", pf))[0]["vfinfo_list"] if v["vf"] == vf]
    return {key: entry.get(key) for key in ("address", "spoofchk", "trust", "link_state")}


def test_vf_settings_through_the_pf_are_set_checked_and_restored(knode, pod):
    device = knode.vfs[(1, 3)]
    settings = {"mac": "02:00:00:00:13:03", "spoofchk": "off", "trust": "on", "link_state": "disable"}
    sh("ip", "link", "set", "eni1np1", "vf", "3", "spoofchk", "on")  # so "off" is a change
    before = vf_as_pf_reports("eni1np1", 3)
    assert before == {"address": "00:00:00:00:00:00", "spoofchk": True, "trust": False, "link_state": "auto"}
    snapshot = knode.snapshot(pod)
    status, result, stderr = knode.exec_plugin("ADD", pod, device, **settings)
    assert status == 0, stderr
    assert vf_as_pf_reports("eni1np1", 3) == {
        "address": "02:00:00:00:13:03",
        "spoofchk": False,
        "trust": True,
        "link_state": "disable",
    }
    status, _, stderr = knode.exec_plugin("CHECK", pod, device, prevResult=result, **settings)
    assert status == 0, stderr
    sh("ip", "link", "set", "eni1np1", "vf", "3", "trust", "off")  # someone changed it behind our back
    status, body, _ = knode.exec_plugin("CHECK", pod, device, prevResult=result, **settings)
    assert status != 0 and body["code"] == 100 and "trust False, ADD set True" in body["msg"]
    status, _, stderr = knode.exec_plugin("DEL", pod, device, **settings)
    assert status == 0, stderr
    assert vf_as_pf_reports("eni1np1", 3) == before
    assert knode.snapshot(pod) == snapshot


def port_rate(port: str) -> dict:
    """The devlink rate of a port as devlink(8) reads it (bytes per second; 0 when unset)."""
    (rate,) = json.loads(sh("devlink", "-j", "port", "function", "rate", "show", port))["rate"].values()
    return {key: rate.get(key, 0) for key in ("tx_share", "tx_max")}


def test_tx_rates_and_bandwidth_go_to_the_vf_devlink_port_and_back(knode, pod):
    device, port = knode.vfs[(2, 2)], "netdevsim/netdevsim2/130"  # netdevsim numbers VF ports from 128
    assert port_rate(port) == {"tx_share": 0, "tx_max": 0}
    snapshot = knode.snapshot(pod)
    rates = {"min_tx_rate": 10, "max_tx_rate": 100}
    status, result, stderr = knode.exec_plugin("ADD", pod, device, **rates)
    assert status == 0, stderr
    assert port_rate(port) == {"tx_share": 1250000, "tx_max": 12500000}  # Mbps x 125000
    status, _, stderr = knode.exec_plugin("CHECK", pod, device, prevResult=result, **rates)
    assert status == 0, stderr
    sh("devlink", "port", "function", "rate", "set", port, "tx_max", "200mbit")
    status, body, _ = knode.exec_plugin("CHECK", pod, device, prevResult=result, **rates)
    assert status != 0 and body["code"] == 100 and "tx_max 25000000, ADD set 12500000" in body["msg"]
    status, _, stderr = knode.exec_plugin("DEL", pod, device, **rates)
    assert status == 0, stderr
    assert port_rate(port) == {"tx_share": 0, "tx_max": 0}
    # The bandwidth capability: egressRate in bits per second, the pod's egress.
    bandwidth = {"runtimeConfig": {"bandwidth": {"egressRate": 80_000_000, "egressBurst": 80_000_000}}}
    status, _, stderr = knode.exec_plugin("ADD", pod, device, **bandwidth)
    assert status == 0, stderr
    assert port_rate(port) == {"tx_share": 0, "tx_max": 10_000_000}
    status, _, stderr = knode.exec_plugin("DEL", pod, device, **bandwidth)
    assert status == 0, stderr
    assert port_rate(port) == {"tx_share": 0, "tx_max": 0}
    assert knode.snapshot(pod) == snapshot


def test_same_vf_number_on_two_pfs_maps_to_each_pfs_representor(knode):
    names = []
    for dev in SWITCHDEV:
        pod = f"twin{dev}"
        sh("ip", "netns", "add", pod)
        try:
            done = knode.cnitool("add", pod, knode.vfs[(dev, 1)])
            assert done.returncode == 0, done.stderr
            names.append(json.loads(done.stdout)["interfaces"][0]["name"])
            assert knode.cnitool("del", pod, knode.vfs[(dev, 1)]).returncode == 0
        finally:
            sh("ip", "netns", "del", pod, check=False)
    assert names == ["eni1npf0vf1", "eni2npf0vf1"]


def test_a_pf_in_legacy_mode_is_refused_with_the_fix(knode, pod):
    before = knode.snapshot(pod)
    status, body, stderr = knode.exec_plugin("ADD", pod, knode.vfs[(LEGACY, 0)])
    assert (status, body.get("code")) == (1, DEVICE_ERROR), (body, stderr)
    assert body["msg"] == (
        "the eswitch of PF eni3np1 (netdevsim/netdevsim3) is in legacy mode: switch it with "
        "'devlink dev eswitch set netdevsim/netdevsim3 mode switchdev' before scheduling offload pods"
    )
    assert knode.snapshot(pod) == before


def test_altnames_in_both_directions_on_this_kernel(knode, pod):
    """The pod has one of the VF's altnames (ADD drops it for the move); the host
    takes another while the VF is in the pod (DEL drops that one for the move home
    and gives the first back). This kernel's checks may differ from the e2e host's."""
    device, vf = knode.vfs[(2, 0)], "vf2x0"
    in_pod, taken_by_host = "vfalt0", "vf-altname-longer-than-an-ifname"
    give_altnames(vf, in_pod, taken_by_host)
    sh("ip", "-n", pod, "link", "add", "podl0", "type", "dummy")
    give_altnames("podl0", in_pod, netns=pod)
    before = knode.snapshot(pod)
    try:
        done = knode.cnitool("add", pod, device)
        assert done.returncode == 0, done.stderr
        assert altnames(pod) == {"lo": [], "podl0": [in_pod], "net1": [taken_by_host]}
        sh("ip", "link", "add", "hostl0", "type", "dummy")
        give_altnames("hostl0", taken_by_host)
        done = knode.cnitool("del", pod, device)
        assert done.returncode == 0, done.stderr
        after = knode.snapshot(pod)
        assert altnames()[vf] == [in_pod] and altnames()["hostl0"] == [taken_by_host]
        sh("ip", "link", "del", "hostl0")
        give_altnames(vf, taken_by_host)  # what the host took, given back by hand
        assert knode.snapshot(pod) == before, after
    finally:
        sh("ip", "link", "del", "hostl0", check=False)
        for name in altnames().get(vf, []):
            sh("ip", "link", "property", "del", "dev", vf, "altname", name)


def tool(knode, *args: str) -> tuple[int, dict]:
    done = subprocess.run(
        [
            str(knode.bin_dir / "cni-hwol"),
            *args,
            "--json",
            "--sysfs-root",
            str(knode.sysfs.root),
            "--ovsdb",
            knode.ovs.socket,
            "--state-dir",
            str(knode.workdir / "state"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


def test_doctor_reads_the_eswitch_through_devlink(knode):
    enable_feature("eni1np1", "hw-tc-offload")
    _, report = tool(knode, "doctor", "--pf", "eni1np1", "--cni-path", f"{knode.bin_dir}:/usr/lib/cni")
    found = {c["name"]: c for c in report["checks"]}
    assert found["eni1np1: eswitch in switchdev mode"] == {
        "name": "eni1np1: eswitch in switchdev mode",
        "ok": True,
        "detail": "devlink netdevsim/netdevsim1: switchdev",
        "fix": "",
        "warning": False,
    }
    assert found["OVS hw-offload"]["ok"]
    assert found["eni1np1: every VF has a representor"]["ok"]
    _, report = tool(knode, "doctor", "--pf", "eni3np1")
    legacy = {c["name"]: c for c in report["checks"]}["eni3np1: eswitch in switchdev mode"]
    assert not legacy["ok"] and legacy["detail"] == "devlink netdevsim/netdevsim3: legacy"


def test_offload_status_on_the_kernel_datapath(knode, pod):
    device = knode.vfs[(2, 3)]
    assert knode.cnitool("add", pod, device).returncode == 0
    try:
        _, report = tool(knode, "offload-status", "--all", "--ovs-rundir", str(knode.ovs.dir))
        entry = report["attachments"][0]
        assert entry["representor"] == "eni2npf0vf3" and entry["ofport"] > 0
        assert {c["name"]: c for c in report["checks"]}["ovs-vswitchd reachable"]["ok"]
    finally:
        knode.cnitool("del", pod, device)
