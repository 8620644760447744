"""The warm executor (cni_hwol/executor): verbs run in its forks exactly as in
an exec'd plugin, and the plugin runs them itself whenever no executor takes them.
What the tests exec is the front (shim.c) of the build or of the source tree.

The whole lifecycle, failure and fault suites also run through an executor when
CNI_HWOL_TEST_EXECUTOR=1 (.ci/run does it against the PyInstaller build).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from cni_hwol import __version__
from cni_hwol.cni.versions import SUPPORTED_VERSIONS
from cni_hwol.executor.protocol import (
    ACCEPTED,
    GO,
    MAX_MESSAGE,
    PASSED_FDS,
    REFUSED,
    SOCKET_ENV,
    decode_request,
    encode_request,
)
from tests.conftest import _require_e2e
from tests.simnode.node import DEBIAN_CNI_PLUGINS, TEST_EXECUTOR_ENV, Executor, SimNode
from tests.simnode.nsexec import _enter


@pytest.fixture
def executor(node):
    warm = Executor(node.workdir, "executor-test").start()
    yield warm
    warm.stop()


def plugin(node, pod, verb: str, socket_path: str, wrapper: tuple[str, ...] = (), **env: str) -> subprocess.Popen:
    """cni-hwol exec'd directly in the node namespace, as a runtime runs it
    (through `wrapper`, a command that execs the rest, when given)."""
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
        [*wrapper, str(node.bin_dir / "cni-hwol")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
        preexec_fn=_enter(node.netns),
    )


def run_plugin(
    node, pod, verb: str, conf: dict, socket_path: str, wrapper: tuple[str, ...] = (), **env: str
) -> tuple[int, str]:
    proc = plugin(node, pod, verb, socket_path, wrapper, **env)
    try:
        out, _ = proc.communicate(json.dumps(conf).encode(), timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()  # a hung front must not outlive its test
        proc.communicate()
        raise
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
    """A listener that answers every request with `answer` (REFUSED..., or
    ACCEPTED), or never answers (None), then waits for what the client does next
    and hangs up: `seen` holds the requests, `then` what followed the answer (GO,
    or b"" when the client hung up). An ACCEPTED answered by GO then hung up is an
    executor that died while its fork ran. `before_answer(client_pid)` runs first.
    Leaving the block shuts the listener down and joins its thread. Closing alone
    left the thread behind, and once (strace in CI's flake) it answered the next
    test's DEL with this test's answer: the next listener had been given the
    same fd number."""

    def __init__(self, path: str, answer: bytes | None, before_answer: Callable[[int], None] | None = None) -> None:
        self.path, self.answer, self.before_answer = path, answer, before_answer
        self.seen: list[bytes] = []
        self.then: list[bytes] = []

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
                if self.before_answer is not None:
                    self.before_answer(_peer_pid(conn))
                with contextlib.suppress(OSError):
                    if self.answer is not None:
                        conn.send(self.answer)
                    self.then.append(conn.recv(64))  # blocks until the client sends or hangs up


def _peer_pid(conn: socket.socket) -> int:
    pid, _, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return pid


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
    assert fake.then == [b"", b""]  # the front hung up: no GO
    version, argv, environ = decode_request(fake.seen[0])
    assert (version, argv) == (__version__, [])
    assert environ[b"CNI_COMMAND"] == b"ADD" and environ[SOCKET_ENV.encode()] == path.encode()
    assert encode_request(version, argv, environ) == fake.seen[0]  # the front encodes as protocol.py does


def test_an_accepted_arriving_as_the_front_gives_up_starts_nothing(node):
    """The front's timeout branch, raced: ACCEPTED is sent while the front is held
    (strace) at the shutdown() that gives up after 2 s of silence. The front must
    run the verb itself, and never send the GO that would start a second run."""

    def when_the_front_hangs_up(pid: int) -> None:
        deadline = time.monotonic() + 30
        while not _in_syscall(pid, SYS_SHUTDOWN):
            assert time.monotonic() < deadline, "the front never reached its shutdown()"
            time.sleep(0.02)

    path = str(node.workdir / "fake.sock")
    pod, vf = node.create_pod("pod1"), node.vf(0, 2)
    conf = {**node.netconf(), "deviceID": vf.pci}
    before = node.snapshot()
    # Only the front's first shutdown() is held; the Python plugin it may exec runs freely.
    held = ("strace", "-qq", "-o", "/dev/null", "-e", "trace=shutdown", "-e", "inject=shutdown:delay_enter=5s:when=1")
    with FakeExecutor(path, ACCEPTED, before_answer=when_the_front_hangs_up) as fake:
        status, out = run_plugin(node, pod, "ADD", conf, path, wrapper=held)
    assert status == 0, out
    assert fake.then == [b""]  # hung up, no GO
    assert node.pod_link(pod)["address"] == json.loads(out)["interfaces"][1]["mac"]
    assert run_plugin(node, pod, "DEL", conf, "none")[0] == 0
    assert node.snapshot() == before


SYS_SHUTDOWN = 48  # x86_64


def _in_syscall(pid: int, number: int) -> bool:
    try:
        with open(f"/proc/{pid}/syscall") as f:
            return f.read().split()[0] == str(number)
    except (OSError, IndexError):
        return False


def test_an_executor_gone_while_its_fork_runs_fails_the_verb_with_try_again(node):
    path = str(node.workdir / "fake.sock")
    with FakeExecutor(path, ACCEPTED) as fake:  # took the verb, then went away
        pod = node.create_pod("pod1")
        conf = {**node.netconf(), "deviceID": node.vf(0, 3).pci}
        before = node.snapshot()
        status, out = run_plugin(node, pod, "ADD", conf, path)
    assert status == 1 and len(fake.seen) == 1 and fake.then == [GO]
    error = json.loads(out)
    assert error["code"] == 11 and "executor stopped" in error["msg"]
    assert node.snapshot() == before  # the front never runs the verb a second time


def test_an_executor_killed_mid_verb_answers_try_again_and_del_restores_the_node(node):
    """The real executor SIGKILLed while its fork waits in IPAM (lease taken, VF
    moved): the front answers 11, the fork dies with its executor (no verb left
    running to race the retry), and DEL brings the node back whole."""
    warm = Executor(node.workdir, "executor-killed").start()
    paused = node.bin_dir / "paused-host-local"
    paused.write_text(
        f'#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then {DEBIAN_CNI_PLUGINS}/host-local >/dev/null; exec sleep 60; fi\n'
        f"exec {DEBIAN_CNI_PLUGINS}/host-local\n"
    )
    paused.chmod(0o755)
    pod, vf = node.create_pod("pod1"), node.vf(1, 2)
    ipam = {"type": "paused-host-local", "subnet": node.subnet, "dataDir": str(node.ipam_dir)}
    conf = {**node.netconf(ipam=ipam), "deviceID": vf.pci}
    before = node.snapshot()
    proc = plugin(node, pod, "ADD", warm.socket)
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    try:
        fork_pid, ipam_children = _fork_waiting_in_ipam(warm)
        warm.proc.kill()
        warm.proc.wait()
        out = proc.stdout.read()
        assert proc.wait(30) == 1
        assert json.loads(out)["code"] == 11
        _wait_gone(fork_pid)
    finally:
        for pid in ipam_children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # the orphaned IPAM child, as after any killed plugin
        warm.stop()
    assert node.snapshot() != before  # the kill came mid-verb: there is something to undo
    node.sync_sysfs()
    assert run_plugin(node, pod, "DEL", conf, warm.socket)[0] == 0  # no executor now: in process
    assert node.snapshot() == before


def _fork_waiting_in_ipam(warm: Executor) -> tuple[int, list[int]]:
    """The pid of the fork whose IPAM child sleeps, and that child's pid."""
    deadline = time.monotonic() + 30
    while True:
        forks = warm.forks()
        children = [pid for pid in _pids_of("sleep 60") if _ppid(pid) in forks]
        if children:
            return _ppid(children[0]), children
        assert time.monotonic() < deadline, warm.log.read_text()
        time.sleep(0.1)


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and _state(pid) != "Z":
        assert time.monotonic() < deadline, f"pid {pid} is still running"
        time.sleep(0.1)


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
    before = node.snapshot()
    pod, vf = node.create_pod("pod1"), node.vf(1, 0)
    conf = {**node.netconf(), "deviceID": vf.pci}
    status, _ = run_plugin(node, pod, "ADD", conf, executor.socket, CNI_HWOL_CRASH_AFTER="vf-moved-lease-taken")
    assert status == -signal.SIGKILL
    assert run_plugin(node, pod, "DEL", conf, executor.socket)[0] == 0
    assert node.snapshot() == before


def test_a_killed_client_takes_its_fork_with_it(node, executor):
    """A runtime timeout kills the plugin; the fork doing its work must not outlive it."""
    sleepy = node.bin_dir / "sleepy-ipam"
    sleepy.write_text('#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then exec sleep 60; fi\nexit 0\n')
    sleepy.chmod(0o755)
    before = node.snapshot()
    pod, vf = node.create_pod("pod1"), node.vf(1, 1)
    conf = {**node.netconf(ipam={"type": "sleepy-ipam"}), "deviceID": vf.pci}
    proc = plugin(node, pod, "ADD", executor.socket)
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    fork_pid, ipam_children = _fork_waiting_in_ipam(executor)
    proc.kill()
    proc.wait()
    _wait_gone(fork_pid)
    for pid in ipam_children:
        os.kill(pid, signal.SIGKILL)  # the orphaned IPAM child, as after any killed plugin
    node.sync_sysfs()
    assert run_plugin(node, pod, "DEL", conf, executor.socket)[0] == 0
    assert node.snapshot() == before


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


def test_version_ignores_every_other_variable_on_every_path(node, executor):
    """libcni's ValidateNetworkList execs VERSION with CNI_NETNS=dummy and the like."""
    pod = node.create_pod("pod1")
    dummy = {"CNI_NETNS": "dummy", "CNI_CONTAINERID": "dummy", "CNI_IFNAME": "dummy"}
    for socket_path in (executor.socket, "none"):
        status, out = run_plugin(node, pod, "VERSION", {"cniVersion": "1.0.0"}, socket_path, **dummy)
        assert status == 0, out
        assert json.loads(out)["supportedVersions"] == list(SUPPORTED_VERSIONS)
    assert "runs VERSION dummy" in executor.log.read_text()


def test_a_stopped_executor_with_a_full_backlog_leaves_the_verb_to_the_plugin(node, executor):
    """connect() to a listener whose backlog is full blocks until it drains: not forever."""
    os.kill(executor.proc.pid, signal.SIGSTOP)
    queued: list[socket.socket] = []
    try:
        while True:
            waiting = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            waiting.setblocking(False)
            try:
                waiting.connect(executor.socket)
            except BlockingIOError:
                waiting.close()
                break
            queued.append(waiting)
        pod, vf = node.create_pod("pod1"), node.vf(0, 1)
        conf = {**node.netconf(), "deviceID": vf.pci}
        status, out = run_plugin(node, pod, "ADD", conf, executor.socket)
        assert status == 0, out
        assert node.pod_link(pod)["address"] == json.loads(out)["interfaces"][1]["mac"]
    finally:
        for waiting in queued:
            waiting.close()
        os.kill(executor.proc.pid, signal.SIGCONT)
    assert run_plugin(node, pod, "DEL", conf, executor.socket)[0] == 0
    assert "runs ADD" not in executor.log.read_text()


def test_a_stopping_executor_leaves_the_socket_a_newer_one_bound(node):
    """A rolling upgrade: the new executor binds the path before the old one stops."""
    old = Executor(node.workdir, "executor-old").start()
    new = Executor(node.workdir, "executor-new")
    new.socket = old.socket
    try:
        new.start()
        old.stop()
        assert os.path.exists(new.socket)
        pod = node.create_pod("pod1")
        assert run_plugin(node, pod, "VERSION", {"cniVersion": "1.0.0"}, new.socket)[0] == 0
        assert "runs VERSION" in new.log.read_text()
    finally:
        new.stop()
        old.stop()


def test_a_root_caller_without_capabilities_is_refused_and_runs_its_verb_itself(node, executor):
    """Issue 16's attack: a container's root (uid 0, no capabilities) hands the
    executor a DEL whose IPAM type names a script of its own on CNI_PATH. The
    script must run in the caller's process tree, with the caller's (no) capabilities."""
    record = node.workdir / "evil.caps"
    evil = node.bin_dir / "evil"
    evil.write_text(f"#!/bin/sh\ngrep CapEff /proc/self/status >> {record}\n")
    evil.chmod(0o755)
    pod = node.create_pod("pod1")
    conf = {**node.netconf(ipam={"type": "evil"}), "deviceID": node.vf(0, 1).pci}
    no_capabilities = ("setpriv", "--inh-caps=-all", "--bounding-set=-all", "--")
    status, out = run_plugin(node, pod, "DEL", conf, executor.socket, no_capabilities)
    assert status == 0, out
    assert record.read_text().split() == ["CapEff:", "0000000000000000"]
    log = executor.log.read_text()
    assert "lacks capabilities" in log and "runs DEL" not in log


@pytest.mark.parametrize("foreign", ["mnt", "net"])
def test_namespaces_not_the_callers_own_are_refused(node, executor, foreign):
    """A caller may only hand over its own namespaces (here: the node's netns, or
    the mount namespace of a process in another one, while it is in neither)."""
    outsider = subprocess.Popen(["unshare", "--mount", "sleep", "60"])
    namespaces = {"mnt": "/proc/self/ns/mnt", "net": "/proc/self/ns/net"}
    namespaces[foreign] = {"mnt": f"/proc/{outsider.pid}/ns/mnt", "net": node.netns}[foreign]
    try:
        _wait_for_own_mount_namespace(outsider.pid)
        assert _offer(executor, namespaces).startswith(REFUSED + b"client pid")
        own = {"mnt": "/proc/self/ns/mnt", "net": "/proc/self/ns/net"}
        assert _offer(executor, own) == ACCEPTED  # hung up after, without GO: nothing runs
    finally:
        outsider.kill()
        outsider.wait()
    # The executor logs the hang-up on its own schedule; a fork would log "runs VERSION" before it.
    deadline = time.monotonic() + 10
    while "a client gave up waiting" not in executor.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = executor.log.read_text()
    assert "a client gave up waiting" in log
    assert f"handed over a {foreign} namespace not its own" in log and "runs VERSION" not in log


# Drops to uid 65534 keeping every capability (PR_SET_KEEPCAPS, then effective = permitted),
# sends a VERSION request with its own namespaces and prints the executor's answer.
_CAPABLE_NOBODY = r"""
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(8, 1, 0, 0, 0) == 0  # PR_SET_KEEPCAPS
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
caps = (ctypes.c_uint32 * 6)()  # (effective, permitted, inheritable) x 2
assert libc.capget(header, caps) == 0
caps[0], caps[3] = caps[1], caps[4]
assert libc.capset(header, caps) == 0
fds = [os.open(path, os.O_RDONLY) for path in (os.devnull,) * 3 + ("/proc/self/ns/mnt", "/proc/self/ns/net")]
with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
    conn.connect(sys.argv[1])
    socket.send_fds(conn, [bytes.fromhex(sys.argv[2])], fds)
    sys.stdout.buffer.write(conn.recv(4096))
"""


def test_a_caller_other_than_root_is_refused_even_with_every_capability(executor):
    request = encode_request(__version__, [], {b"CNI_COMMAND": b"VERSION"})
    done = subprocess.run(
        [sys.executable, "-c", _CAPABLE_NOBODY, executor.socket, request.hex()],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert done.stdout == REFUSED + b"client uid 65534 is not root"


def _wait_for_own_mount_namespace(pid: int) -> None:
    deadline = time.monotonic() + 10
    while os.stat(f"/proc/{pid}/ns/mnt").st_ino == os.stat("/proc/self/ns/mnt").st_ino:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _offer(executor: Executor, namespaces: dict[str, str]) -> bytes:
    """Send a VERSION request as the front would, with these namespace files; the answer."""
    request = encode_request(__version__, [], {b"CNI_COMMAND": b"VERSION"})
    fds = [os.open(namespaces[kind], os.O_RDONLY | os.O_CLOEXEC) for kind in ("mnt", "net")]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
            conn.connect(executor.socket)
            with open(os.devnull, "r+b") as null:
                socket.send_fds(conn, [request], [null.fileno()] * 3 + fds)
            return conn.recv(4096)
    finally:
        for fd in fds:
            os.close(fd)


def test_the_executor_pass_notices_a_verb_run_outside_the_executor(monkeypatch):
    """CNI_HWOL_TEST_EXECUTOR=1 (.ci/run's second pass): a node fails its teardown
    when any line of the plugin's log came from a process not forked by the executor."""
    _require_e2e()
    monkeypatch.setenv(TEST_EXECUTOR_ENV, "1")
    with SimNode(pfs=1, vfs_per_pf=1) as sim:
        pod = sim.create_pod("pod1")
        conf = {**sim.netconf(), "deviceID": sim.vf(0, 0).pci}
        assert run_plugin(sim, pod, "ADD", conf, sim.executor.socket)[0] == 0
        assert sim.executor.forks() and sim.verbs_outside_the_executor() == []
        assert run_plugin(sim, pod, "DEL", conf, "none")[0] == 0
        outside = sim.verbs_outside_the_executor()
        assert outside and all(" DEL " in line for line in outside)
        sim.log_file.unlink()  # this node's own teardown would fail on it
