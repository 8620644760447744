"""Faults during ADD and DEL: after each, DEL (or GC) leaves the node exactly as
before, and a new ADD of the same VF works.

The pod asks for MTU 9000 and a MAC of its own, so the VF and its representor
come home changed and the node comparison proves they were restored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cni_hwol.cni import errors
from cni_hwol.crashpoints import ADD_STEPS, ENV
from cni_hwol.ovsdb.ports import CONTAINER_ID_KEY, STALE_KEY
from tests.simnode import leftovers

REPO = Path(__file__).resolve().parents[2]

POD_MAC = "02:aa:bb:cc:dd:ee"
POD_MTU = 9000
# Crash points after which the VF and its representor carry the pod's settings.
CONFIGURED = ADD_STEPS[ADD_STEPS.index("vf-configured") :]


def pod_conf(node, **overrides) -> dict:
    """A netconf asking for a MAC and MTU that are not the VF's own."""
    return node.netconf(mtu=POD_MTU, runtimeConfig={"mac": POD_MAC}, **overrides)


def add(node, conf, pod, vf, **env):
    return node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, pod, env_overrides=env)


def delete(node, conf, pod) -> None:
    status, body, stderr = node.exec_plugin("DEL", conf, pod)
    assert status == 0, (body, stderr)


def attached(node, pf: int, index: int) -> tuple:
    """The node's snapshot, then a pod attached to VF (pf, index) with pod_conf: (before, conf, pod, vf)."""
    before = node.snapshot()
    conf = pod_conf(node)
    pod, vf = node.create_pod("p"), node.vf(pf, index)
    assert add(node, conf, pod, vf)[0] == 0
    return before, conf, pod, vf


def without_links(snapshot: dict, names: set[str]) -> dict:
    """A node snapshot as it is once the named links are destroyed."""
    return {
        **snapshot,
        "links": [link for link in snapshot["links"] if link[0] not in names],
        "ipv6_disabled": {k: v for k, v in snapshot["ipv6_disabled"].items() if k not in names},
        "addresses": [a for a in snapshot["addresses"] if a[0] not in names],
    }


@pytest.mark.parametrize("step", ADD_STEPS)
@pytest.mark.parametrize("recovery", ["DEL", "GC"])
def test_plugin_killed_after_each_add_step(node, step, recovery):
    before = node.snapshot()
    conf = pod_conf(node, cni_version="1.1.0")
    pod, vf = node.create_pod("p"), node.vf(0, 1)
    status, _, _ = add(node, conf, pod, vf, **{ENV: step})
    assert status == -9  # SIGKILL
    if step in CONFIGURED:  # the restoration below is not vacuous
        link = node.pod_link(pod)
        assert (link["address"], link["mtu"]) == (POD_MAC, POD_MTU)
        assert node.ipv6_disabled()[vf.rep_name] == "1"
    if recovery == "DEL":
        status, body, stderr = node.exec_plugin("DEL", conf, pod)
    else:
        status, body, stderr = node.exec_plugin("GC", {**conf, "cni.dev/valid-attachments": []})
    assert status == 0, (body, stderr)
    assert node.snapshot() == before
    status, body, stderr = add(node, conf, pod, vf)
    assert status == 0, (body, stderr)
    delete(node, conf, pod)
    assert node.snapshot() == before


def test_add_after_a_crash_without_del_cleans_up_first(node):
    before = node.snapshot()
    conf = pod_conf(node)
    pod, vf = node.create_pod("p"), node.vf(1, 0)
    assert add(node, conf, pod, vf, **{ENV: "ovs-attached"})[0] == -9
    status, result, stderr = add(node, conf, pod, vf)  # kubelet retries ADD
    assert status == 0, stderr
    assert node.ovs.ports("br-int") == [vf.rep_name]
    assert len(list(node.ipam_dir.rglob("192.168.*"))) == 1  # the first lease was released
    delete(node, conf, pod)
    assert node.snapshot() == before


def without(snapshot: dict, *keys: str) -> dict:
    """The snapshot without these keys, and without the bridge's own link: OVS sets
    its MTU from its ports' when it reconfigures, which it does once the port goes."""
    kept = {k: v for k, v in snapshot.items() if k not in keys}
    kept["links"] = [link for link in snapshot["links"] if link[0] != "br-int"]
    return kept


def test_add_with_ofport_request_replaces_its_representors_stale_port_holding_that_number(node):
    # Found by the chaos soak: the stale port of this representor (DEL ran while OVSDB was down,
    # another ADD marked it) still had the number, and ADD answered 101 "taken by" its own name.
    before = node.snapshot()
    conf = node.netconf(ofport_request=9)
    pod, vf = node.create_pod("p"), node.vf(0, 2)
    assert add(node, conf, pod, vf)[0] == 0
    node.ovs.stop_database()
    assert node.exec_plugin("DEL", conf, pod)[0] == 0
    node.ovs.start_database()
    node.ovs.vsctl("init")  # waits for ovs-vswitchd to reconnect
    other_pod, other = node.create_pod("q"), node.vf(1, 2)
    assert add(node, node.netconf(), other_pod, other)[0] == 0  # marks the stale port, drops its record
    ids = node.ovs.column("Port", vf.rep_name, "external_ids")
    assert ids[STALE_KEY] and ids[CONTAINER_ID_KEY] == pod.container_id
    assert node.ovs.column("Interface", vf.rep_name, "ofport") == 9

    again = node.create_pod("r")
    status, body, stderr = add(node, conf, again, vf)
    assert status == 0, (body, stderr)
    assert node.ovs.column("Port", vf.rep_name, "external_ids")[CONTAINER_ID_KEY] == again.container_id
    assert node.ovs.column("Interface", vf.rep_name, "ofport") == 9
    delete(node, conf, again)
    delete(node, node.netconf(), other_pod)
    assert node.snapshot() == before


@pytest.mark.parametrize("recovery", ["add-same-vf", "add-other-vf", "gc"])
def test_ovsdb_down_during_del_finishes_del_and_leaves_the_port_stale(node, recovery):
    before = node.snapshot()
    conf = node.netconf(mtu=9000)
    pod, vf = node.create_pod("p"), node.vf(0, 2)
    assert add(node, conf, pod, vf)[0] == 0
    node.ovs.stop_database()
    status, body, stderr = node.exec_plugin("DEL", conf, pod)
    assert status == 0, (body, stderr)  # the pod can terminate
    node.ovs.start_database()
    # VF home with its name, MAC and MTU, representor restored, lease released,
    # state and claim gone; only the port stays, recorded as stale.
    after_del = node.snapshot()
    assert without(after_del, "ports", "state") == without(before, "ports", "state")
    assert after_del["ports"] == [vf.rep_name]
    assert after_del["state"] == [f"stale-ports/{vf.rep_name}.json"]

    second = node.create_pod("q")
    if recovery == "add-same-vf":
        assert add(node, conf, second, vf)[0] == 0  # replaces the stale port
        assert node.ovs.column("Port", vf.rep_name, "external_ids")[CONTAINER_ID_KEY] == second.container_id
        assert node.exec_plugin("DEL", conf, second)[0] == 0
    elif recovery == "add-other-vf":
        other = node.vf(1, 2)
        assert add(node, conf, second, other)[0] == 0  # marks the stale port for everyone to see
        ids = node.ovs.column("Port", vf.rep_name, "external_ids")
        assert ids[STALE_KEY] and ids[CONTAINER_ID_KEY] == pod.container_id
        assert sorted(node.ovs.ports("br-int")) == sorted([vf.rep_name, other.rep_name])
        assert node.exec_plugin("DEL", conf, second)[0] == 0
        assert node.ovs.ports("br-int") == [vf.rep_name]
    status, body, stderr = node.exec_plugin("GC", {**conf, "cniVersion": "1.1.0", "cni.dev/valid-attachments": []})
    assert status == 0, (body, stderr)
    assert node.snapshot() == before


def test_ovsdb_down_during_add_changes_nothing(node):
    before = node.snapshot()
    conf = pod_conf(node)
    node.ovs.stop_database()
    status, body, _ = add(node, conf, node.create_pod("p"), node.vf(0, 0))
    assert (status, body["code"]) == (1, errors.TRY_AGAIN_LATER)
    node.ovs.start_database()
    assert node.snapshot() == before


def test_ipam_del_failure_fails_del_until_it_works(node):
    before, conf, pod, vf = attached(node, 1, 1)
    saved = node.ipam_dir.rename(node.workdir / "ipam-away")
    node.ipam_dir.write_text("")  # host-local cannot use its data dir now
    status, body, _ = node.exec_plugin("DEL", conf, pod)
    assert status == 1 and "IPAM" in body["msg"]
    node.ipam_dir.unlink()
    saved.rename(node.ipam_dir)
    delete(node, conf, pod)
    assert node.snapshot() == before


def test_representor_gone_before_del(node):
    conf = pod_conf(node)
    pod, vf = node.create_pod("p"), node.vf(0, 3)
    expected = without_links(node.snapshot(), {vf.vf_name, vf.rep_name})
    assert add(node, conf, pod, vf)[0] == 0
    node.sh(f"ip link del {vf.rep_name}")  # takes the VF (a veth) with it, as a driver unbind would
    (node.sysfs_root / "bus/pci/devices" / vf.pci / "driver").unlink()  # and so sysfs says
    delete(node, conf, pod)
    assert node.snapshot() == expected  # port, lease and state gone; the rest as before


@pytest.mark.parametrize("then", ["DEL", "ADD again, then DEL"])
def test_a_representor_set_down_while_attached_is_up_again_after_del(node, then):
    """Found by the chaos soak (tests/soak): DEL restored a representor's "down", never its "up"."""
    before, conf, pod, vf = attached(node, 0, 1)
    node.sh(f"ip link set {vf.rep_name} down")
    if then != "DEL":
        status, body, stderr = add(node, conf, pod, vf)  # a runtime's duplicate ADD
        assert status == 0, (body, stderr)
    delete(node, conf, pod)
    assert node.snapshot() == before


def logged(node, text: str, timeout_s: float = 30) -> None:
    """Return once the plugin's log has a line containing `text`."""
    deadline = time.monotonic() + timeout_s
    while text not in (node.log_file.read_text() if node.log_file.exists() else ""):
        assert time.monotonic() < deadline, f"the plugin never logged {text!r}"
        time.sleep(0.02)


def test_del_restores_a_representor_set_down_only_after_a_late_vswitchd_let_it_go(node):
    """ovs-vswitchd writes back the flags it cached when it lets a netdev go: DEL waits for it
    to apply the port removal before restoring the representor, or the representor ends down."""
    before, conf, pod, vf = attached(node, 0, 1)
    node.sh(f"ip link set {vf.rep_name} down")
    node.ovs.vsctl("init")  # let vswitchd run its loop after the change
    with node.ovs.vswitchd_frozen() as thaw, ThreadPoolExecutor(1) as pool:
        deleting = pool.submit(delete, node, conf, pod)
        logged(node, f"removed OVS port {vf.rep_name}")
        futures.wait([deleting], timeout=1.0)  # DEL's own bound for the wait is 5 s
        assert not deleting.done(), "DEL finished before vswitchd applied the port removal"
        thaw()
        deleting.result(timeout=30)
    node.ovs.vsctl("init")  # returns once vswitchd has applied everything
    assert node.snapshot() == before


def test_del_finishes_when_ovsdb_dies_before_vswitchd_applied_the_port_removal(node):
    """The port removal was committed; only the wait for vswitchd to apply it fails: DEL goes on."""
    before, conf, pod, vf = attached(node, 0, 1)
    with node.ovs.vswitchd_frozen(), ThreadPoolExecutor(1) as pool:
        deleting = pool.submit(delete, node, conf, pod)
        logged(node, f"removed OVS port {vf.rep_name}")
        try:
            node.ovs.stop_database()
            deleting.result(timeout=30)
        finally:
            node.ovs.start_database()
    assert f"waiting for ovs-vswitchd to let {vf.rep_name} go" in node.log_file.read_text()  # that path, not a timeout
    node.ovs.vsctl("init")  # waits for ovs-vswitchd to reconnect
    assert without(node.snapshot()) == without(before)  # the bridge's MTU: see without()


def test_the_rig_fails_loudly_when_ovs_vsctl_fails(node):
    """An empty port list must mean no port, never an ovs-vsctl that failed."""
    with pytest.raises(RuntimeError, match="br-none"):
        node.ovs.ports("br-none")
    node.ovs.stop_database()
    with pytest.raises(RuntimeError, match="list-ports"):
        node.snapshot()


KILLED_RUN = """
import subprocess, sys, time
from tests.simnode import SimNode
node = SimNode().start()
pod = node.create_pod("p")
node.exec_plugin("ADD", {**node.netconf(), "deviceID": node.vf(0, 0).pci}, pod)
subprocess.Popen(["ip", "netns", "exec", node.ns_name, "sleep", "600"])  # as an IPAM plugin's child
print(node.workdir, node.ns_name, pod.ns_name, flush=True)
time.sleep(600)
"""


def test_the_next_run_sweeps_what_a_killed_run_left(node):
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN], cwd=REPO, stdout=subprocess.PIPE)
    workdir, *namespaces = run.stdout.readline().decode().split()
    run.kill()  # as SIGKILL takes pytest: no teardown runs
    run.wait()
    ovs = [int((Path(workdir) / "ovs" / f"{d}.pid").read_text()) for d in ("ovsdb-server", "ovs-vswitchd")]
    node_netns = os.stat(f"/var/run/netns/{namespaces[0]}").st_ino
    in_node = [p for p in map(int, filter(str.isdigit, os.listdir("/proc"))) if leftovers.netns_inode(p) == node_netns]
    try:
        assert all(map(leftovers.running, ovs)) and in_node  # left behind, so the sweep below is not vacuous
        assert any(workdir in removed for removed in leftovers.sweep())
        assert not any(os.path.exists(f"/var/run/netns/{name}") for name in namespaces)
        assert not any(map(leftovers.running, ovs + in_node))
        assert not os.path.exists(workdir)
        assert node.snapshot()["ports"] == []  # a live run's node (this test's) is spared
    finally:  # never leave the killed run's processes behind, even when the sweep failed
        for pid in ovs + in_node:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
