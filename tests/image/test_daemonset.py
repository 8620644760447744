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
import re
import secrets
import time

import pytest

from cni_hwol import __version__
from tests.image import require
from tests.image.podman import Kubelet, Manifest, Podman

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
