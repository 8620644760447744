"""The operator tools as a new user runs them wrong: a clear failed check or usage error, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

from tests.e2e.test_tools import checks, tool_argv
from tests.simnode.nsexec import run


def run_tool(node, command: str, *args: str, path: str | None = None):
    """(exit status, the --json report or None, stderr); stderr never holds a traceback."""
    env = {"PATH": os.environ.get("PATH", "") if path is None else path}
    done = run(tool_argv(node, command, "--json", *args), netns=node.netns, check=False, env=env)
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr, stderr
    out = done.stdout.decode()
    return done.returncode, json.loads(out) if out.strip() else None, stderr


def test_doctor_on_a_netdev_without_a_pci_device(node):
    (node.sysfs_root / "class/net/lo").mkdir()  # as in /sys: lo has no device link
    status, report, _ = run_tool(node, "doctor", "--pf", "lo", "--cni-path", str(node.bin_dir))
    found = checks(report)
    assert status == 1 and not found["lo: PF"]["ok"]
    assert "lo has no PCI device" in found["lo: PF"]["detail"]
    assert found["bridge br-int"]["ok"]  # the other checks still ran


def test_a_malformed_ovsdb_target_is_a_usage_error(node):
    for target in ("tcp:host:abc", "tcp:host", "tcp:127.0.0.1:70000"):
        for command in ("doctor", "offload-status"):
            status, report, stderr = run_tool(node, command, "--ovsdb", target)
            assert (status, report) == (2, None), (command, target)
            assert "--ovsdb" in stderr and "tcp:host:port" in stderr


def test_node_setup_refuses_a_negative_vf_count(node):
    numvfs = node.sysfs_root / "class/net/enp3s0f1np1/device/sriov_numvfs"
    status, report, stderr = run_tool(node, "node-setup", "--pf", "enp3s0f1np1", "--vfs", "-3")
    assert (status, report) == (2, None) and "--vfs" in stderr
    assert numvfs.read_text().strip() == "4"


def write_corrupt_state_files(node) -> list[Path]:
    directory = node.state_dir / "attachments" / "hwol"
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, body in (("c0ffee01--net1.json", "[]"), ("c0ffee02--net1.json", "null"), ("c0ffee03--net1.json", "{}")):
        (directory / name).write_text(body)
        paths.append(directory / name)
    return paths


def test_corrupt_state_files_are_reported_and_skipped(node):
    conf = node.netconf(cni_version="1.1.0")
    pod, vf = node.create_pod("p"), node.vf(0, 2)
    assert node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, pod)[0] == 0
    corrupt = write_corrupt_state_files(node)

    status, report, _ = run_tool(node, "doctor", "--cni-path", str(node.bin_dir))
    readable = checks(report)["state files readable"]
    assert status == 1 and not readable["ok"]
    assert all(str(path) in readable["detail"] for path in corrupt)
    assert "not a JSON object" in readable["detail"] and "missing" in readable["detail"]

    # GC skips them and still removes the attachment the runtime no longer lists.
    status, body, stderr = node.exec_plugin("GC", {**conf, "cni.dev/valid-attachments": []})
    assert status == 0, (body, stderr)
    assert node.ovs.ports("br-int") == [] and node.sysfs.vf_netdevs(vf.pci) == [vf.vf_name]
    assert all(path.exists() for path in corrupt)  # evidence for the operator, left alone
    log = node.log_file.read_text()
    assert all(f"skipping state file {path}" in log for path in corrupt)

    status, report, _ = run_tool(node, "offload-status", "--ovs-rundir", str(node.ovs.dir))
    assert status == 1 and report["attachments"] == []


def test_offload_status_without_tc_fails_the_check(node):
    pod = node.create_pod("p")
    node.cnitool_run("add", pod, node.vf(0, 1).pci)
    status, report, _ = run_tool(node, "offload-status", "--ovs-rundir", str(node.ovs.dir), path="/nonexistent")
    [entry] = report["attachments"]
    label = f"default/p ({pod.container_id[:12]}/net1)"
    tc = checks(report)[f"{label}: tc filters in hardware"]
    assert status == 1 and not tc["ok"] and "cannot run tc" in tc["detail"] and "iproute2" in tc["fix"]
    assert (entry["tc_filters"], entry["tc_in_hw"]) == (None, None)
    assert checks(report)[f"{label}: OVS port"]["ok"]
    node.cnitool_run("del", pod)


def test_offload_status_when_tc_fails(node):
    pod, vf = node.create_pod("p"), node.vf(1, 0)
    node.cnitool_run("add", pod, vf.pci)
    node.sh(f"ip link del {vf.rep_name}")  # the representor is gone: tc has nothing to show
    (node.sysfs_root / "bus/pci/devices" / vf.pci / "driver").unlink()  # its VF (a veth) went too, as on an unbind
    status, report, _ = run_tool(node, "offload-status", "--ovs-rundir", str(node.ovs.dir))
    tc = checks(report)[f"default/p ({pod.container_id[:12]}/net1): tc filters in hardware"]
    assert status == 1 and not tc["ok"] and tc["detail"].startswith("tc exited")
    assert report["attachments"][0]["tc_filters"] is None
    node.cnitool_run("del", pod)


class DroppingOvsdb:
    """A unix socket that accepts OVSDB clients, reads their first request and hangs up."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            with conn:
                conn.recv(65536)

    def __enter__(self) -> DroppingOvsdb:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join()


def test_offload_status_when_ovsdb_drops_the_connection(node):
    pods = [node.create_pod("a"), node.create_pod("b")]
    for i, pod in enumerate(pods):
        node.cnitool_run("add", pod, node.vf(i, 2).pci)
    with DroppingOvsdb(node.workdir / "dropping.sock") as dropping:
        status, report, _ = run_tool(
            node, "offload-status", "--ovs-rundir", str(node.ovs.dir), "--ovsdb", f"unix:{dropping.path}"
        )
    found = checks(report)
    port_checks = [c for name, c in found.items() if name.endswith(": OVS port")]
    assert status == 1 and len(port_checks) == 1 and not port_checks[0]["ok"]
    assert "closed the connection" in port_checks[0]["detail"]
    # Both attachments are still reported, the second without OVSDB.
    assert sorted(a["pod"] for a in report["attachments"]) == ["default/a", "default/b"]
    assert all(f"{a['pod']} (" in " ".join(found) for a in report["attachments"])
    for pod in pods:
        node.cnitool_run("del", pod)


def test_node_setup_when_the_kernel_refuses_to_set_the_pf_up(node):
    # Stand a macvlan in for the PF, with the MAC of an up macvlan twin on the
    # same lower device: the kernel refuses to set it up (EADDRINUSE), as a
    # driver without link or firmware would refuse a real PF.
    pf = "enp3s0f1np1"
    node.sh(f"ip link set {pf} name pf1lower")
    node.sh("ip link add pf1twin link pf1lower type macvlan")
    node.sh("ip link set pf1twin up")
    twin_mac = json.loads(node.sh("ip -j link show pf1twin"))[0]["address"]
    node.sh(f"ip link add {pf} link pf1lower address {twin_mac} type macvlan")
    status, report, _ = run_tool(node, "node-setup", "--pf", pf, "--vfs", "4")
    steps = checks(report)
    assert status == 1 and steps["VFs"]["ok"]
    up = steps["PF up"]
    assert not up["ok"] and up["detail"].startswith(f"the kernel refused to set {pf} up: ")
    assert up["detail"].endswith("Address already in use")
    assert f"ip link show {pf}" in up["fix"]
    assert steps["unbind VFs"]["detail"] == "not run: an earlier step failed"
    assert "UP" not in json.loads(node.sh(f"ip -j link show {pf}"))[0]["flags"]
