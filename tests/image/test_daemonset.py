"""The image built here (packaging/Dockerfile, no registry) and packaging/daemonset.yaml played as
the kubelet would: every setting comes from the manifest (tests/image/podman.py).

The init container installs the tree and the node file into temp dirs standing for the host's
/opt/cni/bin and /etc/cni/cni-hwol, with a read-only root and every capability dropped; the
executor container (privileged, host PID, the socket directory mounted) serves the front exec'd
from that dir, with the results and end state the same verbs have in process; its liveness probe
passes; the installer's --uninstall leaves the dir as it was.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from cni_hwol import __version__
from tests.image import require
from tests.image.podman import Kubelet, Manifest, Podman
from tests.simnode.builds import REPO
from tests.simnode.node import Pod

IMAGE = f"localhost/cni-hwol:{__version__}"


@pytest.fixture(scope="module")
def podman():
    require("podman", "runc", "mmdebstrap")
    podman = Podman()
    podman.build(IMAGE)
    return podman


def listing(directory) -> dict[str, str]:
    """Every entry below directory: symlinks with their target, files with their size."""
    found = {}
    for path in sorted(directory.rglob("*")):
        name = str(path.relative_to(directory))
        if path.is_symlink():
            found[name] = "-> " + str(path.readlink())
        elif path.is_file():
            found[name] = f"{path.stat().st_size} bytes"
        else:
            found[name] = "dir"
    return found


def strip_addresses(result: dict) -> dict:
    """A result without what host-local hands out anew on each ADD."""
    return {**result, "ips": [{**ip, "address": "", "gateway": ""} for ip in result.get("ips", [])]}


def test_the_daemonset_installs_serves_and_uninstalls(podman, node, tmp_path):
    manifest = Manifest.load()
    kubelet = Kubelet(podman, manifest, tmp_path)
    install = manifest.container("install")
    assert install["securityContext"]["readOnlyRootFilesystem"] is True
    assert install["securityContext"]["capabilities"]["drop"] == ["ALL"]

    cni_bin = kubelet.host_path("/opt/cni/bin")
    (cni_bin / "macvlan").write_text("the node's own plugin\n")  # what was there before
    before_install = listing(cni_bin)

    done = kubelet.run("install", IMAGE)
    assert done.returncode == 0, done.stderr
    assert (cni_bin / "cni-hwol").readlink().as_posix() == f"cni-hwol.d/{__version__}/cni-hwol"
    node_file = kubelet.host_path("/etc/cni/cni-hwol") / "node.json"
    assert json.loads(node_file.read_text()) == json.loads(manifest.config_map["data"]["node.json"])

    # The front exec'd from the installed dir, in process (no executor) and then through the
    # executor container: the same results, the node as before after each DEL.
    front = cni_bin / "cni-hwol"
    node.bin_dir = cni_bin  # CNI_PATH: the host's /opt/cni/bin as installed
    executor_name = f"cni-hwol-executor-{secrets.token_hex(3)}"
    socket_dir = kubelet.volume_dir(
        next(m["name"] for m in manifest.container("executor")["volumeMounts"] if m["mountPath"] == "/run/cni-hwol")
    )
    pod = node.create_pod("image")
    conf = {**node.netconf(), "deviceID": node.vf(0, 1).pci}
    before = node.snapshot()

    def lifecycle(socket: str) -> dict:
        env = {"CNI_HWOL_EXECUTOR_SOCKET": socket}
        status, result, stderr = node.exec_plugin("ADD", conf, pod, env_overrides=env)
        assert status == 0, f"{result} {stderr}"
        status, body, stderr = node.exec_plugin("CHECK", {**conf, "prevResult": result}, pod, env_overrides=env)
        assert status == 0, f"{body} {stderr}"
        status, body, stderr = node.exec_plugin("DEL", conf, pod, env_overrides=env)
        assert status == 0, f"{body} {stderr}"
        assert node.snapshot() == before
        return result

    assert front.resolve().parent.parent.name == "cni-hwol.d"
    in_process = lifecycle("none")
    # The manifest's command, with its log at debug: it then names each fork ("pid N runs").
    kubelet.start("executor", IMAGE, executor_name, ["--log-level", "debug"])
    try:
        socket = socket_dir / "executor.sock"
        wait_for_log(podman, executor_name, "executor listening on")
        probe = kubelet.probe("executor", executor_name)
        assert probe.returncode == 0, probe.stderr
        node.log_file.write_text("")
        through_executor = lifecycle(str(socket))
        assert strip_addresses(through_executor) == strip_addresses(in_process)
        # Every line of the plugin's log since then came from one of the executor's forks.
        log = executor_log(podman, executor_name)
        forks = {int(pid) for pid in re.findall(r"pid (\d+) runs ", log)}
        assert len(forks) == 3, log  # ADD, CHECK, DEL: each once
        lines = node.log_file.read_text().splitlines()
        writers = {int(m[1]) for line in lines if (m := re.search(r" \[(\d+)\] ", line))}
        assert writers and writers <= forks  # CHECK logs nothing
    finally:
        podman("rm", "--force", "--time=5", executor_name, check=False)

    done = kubelet.run("install", IMAGE, ["--uninstall"])
    assert done.returncode == 0, done.stderr
    assert listing(cni_bin) == before_install


def executor_log(podman: Podman, container: str) -> str:
    done = podman("logs", container)
    return done.stdout + done.stderr


def wait_for_log(podman: Podman, container: str, text: str) -> None:
    deadline = time.monotonic() + 120
    while text not in (logs := executor_log(podman, container)):
        state = podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        if state != "running" or time.monotonic() > deadline:
            raise AssertionError(f"executor container {state}:\n{logs}")
        time.sleep(0.2)


def stop_container(podman: Podman, container: str, grace: float) -> None:
    """Stop a container as the kubelet's runtime does: SIGTERM to its main process, SIGKILL after grace."""
    podman("kill", "--signal=TERM", container)
    deadline = time.monotonic() + grace
    while podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip() == "running":
        if time.monotonic() > deadline:
            podman("kill", "--signal=KILL", container, check=False)
            break
        time.sleep(0.1)


def old_front_lifecycle(node, tree: Path, pod: Pod, device: str, socket: Path) -> list[str]:
    """ADD and DEL through the front of an older tree still on disk; the attachment's container id."""
    attachment = Pod(pod.name, pod.ns_name, pod.netns, "upgrade-late-front", pod.uid)
    conf = {**node.netconf(), "deviceID": device}
    bin_dir, node.bin_dir = node.bin_dir, tree
    try:
        for verb in ("ADD", "DEL"):
            status, out, stderr = node.exec_plugin(
                verb, conf, attachment, env_overrides={"CNI_HWOL_EXECUTOR_SOCKET": str(socket)}
            )
            assert status == 0, f"{verb}: {out} {stderr}"
    finally:
        node.bin_dir = bin_dir
    return [attachment.container_id]


def bumped(version: str) -> str:
    major, minor, patch = version.split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


def newer_source(tmp_path) -> Path:
    """The build context once more, with the version bumped: the next release."""
    context = tmp_path / "next-release"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, context / name)
    for name in ("cni_hwol", "packaging"):
        shutil.copytree(REPO / name, context / name, ignore=shutil.ignore_patterns("__pycache__"))
    init = context / "cni_hwol" / "__init__.py"
    init.write_text(init.read_text().replace(f'"{__version__}"', f'"{bumped(__version__)}"'))
    return context


@dataclass
class LoopedVerb:
    verb: str
    container_id: str
    front: tuple[str, str]  # the symlink's target read before and after the exec
    status: int
    output: str


def test_an_upgrade_under_a_loop_of_verbs_fails_none_runs_none_twice_and_never_mixes_versions(podman, node, tmp_path):
    new_version = bumped(__version__)
    new_image = f"localhost/cni-hwol:{new_version}"
    podman.build(new_image, newer_source(tmp_path))
    manifest = Manifest.load()
    kubelet = Kubelet(podman, manifest, tmp_path)
    cni_bin = kubelet.host_path("/opt/cni/bin")
    before_install = listing(cni_bin)
    socket = kubelet.host_path("/run/cni-hwol") / "executor.sock"
    grace = float(manifest.pod["terminationGracePeriodSeconds"])
    old_pod, new_pod = (f"cni-hwol-{name}-{secrets.token_hex(3)}" for name in ("old", "new"))
    debug = ["--log-level", "debug"]  # the executor names each fork ("pid N runs")

    assert kubelet.run("install", IMAGE).returncode == 0
    node.bin_dir = cni_bin
    kubelet.start("executor", IMAGE, old_pod, debug)
    wait_for_log(podman, old_pod, "executor listening on")

    pod = node.create_pod("upgrade")
    device = node.vf(0, 1).pci
    before = node.snapshot()
    ran: list[LoopedVerb] = []
    upgraded = threading.Event()
    stop = threading.Event()

    def loop() -> None:
        env = {"CNI_HWOL_EXECUTOR_SOCKET": str(socket)}
        round_ = 0
        while not stop.is_set():
            round_ += 1
            attachment = Pod(pod.name, pod.ns_name, pod.netns, f"upgrade-{round_:04d}", pod.uid)
            conf = {**node.netconf(), "deviceID": device}
            answers: dict[str, dict] = {}
            for verb in ("ADD", "CHECK", "DEL"):
                target = os.readlink(cni_bin / "cni-hwol")
                body = {**conf, "prevResult": answers["ADD"]} if verb == "CHECK" else conf
                status, out, stderr = node.exec_plugin(verb, body, attachment, env_overrides=env)
                ran.append(
                    LoopedVerb(
                        verb,
                        attachment.container_id,
                        (target, os.readlink(cni_bin / "cni-hwol")),
                        status,
                        f"{out} {stderr}",
                    )
                )
                if status != 0:
                    return
                answers[verb] = out
            if upgraded.is_set() and sum(1 for v in ran if v.front[0].startswith(f"cni-hwol.d/{new_version}/")) >= 9:
                return

    looping = threading.Thread(target=loop)
    looping.start()
    try:
        while len(ran) < 6 and looping.is_alive():
            time.sleep(0.1)
        # The kubelet's rolling update of this node's pod: the old pod stops (SIGTERM to the
        # container's main process, SIGKILL after the grace period), then the new one runs its
        # init container and starts its executor. (Not `podman stop`: on a container in the host's
        # PID namespace it signals every process in it, the executor's forks too.)
        stop_container(podman, old_pod, grace)
        done = kubelet.run("install", new_image)
        assert done.returncode == 0, done.stderr
        kubelet.start("executor", new_image, new_pod, debug)
        wait_for_log(podman, new_pod, "executor listening on")
        upgraded.set()
        looping.join(timeout=600)
        # A front exec'd before the swap that reaches the socket only now (the old tree's own).
        late = old_front_lifecycle(node, cni_bin / "cni-hwol.d" / __version__, pod, device, socket)
    finally:
        stop.set()
        looping.join()
        old_log, new_log = executor_log(podman, old_pod), executor_log(podman, new_pod)
        podman("rm", "--force", "--time=5", old_pod, new_pod, check=False)

    failed = [v for v in ran if v.status != 0]
    assert not failed, failed
    assert node.snapshot() == before
    # Which process ran each verb: a fork of the old or the new executor, or the front's own Python.
    forks = {
        version: {int(pid) for pid in re.findall(r"pid (\d+) runs ", log)}
        for version, log in ((__version__, old_log), (new_version, new_log))
    }
    lines = node.log_file.read_text().splitlines()
    for verb, done_line in (("ADD", "added "), ("DEL", "deleted attachment ")):
        for looped in (v for v in ran if v.verb == verb):
            found = [line for line in lines if done_line in line and looped.container_id in line]
            assert len(found) == 1, found  # ran once: never by a fork and by the front both
            pid = int(re.search(r" \[(\d+)\] ", found[0])[1])
            ran_by = next((version for version, pids in forks.items() if pid in pids), None)
            if ran_by and looped.front[0] == looped.front[1]:
                assert looped.front[0].startswith(f"cni-hwol.d/{ran_by}/"), (looped, ran_by)
    assert forks[__version__] and forks[new_version]  # the loop spanned both executors
    # The old front's verbs ran in its own Python: the new executor refused it.
    for container_id in late:
        found = [line for line in lines if container_id in line and ("added " in line or "deleted " in line)]
        assert len(found) == 2 and not {int(re.search(r" \[(\d+)\] ", line)[1]) for line in found} & forks[new_version]
    assert f"client is cni-hwol {__version__}, executor is {new_version}" in new_log

    assert kubelet.run("install", new_image, ["--uninstall"]).returncode == 0
    assert listing(cni_bin) == before_install
