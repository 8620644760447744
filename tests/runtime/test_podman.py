"""Debian's podman drives cni-hwol on the simulated node, as a node's runtime would.

Each container joins a network whose conflist chains cni-hwol (with the VF's
deviceID: there is no Multus to hand it out), host-local and portmap. After
every way podman takes a container's network down (stop, restart, rm -f, and
`container cleanup` after conmon was killed) the node must be as it was: each
VF under its name with its MAC and MTU, no OVS port, lease, state file, port
mapping or cached result left.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.runtime.podman import IMAGE, PodmanNode, podman_missing
from tests.simnode import SimNode
from tests.simnode.nsexec import run

REQUESTED_MAC = "02:00:00:aa:bb:01"
REQUESTED_MTU = 1400


@pytest.fixture
def podman(node: SimNode):
    """podman set up on a fresh simulated node (the node fixture needs root and .ci/setup's tools)."""
    reason = podman_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    pm = PodmanNode(node).setup()
    try:
        yield pm
    finally:
        pm.remove_everything()


def port_mappings(node: SimNode) -> list[str]:
    """portmap's per-container NAT rules in the node namespace."""
    rules = run(["iptables-save", "-t", "nat"], netns=node.netns).stdout.decode().splitlines()
    return sorted(rule for rule in rules if "CNI-DN-" in rule and not rule.startswith(":"))


def end_state(pm: PodmanNode, networks: list[str]) -> dict:
    """The simulated node's snapshot plus what portmap and libcni keep."""
    return {**pm.node.snapshot(), "port_mappings": port_mappings(pm.node), "cni_cache": pm.cached_results(networks)}


def networks_of(pm: PodmanNode) -> tuple[str, str]:
    """Two networks on br-int: one per VF, on different PFs; the second asks for an MTU."""
    tag = pm.node.tag
    first, second = f"hwola{tag}", f"hwolb{tag}"
    pm.write_network(first, pm.node.vf(0, 0).pci, "192.168.1.10", "192.168.1.19")
    pm.write_network(second, pm.node.vf(1, 0).pci, "192.168.1.20", "192.168.1.29", mtu=REQUESTED_MTU)
    return first, second


def run_container(pm: PodmanNode, name: str, network: str, *options: str) -> None:
    # Its environment names the node's work directory: the sweep after a killed run finds it by that.
    options = ("--env", f"HWOL_NODE={pm.node.workdir}", *options)
    pm.podman("run", "-d", "--pull=never", "--name", name, "--network", network, *options, IMAGE, "sleep", "3600")


def in_container(pm: PodmanNode, name: str, *argv: str) -> str:
    return pm.podman("exec", name, *argv).stdout.decode().strip()


def assert_attached(pm: PodmanNode, name: str, network: str, pf: int) -> None:
    """The container's eth0 is the VF, whose representor is a port on br-int."""
    vf = pm.node.vf(pf, 0)
    node_links = {link[0] for link in pm.node.snapshot()["links"]}
    assert vf.vf_name not in node_links
    assert vf.rep_name in pm.node.ovs.ports(pm.node.bridge)
    # The rig labels each VF with its PCI address (ifalias), which stays with the netdev.
    assert in_container(pm, name, "cat", "/sys/class/net/eth0/ifalias") == vf.pci
    assert pm.address(name, network)


def test_two_containers_get_their_vfs_and_ping_over_br_int(podman: PodmanNode):
    first, second = networks_of(podman)
    before = end_state(podman, [first, second])

    run_container(podman, "a", first, "--cap-add=NET_RAW", f"--mac-address={REQUESTED_MAC}", "-p", "8080:80")
    run_container(podman, "b", second, "--cap-add=NET_RAW")

    assert_attached(podman, "a", first, pf=0)
    assert_attached(podman, "b", second, pf=1)
    assert in_container(podman, "a", "cat", "/sys/class/net/eth0/address") == REQUESTED_MAC
    assert in_container(podman, "b", "cat", "/sys/class/net/eth0/mtu") == str(REQUESTED_MTU)
    reps = [podman.node.vf(0, 0).rep_name, podman.node.vf(1, 0).rep_name]
    assert sorted(podman.node.ovs.ports("br-int")) == sorted(reps)
    assert port_mappings(podman.node), "portmap left no rule for -p 8080:80"
    assert len(podman.cached_results([first, second])) == 2  # the end-state check of the cache can fail
    in_container(podman, "a", "ping", "-c", "2", "-W", "2", podman.address("b", second))
    in_container(podman, "b", "ping", "-c", "2", "-W", "2", podman.address("a", first))

    podman.podman("rm", "-f", "-t", "0", "a", "b")
    assert end_state(podman, [first, second]) == before


def test_stop_start_restart_give_the_vf_back_and_take_it_again(podman: PodmanNode):
    first, _ = networks_of(podman)
    before = end_state(podman, [first])

    run_container(podman, "a", first)
    assert_attached(podman, "a", first, pf=0)
    sandbox = podman.inspect("a")["NetworkSettings"]["SandboxKey"]

    podman.podman("stop", "-t", "0", "a")
    assert end_state(podman, [first]) == before
    assert not Path(sandbox).exists()

    podman.podman("start", "a")
    assert_attached(podman, "a", first, pf=0)
    podman.podman("restart", "-t", "0", "a")
    assert_attached(podman, "a", first, pf=0)
    assert len(podman.node.snapshot()["leases"]) == 1

    podman.podman("stop", "-t", "0", "a")
    assert end_state(podman, [first]) == before


def test_a_killed_conmon_then_stop_and_cleanup_give_everything_back(podman: PodmanNode):
    """conmon runs the exit command (`podman container cleanup`, hence DEL): killed, it runs none.
    podman 4.3 learns of an exit only from conmon's exit file, so `container cleanup` alone
    refuses the container as running; `podman stop` finds it gone and takes the network down."""
    first, _ = networks_of(podman)
    before = end_state(podman, [first])
    run_container(podman, "a", first, "-p", "8080:80")
    assert_attached(podman, "a", first, pf=0)

    state = podman.inspect("a")["State"]
    os.kill(state["ConmonPid"], signal.SIGKILL)
    podman.wait_gone(state["ConmonPid"])
    os.kill(state["Pid"], signal.SIGKILL)
    podman.wait_gone(state["Pid"])
    assert podman.node.vf(0, 0).rep_name in podman.node.ovs.ports("br-int")  # nothing has run DEL yet

    podman.podman("stop", "-t", "0", "a")
    podman.podman("container", "cleanup", "a")
    assert end_state(podman, [first]) == before
    podman.podman("rm", "a")
    assert end_state(podman, [first]) == before
