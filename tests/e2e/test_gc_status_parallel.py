"""GC and STATUS (CNI 1.1) and parallel invocations on the simulated node."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

from cni_hwol.cni import errors
from tests.simnode.node import Pod


def assert_deleted(node, conf, pod) -> None:
    status, body, stderr = node.exec_plugin("DEL", conf, pod)
    assert status == 0, (body, stderr)


def test_parallel_adds_and_dels_never_share_a_vf_or_an_address(node):
    before = node.snapshot()
    node.write_conflist("hwol", chained=False)
    pods = [(node.create_pod(f"p{i}"), vf) for i, vf in enumerate(node.vfs)]
    for _ in range(2):
        with ThreadPoolExecutor(len(pods)) as pool:
            results = list(pool.map(lambda pv: node.cnitool_run("add", pv[0], pv[1].pci, check=False), pods))
        assert [r.returncode for r in results] == [0] * len(pods), [r.stderr for r in results]
        addresses = [json.loads(r.stdout)["ips"][0]["address"] for r in results]
        assert len(set(addresses)) == len(pods)
        assert sorted(node.ovs.ports("br-int")) == sorted(v.rep_name for v in node.vfs)
        with ThreadPoolExecutor(len(pods)) as pool:
            results = list(pool.map(lambda pv: node.cnitool_run("del", pv[0], check=False), pods))
        assert [r.returncode for r in results] == [0] * len(pods), [r.stderr for r in results]
        assert node.snapshot() == before


def test_two_pods_racing_for_one_vf_one_wins(node):
    before = node.snapshot()
    vf = node.vf(1, 3)
    conf = {**node.netconf(), "deviceID": vf.pci}  # every verb gets it, as from Multus
    pods = [node.create_pod("a"), node.create_pod("b")]
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda p: node.exec_plugin("ADD", conf, p), pods))
    assert sorted(status for status, _, _ in outcomes) == [0, 1]
    (_, result, _), (_, refusal, _) = sorted(outcomes, key=lambda outcome: outcome[0])
    winner, loser = pods if outcomes[0][0] == 0 else pods[::-1]
    assert refusal["code"] == errors.DEVICE_ERROR and winner.container_id in refusal["msg"]
    assert_deleted(node, conf, loser)  # the runtime cleans up after the failed ADD
    status, body, stderr = node.exec_plugin("CHECK", {**conf, "prevResult": result}, winner)
    assert status == 0, (body, stderr)  # the loser's DEL left the winner's attachment alone
    assert_deleted(node, conf, winner)
    assert node.snapshot() == before


def test_status_ready_and_not_ready(node):
    assert node.exec_plugin("STATUS", node.netconf(cni_version="1.1.0"))[0] == 0
    status, body, _ = node.exec_plugin("STATUS", node.netconf(cni_version="1.1.0", bridge="br-gone"))
    assert (status, body["code"]) == (1, errors.NOT_AVAILABLE) and "br-gone" in body["msg"]
    status, body, _ = node.exec_plugin("STATUS", node.netconf(cni_version="1.1.0", ipam={"type": "nope"}))
    assert body["code"] == errors.NOT_AVAILABLE and "nope" in body["msg"]
    node.ovs.stop_database()
    status, body, _ = node.exec_plugin("STATUS", node.netconf(cni_version="1.1.0"))
    assert body["code"] == errors.NOT_AVAILABLE and "unreachable" in body["msg"]


def keep_and_drop(node, conf: dict) -> tuple[Pod, list[dict], dict]:
    """Two pods attached, "keep" listed as valid and "drop" not: (keep, that list, the node with keep's only)."""
    keep, drop = node.create_pod("keep"), node.create_pod("drop")
    assert node.exec_plugin("ADD", {**conf, "deviceID": node.vf(0, 0).pci}, keep)[0] == 0
    keep_only = node.snapshot()
    assert node.exec_plugin("ADD", {**conf, "deviceID": node.vf(0, 1).pci}, drop)[0] == 0
    return keep, [{"containerID": keep.container_id, "ifname": "net1"}], keep_only


def test_gc_removes_attachments_the_runtime_no_longer_lists(node):
    before = node.snapshot()
    conf = node.netconf(cni_version="1.1.0", mtu=9000)
    keep, valid, keep_only = keep_and_drop(node, conf)
    status, body, stderr = node.exec_plugin("GC", {**conf, "cni.dev/valid-attachments": valid})
    assert status == 0, (body, stderr)
    assert node.snapshot() == keep_only  # drop's port, lease, state gone, its VF home; keep's untouched
    assert_deleted(node, conf, keep)
    status, body, stderr = node.exec_plugin("GC", {**conf, "cni.dev/valid-attachments": []})
    assert status == 0, (body, stderr)
    assert node.snapshot() == before


def test_gc_finds_a_port_whose_state_file_was_lost(node):
    conf = node.netconf(cni_version="1.1.0")
    pod = node.create_pod("p")
    vf = node.vf(1, 1)
    assert node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, pod)[0] == 0
    for path in (node.state_dir / "attachments").rglob("*.json"):
        path.unlink()
    assert node.exec_plugin("GC", {**conf, "cni.dev/valid-attachments": []})[0] == 0
    assert node.ovs.ports("br-int") == []


def test_concurrent_add_and_del_of_one_attachment_are_serialised(node):
    before = node.snapshot()
    conf = node.netconf()
    pod, vf = node.create_pod("p"), node.vf(0, 2)
    for _ in range(4):
        with ThreadPoolExecutor(2) as pool:
            add = pool.submit(node.exec_plugin, "ADD", {**conf, "deviceID": vf.pci}, pod)
            delete = pool.submit(node.exec_plugin, "DEL", conf, pod)
        assert delete.result()[0] == 0
        status, body, stderr = add.result()
        assert status == 0, (body, stderr)
        # Whichever ran second decided the outcome; either way the node is consistent:
        # port, pod link, lease and state all there, or none of them.
        attached = node.ovs.ports("br-int") == [vf.rep_name]
        now = node.snapshot()
        assert (node.pod_link(pod) is not None, len(now["leases"]), bool(now["state"])) == (
            attached,
            int(attached),
            attached,
        )
        assert_deleted(node, conf, pod)
        assert node.snapshot() == before


def test_log_file_is_private(node):
    pod = node.create_pod("p")
    node.cnitool_run("add", pod, node.vf(0, 0).pci)
    node.cnitool_run("del", pod)
    assert os.stat(node.log_file).st_mode & 0o777 == 0o600
    assert os.stat(node.log_file.parent).st_mode & 0o777 == 0o700
