"""Faults during ADD and DEL: after each, DEL (or GC) leaves the node exactly as
before, and a new ADD of the same VF works."""

from __future__ import annotations

import pytest

from cni_hwol.cni import errors
from cni_hwol.crashpoints import ADD_STEPS, ENV
from cni_hwol.ovsdb.ports import CONTAINER_ID_KEY, STALE_KEY


def add(node, conf, pod, vf, **env):
    return node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, pod, env_overrides=env)


@pytest.mark.parametrize("step", ADD_STEPS)
@pytest.mark.parametrize("recovery", ["DEL", "GC"])
def test_plugin_killed_after_each_add_step(node, step, recovery):
    before = node.snapshot()
    conf = node.netconf(cni_version="1.1.0")
    pod, vf = node.create_pod("p"), node.vf(0, 1)
    status, _, _ = add(node, conf, pod, vf, **{ENV: step})
    assert status == -9  # SIGKILL
    if recovery == "DEL":
        status, body, stderr = node.exec_plugin("DEL", conf, pod)
    else:
        status, body, stderr = node.exec_plugin("GC", {**conf, "cni.dev/valid-attachments": []})
    assert status == 0, (body, stderr)
    assert node.snapshot() == before
    status, body, stderr = add(node, conf, pod, vf)
    assert status == 0, (body, stderr)
    assert node.exec_plugin("DEL", conf, pod)[0] == 0


def test_add_after_a_crash_without_del_cleans_up_first(node):
    conf = node.netconf()
    pod, vf = node.create_pod("p"), node.vf(1, 0)
    assert add(node, conf, pod, vf, **{ENV: "ovs-attached"})[0] == -9
    status, result, stderr = add(node, conf, pod, vf)  # kubelet retries ADD
    assert status == 0, stderr
    assert node.ovs.ports("br-int") == [vf.rep_name]
    assert len(list(node.ipam_dir.rglob("192.168.*"))) == 1  # the first lease was released
    assert node.exec_plugin("DEL", conf, pod)[0] == 0


def without(snapshot: dict, *keys: str) -> dict:
    """The snapshot without these keys, and without the bridge's own link: OVS sets
    its MTU from its ports' when it reconfigures, which it does once the port goes."""
    kept = {k: v for k, v in snapshot.items() if k not in keys}
    kept["links"] = [link for link in snapshot["links"] if link[0] != "br-int"]
    return kept


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
    conf = node.netconf()
    node.ovs.stop_database()
    status, body, _ = add(node, conf, node.create_pod("p"), node.vf(0, 0))
    assert (status, body["code"]) == (1, errors.TRY_AGAIN_LATER)
    node.ovs.start_database()
    assert node.snapshot() == before


def test_ipam_del_failure_fails_del_until_it_works(node):
    conf = node.netconf()
    pod, vf = node.create_pod("p"), node.vf(1, 1)
    assert add(node, conf, pod, vf)[0] == 0
    saved = node.ipam_dir.rename(node.workdir / "ipam-away")
    node.ipam_dir.write_text("")  # host-local cannot use its data dir now
    status, body, _ = node.exec_plugin("DEL", conf, pod)
    assert status == 1 and "IPAM" in body["msg"]
    node.ipam_dir.unlink()
    saved.rename(node.ipam_dir)
    assert node.exec_plugin("DEL", conf, pod)[0] == 0
    assert node.ovs.ports("br-int") == []


def test_representor_gone_before_del(node):
    conf = node.netconf()
    pod, vf = node.create_pod("p"), node.vf(0, 3)
    assert add(node, conf, pod, vf)[0] == 0
    node.sh(f"ip link del {vf.rep_name}")  # takes the VF (a veth) with it, as a driver unbind would
    (node.sysfs_root / "bus/pci/devices" / vf.pci / "driver").unlink()  # and so sysfs says
    status, body, stderr = node.exec_plugin("DEL", conf, pod)
    assert status == 0, (body, stderr)
    assert node.ovs.ports("br-int") == []
    assert not list((node.state_dir / "attachments").rglob("*.json"))
