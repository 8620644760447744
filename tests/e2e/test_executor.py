"""The warm executor (cni_hwol/executor): verbs run in its forks exactly as in
an exec'd plugin, and the plugin runs them itself whenever no executor takes them.
What the tests exec is the front (shim.c) of the build or of the source tree.

The whole lifecycle, failure and fault suites also run through an executor when
CNI_HWOL_TEST_EXECUTOR=1 (.ci/run does it against the PyInstaller build).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from cni_hwol import __version__
from cni_hwol.executor.protocol import (
    MAX_MESSAGE,
    PASSED_FDS,
    REFUSED,
    SOCKET_ENV,
    STARTED,
    decode_request,
    encode_request,
)
from tests.simnode.node import Executor
from tests.simnode.nsexec import _enter


@pytest.fixture
def executor(node):
    warm = Executor(node.workdir, "executor-test").start()
    yield warm
    warm.stop()


def plugin(node, pod, verb: str, socket_path: str, **env: str) -> subprocess.Popen:
    """cni-hwol exec'd directly in the node namespace, as a runtime runs it."""
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "CNI_COMMAND": verb,
        "CNI_CONTAINERID": pod.container_id,
        "CNI_NETNS": pod.netns,
        "CNI_IFNAME": "net1",
        "CNI_PATH": node.cni_env(pod)["CNI_PATH"],
        SOCKET_ENV: socket_path,
        **env,
    }
    return subprocess.Popen(
        [str(node.bin_dir / "cni-hwol")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
        preexec_fn=_enter(node.netns),
    )


def run_plugin(node, pod, verb: str, conf: dict, socket_path: str, **env: str) -> tuple[int, str]:
    proc = plugin(node, pod, verb, socket_path, **env)
    out, _ = proc.communicate(json.dumps(conf).encode(), timeout=60)
    node.sync_sysfs()
    return proc.returncode, out.decode()


def test_request_round_trip_and_rejects():
    data = encode_request("0.1.0", [b"a"], {b"CNI_COMMAND": b"ADD", b"X": b"a=b"})
    assert decode_request(data) == ("0.1.0", [b"a"], {b"CNI_COMMAND": b"ADD", b"X": b"a=b"})
    for bad in (b"", b"hello\0world", data.replace(b"CNI_COMMAND=ADD", b"=ADD")):
        with pytest.raises(ValueError):
            decode_request(bad)


def test_verbs_run_in_the_executors_forks_and_the_node_is_restored(node, executor):
    before = node.snapshot()
    pod, vf = node.create_pod("pod1"), node.vf(0, 1)
    conf = {**node.netconf(), "deviceID": vf.pci}
    status, out = run_plugin(node, pod, "ADD", conf, executor.socket)
    assert status == 0, out
    result = json.loads(out)
    assert node.pod_link(pod)["address"] == result["interfaces"][1]["mac"]
    assert run_plugin(node, pod, "CHECK", {**conf, "prevResult": result}, executor.socket)[0] == 0
    assert run_plugin(node, pod, "DEL", conf, executor.socket)[0] == 0
    log = executor.log.read_text()
    for verb in ("ADD", "CHECK", "DEL"):
        assert f"runs {verb} {pod.container_id}" in log
    node.destroy_pod(pod)
    assert node.snapshot() == before


def test_errors_come_back_as_cni_json_with_the_exit_status(node, executor):
    pod = node.create_pod("pod1")
    status, out = run_plugin(node, pod, "ADD", {**node.netconf(), "deviceID": "0000:99:00.7"}, executor.socket)
    assert status == 1
    assert json.loads(out)["code"] == 100  # no such VF: the fork's own answer


def test_without_an_executor_the_plugin_runs_the_verb_itself(node):
    pod, vf = node.create_pod("pod1"), node.vf(0, 2)
    conf = {**node.netconf(), "deviceID": vf.pci}
    status, out = run_plugin(node, pod, "ADD", conf, str(node.workdir / "no-such.sock"))
    assert status == 0, out
    assert run_plugin(node, pod, "DEL", conf, str(node.workdir / "no-such.sock"))[0] == 0


class FakeExecutor:
    """A listener that sends `answer` (or nothing, when None) to every request,
    then hangs up; `seen` holds the requests. Leaving the block shuts the
    listener down and joins its thread. Closing alone left the thread behind, and
    once (strace in CI's flake) it answered the next test's DEL with this test's
    answer: the next listener had been given the same fd number."""

    def __init__(self, path: str, answer: bytes | None) -> None:
        self.path, self.answer = path, answer
        self.seen: list[bytes] = []

    def __enter__(self) -> FakeExecutor:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(self.path)
        self.listener.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below with EINVAL
        self.thread.join(10)
        self.listener.close()
        assert not self.thread.is_alive()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                data, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, PASSED_FDS)
                self.seen.append(data)
                for fd in fds:  # the client's std streams: holding them would keep its pipes open
                    os.close(fd)
                if self.answer is not None:
                    conn.send(self.answer)


@pytest.mark.parametrize("answer", [REFUSED + b"client is cni-hwol 0.0.9", None], ids=["refused", "silent"])
def test_a_refusing_or_silent_executor_leaves_the_verb_to_the_plugin(node, answer):
    path = str(node.workdir / "fake.sock")
    with FakeExecutor(path, answer) as fake:
        pod, vf = node.create_pod("pod1"), node.vf(0, 3)
        conf = {**node.netconf(), "deviceID": vf.pci}
        status, out = run_plugin(node, pod, "ADD", conf, path)
        assert status == 0, out
        assert json.loads(out)["interfaces"][1]["name"] == "net1"
        assert run_plugin(node, pod, "DEL", conf, path)[0] == 0
    assert len(fake.seen) == 2  # both verbs were offered first
    version, argv, environ = decode_request(fake.seen[0])
    assert (version, argv) == (__version__, [])
    assert environ[b"CNI_COMMAND"] == b"ADD" and environ[SOCKET_ENV.encode()] == path.encode()
    assert encode_request(version, argv, environ) == fake.seen[0]  # the front encodes as protocol.py does


def test_an_executor_gone_while_its_fork_runs_fails_the_verb_with_try_again(node):
    path = str(node.workdir / "fake.sock")
    with FakeExecutor(path, STARTED) as fake:  # took the verb, then went away
        pod = node.create_pod("pod1")
        conf = {**node.netconf(), "deviceID": node.vf(0, 3).pci}
        before = node.snapshot()
        status, out = run_plugin(node, pod, "ADD", conf, path)
    assert status == 1 and len(fake.seen) == 1
    error = json.loads(out)
    assert error["code"] == 11 and "executor stopped" in error["msg"]
    assert node.snapshot() == before  # the front never runs the verb a second time


def test_version_is_answered_by_the_executor_and_operator_commands_by_python(node, executor):
    pod = node.create_pod("pod1")
    status, out = run_plugin(node, pod, "VERSION", {"cniVersion": "1.0.0"}, executor.socket)
    assert status == 0 and "1.1.0" in json.loads(out)["supportedVersions"]
    assert "runs VERSION" in executor.log.read_text()
    done = subprocess.run([str(node.bin_dir / "cni-hwol"), "--version"], capture_output=True, check=True)
    assert done.stdout.decode().startswith(f"cni-hwol {__version__} ")


def test_an_environment_too_large_to_hand_over_runs_in_python(node, executor):
    pod = node.create_pod("pod1")
    # No single variable may exceed 128 KiB (MAX_ARG_STRLEN); ten of 120 KiB exceed MAX_MESSAGE.
    bulk = {f"BULK{n}": "x" * (120 << 10) for n in range(10)}
    assert sum(map(len, bulk.values())) > MAX_MESSAGE
    status, out = run_plugin(node, pod, "VERSION", {"cniVersion": "1.0.0"}, executor.socket, **bulk)
    assert status == 0 and json.loads(out)["cniVersion"] == "1.1.0"
    assert "runs VERSION" not in executor.log.read_text()


def test_a_front_without_its_python_executable_answers_with_cni_json(node, tmp_path):
    front = tmp_path / "cni-hwol"
    shutil.copy2(os.path.realpath(node.bin_dir / "cni-hwol"), front)
    done = subprocess.run(
        [str(front)], env={"CNI_COMMAND": "ADD", SOCKET_ENV: "none"}, input=b"{}", capture_output=True, timeout=30
    )
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["code"] == 999 and "cni-hwol-py" in error["msg"]


def test_a_fork_killed_by_a_signal_kills_its_client_alike(node, executor):
    pod, vf = node.create_pod("pod1"), node.vf(1, 0)
    conf = {**node.netconf(), "deviceID": vf.pci}
    status, _ = run_plugin(node, pod, "ADD", conf, executor.socket, CNI_HWOL_CRASH_AFTER="vf-moved-lease-taken")
    assert status == -signal.SIGKILL
    assert run_plugin(node, pod, "DEL", conf, executor.socket)[0] == 0


def test_a_killed_client_takes_its_fork_with_it(node, executor):
    """A runtime timeout kills the plugin; the fork doing its work must not outlive it."""
    sleepy = node.bin_dir / "sleepy-ipam"
    sleepy.write_text('#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then exec sleep 60; fi\nexit 0\n')
    sleepy.chmod(0o755)
    pod, vf = node.create_pod("pod1"), node.vf(1, 1)
    conf = {**node.netconf(ipam={"type": "sleepy-ipam"}), "deviceID": vf.pci}
    proc = plugin(node, pod, "ADD", executor.socket)
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    deadline = time.monotonic() + 30
    while "runs ADD" not in executor.log.read_text() or not _pids_of("sleep 60"):
        assert time.monotonic() < deadline, executor.log.read_text()
        time.sleep(0.1)
    fork_pid = int(executor.log.read_text().split("pid ")[-1].split()[0])
    ipam_children = [pid for pid in _pids_of("sleep 60") if _ppid(pid) == fork_pid]
    assert ipam_children
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{fork_pid}") and _state(fork_pid) != "Z":
        assert time.monotonic() < deadline, "the fork outlived its client"
        time.sleep(0.1)
    for pid in ipam_children:
        os.kill(pid, signal.SIGKILL)  # the orphaned IPAM child, as after any killed plugin
    node.sync_sysfs()
    assert run_plugin(node, pod, "DEL", conf, executor.socket)[0] == 0


def _pids_of(cmdline: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f.read().replace(b"\0", b" ").strip() == cmdline.encode():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, ..."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return ["gone", "0"]


def _state(pid: int) -> str:
    return _stat(pid)[0]


def _ppid(pid: int) -> int:
    return int(_stat(pid)[1])
