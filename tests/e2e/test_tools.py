"""The operator tools (doctor, node-setup, offload-status) on the simulated node."""

from __future__ import annotations

import ctypes
import json
import os
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.simnode.fake_devlink import FakeDevlink, node_devlink
from tests.simnode.nsexec import run

REPO = Path(__file__).resolve().parents[2]
NO_DEVLINK = FakeDevlink(absent=True)


def tool_argv(node, command: str, *args: str) -> list[str]:
    return [
        str(node.bin_dir / "cni-hwol"),
        command,
        "--sysfs-root",
        str(node.sysfs_root),
        "--ovsdb",
        node.ovs.socket,
        "--state-dir",
        str(node.state_dir),
        *args,
    ]


def with_devlink(node, argv: list[str], devlink: FakeDevlink) -> list[str]:
    """The tool run with this devlink instead of the kernel's (which may have none, or
    answer for the host's own NICs): tests/simnode/fake_devlink.py runs cni-hwol's main."""
    spec = devlink.write(node.workdir / "devlink.json")
    return [sys.executable, "-m", "tests.simnode.fake_devlink", str(spec), *argv[1:]]


def tool(node, command: str, *args: str, devlink: FakeDevlink = NO_DEVLINK) -> tuple[int, dict]:
    done = run(
        with_devlink(node, tool_argv(node, command, "--json", *args), devlink),
        netns=node.netns,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)},
    )
    return done.returncode, json.loads(done.stdout)


def checks(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def doctor(node, *args, devlink: FakeDevlink = NO_DEVLINK):
    return tool(node, "doctor", "--cni-path", f"{node.bin_dir}:/usr/lib/cni", *args, devlink=devlink)


def test_doctor_names_what_is_wrong_and_how_to_fix_it(node):
    status, report = doctor(node)
    found = checks(report)
    assert status == 1 and not report["ok"]
    assert found["SR-IOV PFs"]["detail"] == "enp3s0f0np0 enp3s0f1np1"
    for pf in ("enp3s0f0np0", "enp3s0f1np1"):
        assert found[f"{pf}: VFs created"]["ok"] and found[f"{pf}: every VF has a representor"]["ok"]
        eswitch = found[f"{pf}: eswitch in switchdev mode"]
        assert eswitch["ok"] and eswitch["detail"] == "devlink unavailable; sysfs phys_switch_id present"
        tc = found[f"{pf}: hw-tc-offload"]
        assert not tc["ok"] and tc["fix"] == f"ethtool -K {pf} hw-tc-offload on"  # a veth cannot
    assert not found["OVS hw-offload"]["ok"] and "hw-offload=true" in found["OVS hw-offload"]["fix"]
    assert (
        found["bridge br-int"]["ok"] and found["cni-hwol on CNI_PATH"]["ok"] and found["host-local on CNI_PATH"]["ok"]
    )

    node.ovs.vsctl("set", "Open_vSwitch", ".", "other_config:hw-offload=true")
    os.remove(node.sysfs_root / "class/net" / node.vf(1, 2).rep_name / "phys_port_name")
    _, report = doctor(node, "--pf", "enp3s0f1np1")
    found = checks(report)
    assert found["OVS hw-offload"]["ok"]
    assert "enp3s0f0np0: VFs created" not in found
    missing = found["enp3s0f1np1: every VF has a representor"]
    assert not missing["ok"] and node.vf(1, 2).pci in missing["detail"]


def test_doctor_reads_the_eswitch_mode_through_devlink(node):
    # devlink has the last word over sysfs: phys_switch_id is present, the mode is legacy.
    _, report = doctor(node, devlink=node_devlink(node, mode="legacy"))
    eswitch = checks(report)["enp3s0f0np0: eswitch in switchdev mode"]
    assert not eswitch["ok"] and eswitch["detail"] == "devlink pci/0000:03:00.0: legacy"
    assert "devlink dev eswitch set pci/0000:03:00.0 mode switchdev" in eswitch["fix"]
    _, report = doctor(node, devlink=node_devlink(node, mode="switchdev"))
    eswitch = checks(report)["enp3s0f1np1: eswitch in switchdev mode"]
    assert eswitch["ok"] and eswitch["detail"] == "devlink pci/0000:03:00.1: switchdev"
    assert checks(report)["enp3s0f1np1: every VF has a representor"]["ok"]


def test_doctor_finds_attachments_whose_pod_is_gone(node):
    pod = node.create_pod("p")
    node.cnitool_run("add", pod, node.vf(0, 0).pci)
    assert checks(doctor(node)[1])["state directory"]["ok"]
    node.destroy_pod(pod)
    state = checks(doctor(node)[1])["state directory"]
    assert not state["ok"] and pod.container_id in state["detail"]
    node.cnitool_run("del", pod)
    assert checks(doctor(node)[1])["state directory"]["ok"]


def test_offload_status_reports_port_tc_and_datapath_flows(node):
    pods = [node.create_pod("a"), node.create_pod("b")]
    results = [json.loads(node.cnitool_run("add", p, node.vf(i, 1).pci).stdout) for i, p in enumerate(pods)]
    assert node.ping(pods[0], results[1]["ips"][0]["address"].split("/")[0]).returncode == 0
    status, report = tool(node, "offload-status", "--all", "--ovs-rundir", str(node.ovs.dir))
    # The userspace datapath offloads nothing: the flows are there, in software.
    assert status == 1
    by_rep = {a["representor"]: a for a in report["attachments"]}
    first = by_rep[node.vf(0, 1).rep_name]
    assert first["pod"] == "default/a" and first["vf"] == node.vf(0, 1).pci
    assert isinstance(first["ofport"], int) and first["ofport"] > 0
    assert (first["tc_filters"], first["tc_in_hw"]) == (0, 0)
    assert first["flows_software"] and not first["flows_offloaded"]
    assert all(f"in_port({node.vf(0, 1).rep_name})" in f for f in first["flows_software"])
    flows = checks(report)[f"default/a ({pods[0].container_id[:12]}/net1): datapath flows offloaded"]
    assert not flows["ok"] and "in software" in flows["detail"]

    _, one = tool(node, "offload-status", pods[1].container_id[:10], "--ovs-rundir", str(node.ovs.dir))
    assert [a["pod"] for a in one["attachments"]] == ["default/b"]
    for pod in pods:
        node.cnitool_run("del", pod)
    status, report = tool(node, "offload-status", "--ovs-rundir", str(node.ovs.dir))
    assert status == 1 and not checks(report)["attachments"]["ok"]


def test_node_setup_dry_run_changes_nothing(node):
    numvfs = node.sysfs_root / "class/net/enp3s0f1np1/device/sriov_numvfs"
    status, report = tool(node, "node-setup", "--pf", "enp3s0f1np1", "--vfs", "6", "--dry-run")
    steps = checks(report)
    assert steps["VFs"]["detail"] == "would set sriov_numvfs 4 -> 6"
    assert steps["unbind VFs"]["detail"].startswith("would unbind 0000:05:00.0")
    assert numvfs.read_text().strip() == "4"
    assert not (node.sysfs_root / "bus/pci/drivers/mlx5_core/unbind").exists()
    assert status == 1 and "devlink is not available" in steps["eswitch switchdev"]["detail"]
    legacy = node_devlink(node, mode="legacy")
    _, report = tool(node, "node-setup", "--pf", "enp3s0f1np1", "--vfs", "6", "--dry-run", devlink=legacy)
    assert checks(report)["eswitch switchdev"]["detail"] == "would switch pci/0000:03:00.1 to switchdev"
    assert numvfs.read_text().strip() == "4"


def test_node_setup_refuses_a_pf_whose_vfs_are_in_use(node):
    pod = node.create_pod("p")
    node.cnitool_run("add", pod, node.vf(0, 3).pci)
    status, report = tool(node, "node-setup", "--pf", "enp3s0f0np0", "--vfs", "2")
    step = checks(report)["VFs"]
    assert status == 1 and not step["ok"] and pod.container_id in step["detail"]
    assert (node.sysfs_root / "class/net/enp3s0f0np0/device/sriov_numvfs").read_text().strip() == "4"
    node.cnitool_run("del", pod)


@contextmanager
def counting_writes(path: Path) -> Iterator[list[int]]:
    """Counts how many times the block wrote `path` and closed it (inotify). The fake
    sysfs cannot refuse N -> M as the kernel does; the count shows the tool went through 0."""
    in_modify, in_close_write = 0x2, 0x8  # watching MODIFY too keeps two closes from merging
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        assert fd >= 0 and libc.inotify_add_watch(fd, bytes(path), in_modify | in_close_write) >= 0
        closes: list[int] = []
        yield closes
        data = os.read(fd, 65536)
        while data:
            _, mask, _, name_len = struct.unpack_from("iIII", data)
            closes += [1] if mask & in_close_write else []
            data = data[16 + name_len :]
    finally:
        os.close(fd)


def test_node_setup_steps_and_rebinds_after_a_failure(node):
    # The firmware refuses switchdev: the VFs are bound again.
    refusing = node_devlink(node, mode="legacy", refuse_set=True)
    numvfs = node.sysfs_root / "class/net/enp3s0f1np1/device/sriov_numvfs"
    with counting_writes(numvfs) as writes:
        status, report = tool(node, "node-setup", "--pf", "enp3s0f1np1", "--vfs", "2", devlink=refusing)
    steps = checks(report)
    assert steps["VFs"]["detail"] == "sriov_numvfs 4 -> 2"
    assert (len(writes), numvfs.read_text()) == (2, "2")  # 4 -> 0 -> 2: the kernel refuses 4 -> 2
    assert steps["PF up"]["detail"] == "enp3s0f1np1 already up"
    assert steps["unbind VFs"]["ok"]
    eswitch = steps["eswitch switchdev"]
    assert status == 1 and not eswitch["ok"]
    assert eswitch["detail"].startswith("devlink eswitch set pci/0000:03:00.1 mode switchdev: ")
    assert steps["bind VFs again after the failure"]["detail"].startswith("bind done: 0000:05:00.0")
    drivers = node.sysfs_root / "bus/pci/drivers/mlx5_core"
    assert (drivers / "unbind").exists() and (drivers / "bind").exists()


def test_human_output(node):
    done = run(tool_argv(node, "doctor"), netns=node.netns, check=False)
    text = done.stdout.decode()
    assert "[ok] bridge br-int: present" in text and "fix: ethtool -K" in text
    assert text.rstrip().splitlines()[-1].startswith("doctor: ") and "failed" in text
