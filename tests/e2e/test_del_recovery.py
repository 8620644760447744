"""DEL and a failed ADD's rollback lose nothing: a VF renamed in the pod or still on
its way home, an OVSDB reply lost mid-ADD, a crash between the VF claim and the
state file, and state files named by an older release."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from pathlib import Path

from cni_hwol.cni import errors
from cni_hwol.crashpoints import ENV
from cni_hwol.verbs.delete import VF_RETURN_GRACE_SECONDS
from tests.simnode.nsexec import ip


def add(node, conf, pod, vf, **env):
    return node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, pod, env_overrides=env)


def state_file(node, pod) -> Path:
    return node.state_dir / "attachments" / "hwol" / f"{pod.container_id}:net1.json"


class ReplyLosingOvsdb:
    """A relay in front of the node's ovsdb-server. The transaction that inserts a
    Port reaches the server, which commits it, but its reply is lost with the
    connection; then OVSDB stays unreachable (every connection is closed at once)
    until heal()."""

    def __init__(self, upstream: str, path: Path) -> None:
        self.upstream = upstream.removeprefix("unix:")
        self.target = f"unix:{path}"
        self.lost_a_reply = False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def heal(self) -> None:
        self.lost_a_reply = False

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.lost_a_reply:
                client.close()
            else:
                threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.connect(self.upstream)
        inserting = False
        try:
            while True:
                ready, _, _ = select.select([client, server], [], [], 30)
                if not ready:
                    return
                for end in ready:
                    data = end.recv(65536)
                    if not data:
                        return
                    if end is client:
                        inserting = inserting or (b'"op":"insert"' in data and b'"table":"Port"' in data)
                        server.sendall(data)
                    elif inserting:  # the server answered: committed. The client never hears it.
                        self.lost_a_reply = True
                        return
                    else:
                        client.sendall(data)
        finally:
            client.close()
            server.close()


def test_add_whose_port_reply_was_lost_keeps_its_state_so_del_removes_the_port(node):
    before = node.snapshot()
    relay = ReplyLosingOvsdb(node.ovs.socket, node.workdir / "relay.sock")
    try:
        conf = node.netconf(ovsdbSocket=relay.target)
        pod, vf = node.create_pod("p"), node.vf(0, 1)
        status, body, stderr = add(node, conf, pod, vf)
        assert (status, body["code"]) == (1, errors.TRY_AGAIN_LATER), (body, stderr)
        assert relay.lost_a_reply
        assert "kept on record for DEL" in body["details"]
        # The port was committed and could not be removed: it stays on record,
        # with the VF's claim; everything else was undone.
        after = node.snapshot()
        assert after["ports"] == [vf.rep_name]
        assert after["state"] == sorted([f"attachments/hwol/{pod.container_id}:net1.json", f"devices/{vf.pci}.json"])
        assert {k: v for k, v in after.items() if k not in ("ports", "state")} == {
            k: v for k, v in before.items() if k not in ("ports", "state")
        }
        relay.heal()
        status, body, stderr = node.exec_plugin("DEL", conf, pod)
        assert status == 0, (body, stderr)
        assert node.snapshot() == before
    finally:
        relay.close()


def test_del_finds_a_vf_the_pod_renamed(node):
    before = node.snapshot()
    conf = node.netconf(mtu=9000)
    pod, vf = node.create_pod("p"), node.vf(1, 3)
    assert add(node, conf, pod, vf)[0] == 0
    node.pod_sh(pod, "ip link set net1 down")
    node.pod_sh(pod, "ip link set net1 name renamed0")  # a NET_ADMIN pod may
    status, body, stderr = node.exec_plugin("DEL", conf, pod)
    assert status == 0, (body, stderr)
    assert node.snapshot() == before


def vf_in_limbo(node, pod):
    """The pod's namespace is gone, but the kernel has not brought its VF home yet:
    the VF waits in a namespace neither the pod's path nor the host reaches."""
    limbo = node.create_pod("limbo")
    ip("link", "set", "net1", "netns", limbo.ns_name, netns=pod.netns)
    node.destroy_pod(pod)
    return limbo


def test_del_answers_try_again_while_the_vf_is_nowhere_and_finishes_once_it_is_home(node):
    before = node.snapshot()
    conf = node.netconf(mtu=9000)
    pod, vf = node.create_pod("p"), node.vf(0, 3)
    assert add(node, conf, pod, vf)[0] == 0
    attached = node.snapshot()
    limbo = vf_in_limbo(node, pod)
    for _ in range(2):  # the runtime retries
        status, body, stderr = node.exec_plugin("DEL", conf, pod)
        assert (status, body["code"]) == (1, errors.TRY_AGAIN_LATER), (body, stderr)
        assert node.snapshot() == attached  # nothing touched: port, lease, representor, state
    node.destroy_pod(limbo)  # the teardown ends: the VF comes home as net1
    status, body, stderr = node.exec_plugin("DEL", conf, pod)
    assert status == 0, (body, stderr)
    assert node.snapshot() == before


def test_del_lets_a_vf_go_after_the_grace_without_touching_its_representor(node):
    conf = node.netconf(mtu=9000)
    pod, vf = node.create_pod("p"), node.vf(0, 0)
    assert add(node, conf, pod, vf)[0] == 0
    attached = node.snapshot()
    vf_in_limbo(node, pod)
    assert node.exec_plugin("DEL", conf, pod)[1]["code"] == errors.TRY_AGAIN_LATER
    # Act out the passing of the grace period.
    path = state_file(node, pod)
    state = json.loads(path.read_text())
    state["vf_missing_since"] = time.time() - VF_RETURN_GRACE_SECONDS - 1
    path.write_text(json.dumps(state))
    status, body, stderr = node.exec_plugin("DEL", conf, pod)
    assert status == 0, (body, stderr)
    after = node.snapshot()
    assert (after["ports"], after["leases"], after["state"]) == ([], [], [])
    # The representor stays as ADD left it (MTU 9000): it may be the next pod's by
    # now. (The bridge's own MTU follows its ports', as OVS sets it.)
    assert [link for link in after["links"] if link[0] != node.bridge] == [
        link for link in attached["links"] if link[0] != node.bridge
    ]
    assert (vf.rep_name, 9000) in {link[:2] for link in after["links"]}


def test_crash_between_claim_and_state_gives_the_vf_to_nobody_and_del_takes_nothing(node):
    before = node.snapshot()
    conf = node.netconf()
    first, second, vf = node.create_pod("p1"), node.create_pod("p2"), node.vf(1, 1)
    assert add(node, conf, first, vf, **{ENV: "vf-claimed"})[0] == -9
    status, result, stderr = add(node, conf, second, vf)  # the VF was never moved: free
    assert status == 0, stderr
    attached = node.snapshot()
    status, body, stderr = node.exec_plugin("DEL", conf, first)
    assert status == 0, (body, stderr)
    assert node.snapshot() == attached  # the second pod's VF, representor and port untouched
    status, _, stderr = node.exec_plugin("CHECK", {**conf, "prevResult": result}, second)
    assert status == 0, stderr
    assert node.exec_plugin("DEL", conf, second)[0] == 0
    assert node.snapshot() == before


def test_del_finds_a_state_file_named_by_an_older_release(node):
    before = node.snapshot()
    conf = node.netconf()
    pod, vf = node.create_pod("p"), node.vf(0, 2)
    assert add(node, conf, pod, vf)[0] == 0
    path = state_file(node, pod)
    path.rename(path.with_name(f"{pod.container_id}--net1.json"))  # as releases before this one named it
    status, body, stderr = node.exec_plugin("DEL", conf, pod)
    assert status == 0, (body, stderr)
    assert node.snapshot() == before
