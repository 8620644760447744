"""Debian's podman on the simulated node: a private setup and a locally made image.

podman runs in the node's network namespace (entered with setns by `nsenter
--net`, so it shares the test's mount namespace and its netns bind mounts under
/run/netns stay visible) and execs cni-hwol through its CNI backend, as a node's
runtime would. Everything it keeps (storage, run state, locks, events, network
configs) lives under the node's work directory: a system podman is never read
or written. The one path outside is libcni's result cache (/var/lib/cni), which
podman does not let us move; `cached_results` lets tests check it is emptied.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

from tests.simnode import SimNode
from tests.simnode.leftovers import running
from tests.simnode.node import DEBIAN_CNI_PLUGINS

BUSYBOX = "/bin/busybox"  # busybox-static: a whole userland in one file, no libraries to copy
IMAGE = "localhost/hwol-busybox:test"
LIBCNI_CACHE = Path("/var/lib/cni/results")
# This machine's hard limits are lower than podman's defaults (1048576 files, 4194304 processes),
# which runc then fails to set; the container gets these instead.
ULIMITS = ("nofile=1024:1024", "nproc=1024:1024")


def podman_missing() -> str | None:
    missing = [tool for tool in ("podman", "runc", "conmon", "nsenter") if shutil.which(tool) is None]
    if not os.path.exists(BUSYBOX):
        missing.append("busybox-static")
    return f"missing {', '.join(missing)}: run .ci/setup" if missing else None


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


class PodmanNode:
    """podman with its own storage and config, running in one simulated node's namespace."""

    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.home = node.workdir / "podman"
        self.network_dir = self.home / "net.d"
        self.conf = self.home / "containers.conf"
        self.storage_conf = self.home / "storage.conf"

    def setup(self) -> PodmanNode:
        for d in ("root", "runroot", "tmp", "net.d"):
            (self.home / d).mkdir(parents=True, exist_ok=True)
        # conmon runs the exit command (`podman container cleanup`, hence DEL) with only the
        # variables listed here: the node's executor socket and node file must reach it too.
        conmon_env = [f"PATH={os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"]
        conmon_env += [f"{k}={v}" for k, v in self.node.plugin_env().items()]
        self.conf.write_text(
            "[containers]\n"
            f"default_ulimits = {_toml_list(list(ULIMITS))}\n"
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.home}/events.log"\n'
            # File locks under tmp_dir: the default shared-memory segment is the machine's.
            'lock_type = "file"\n'
            f'tmp_dir = "{self.home}/tmp"\n'
            f'static_dir = "{self.home}/root/libpod"\n'
            f'volume_path = "{self.home}/root/volumes"\n'
            f"conmon_env_vars = {_toml_list(conmon_env)}\n"
            "[network]\n"
            'network_backend = "cni"\n'
            f"cni_plugin_dirs = {_toml_list([str(self.node.bin_dir), DEBIAN_CNI_PLUGINS])}\n"
            f'network_config_dir = "{self.network_dir}"\n'
        )
        self.storage_conf.write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.home}/root"\nrunroot = "{self.home}/runroot"\n'
        )
        (self.home / "registries.conf").write_text("unqualified-search-registries = []\n")
        self.import_image()
        return self

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(self.home),
            "CONTAINERS_CONF": str(self.conf),
            "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
            "CONTAINERS_REGISTRIES_CONF": str(self.home / "registries.conf"),
            **self.node.plugin_env(),
        }

    def podman(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """`podman ARGS` in the node's network namespace (setns only: same mounts as the test)."""
        argv = ["nsenter", f"--net={self.node.netns}", "podman", *args]
        done = subprocess.run(argv, env=self.env(), capture_output=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited {done.returncode}\nstdout: {done.stdout.decode(errors='replace')}"
                f"\nstderr: {done.stderr.decode(errors='replace')}\nplugin log:\n{self.plugin_log()}"
            )
        self.node.sync_sysfs()  # play the kernel's sysfs, as after every plugin run of the rig
        return done

    def plugin_log(self) -> str:
        log = self.node.log_file
        return "\n".join(log.read_text().splitlines()[-30:]) if log.exists() else "(none)"

    def import_image(self) -> None:
        """A busybox root made here and imported: nothing is pulled from a registry."""
        tar_path = self.home / "busybox.tar"
        with tarfile.open(tar_path, "w") as tar:
            for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "run"):
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            tar.add(BUSYBOX, "bin/busybox")
            for applet in ("sh", "ip", "ping", "sleep", "nc", "cat", "true"):
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
        self.podman("import", "--change", "CMD=/bin/sh", str(tar_path), IMAGE)

    def write_network(self, name: str, device_id: str, range_start: str, range_end: str, **overrides: object) -> None:
        """A network of its own per VF (no Multus hands out deviceIDs): cni-hwol, host-local, portmap.
        All networks share the node's subnet and br-int, each leasing from its own range."""
        plugin = self.node.plugin_conf(deviceID=device_id, capabilities={"mac": True}, **overrides)
        plugin["ipam"].update(rangeStart=range_start, rangeEnd=range_end)
        conflist = {
            "cniVersion": "1.0.0",
            "name": name,
            "plugins": [plugin, {"type": "portmap", "capabilities": {"portMappings": True}}],
        }
        (self.network_dir / f"{name}.conflist").write_text(json.dumps(conflist, indent=1))

    def inspect(self, container: str) -> dict:
        return json.loads(self.podman("container", "inspect", container).stdout)[0]

    def address(self, container: str, network: str) -> str:
        return self.inspect(container)["NetworkSettings"]["Networks"][network]["IPAddress"]

    def wait_gone(self, pid: int, timeout: float = 30) -> None:
        """Until pid has died (a zombie counts as dead: whoever adopted it may be slow to reap)."""
        deadline = time.monotonic() + timeout
        while running(pid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"pid {pid} still runs")
            time.sleep(0.05)

    def remove_everything(self) -> None:
        """Containers down (DEL through podman), then podman's own mounts under the work dir."""
        self.podman("rm", "--all", "--force", "--time", "0", check=False)
        root = str(self.home)
        with open("/proc/self/mounts") as mounts:
            points = [line.split()[1] for line in mounts if line.split()[1].startswith(root)]
        for point in sorted(points, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)

    def cached_results(self, networks: list[str]) -> list[str]:
        """libcni's cached results of these networks (podman leaves them until DEL)."""
        if not LIBCNI_CACHE.exists():
            return []
        return sorted(p.name for p in LIBCNI_CACHE.iterdir() if any(p.name.startswith(f"{n}-") for n in networks))
