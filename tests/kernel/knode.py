"""The kernel tier's node (inside the VM only): netdevsim PFs in switchdev mode with
devlink representors, dummy netdevs as their VFs described by a fake sysfs tree, and
a private OVS on the kernel datapath with hw-offload.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from cni_hwol.executor.protocol import SOCKET_ENV as EXECUTOR_SOCKET_ENV
from cni_hwol.hw.devlink import Devlink
from tests.simnode.fake_sysfs import FakeSysfs
from tests.simnode.node import plugin_wrapper
from tests.simnode.ovs import Ovs

VFS = 4
SWITCHDEV = (1, 2)  # netdevsim1 and netdevsim2 go to switchdev; netdevsim3 stays legacy
LEGACY = 3


def sh(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise RuntimeError(f"{argv}: {done.stderr}")
    return done.stdout


def links(netns: str | None = None) -> list[tuple]:
    """Every link of a namespace: name, MTU, MAC, up, altnames."""
    where = ["-n", netns] if netns else []
    return sorted(
        (e["ifname"], e.get("mtu"), e.get("address"), "UP" in e.get("flags", []), sorted(e.get("altnames", [])))
        for e in json.loads(sh("ip", *where, "-j", "link", "show"))
    )


def altnames(netns: str | None = None) -> dict[str, list[str]]:
    return {name: names for name, *_, names in links(netns)}


def give_altnames(link: str, *names: str, netns: str | None = None) -> None:
    for name in names:
        sh("ip", *(["-n", netns] if netns else []), "link", "property", "add", "dev", link, "altname", name)


class KernelNode:
    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="hwol-kernel-"))
        self.sysfs = FakeSysfs(self.workdir / "sys")
        self.ovs = Ovs(self.workdir / "ovs", netns=None)
        self.bin_dir = self.workdir / "bin"
        self.bin_dir.mkdir()
        plugin_wrapper(self.bin_dir)
        self.vfs: dict[tuple[int, int], str] = {}  # (netdevsim id, vf) -> PCI address

    def start(self) -> KernelNode:
        with Devlink() as devlink:
            for dev in (*SWITCHDEV, LEGACY):
                Path("/sys/bus/netdevsim/new_device").write_text(f"{dev} 1")
                deadline = time.monotonic() + 10
                while not Path(f"/sys/class/net/eni{dev}np1").exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                Path(f"/sys/bus/netdevsim/devices/netdevsim{dev}/sriov_numvfs").write_text(str(VFS))
                if dev in SWITCHDEV:  # the plugin's own devlink code switches the eswitch
                    devlink.set_eswitch_mode(f"netdevsim/netdevsim{dev}", "switchdev")
                # The fake PCI side: PF function .0 (pfnum 0, as netdevsim's), VFs as dummies.
                pf_pci = f"0000:{dev:02x}:00.0"
                base = (0x10 + dev) << 8
                self.sysfs.add_pf(pf_pci, f"eni{dev}np1", f"{dev:016x}", base, VFS)
                for vf in range(VFS):
                    name = f"vf{dev}x{vf}"
                    sh("ip", "link", "add", name, "type", "dummy")
                    self.vfs[(dev, vf)] = self.sysfs.add_vf(pf_pci, vf, base, name)
        self.ovs.start(hw_offload=True)
        self.ovs.add_bridge("br-int", datapath="system")
        conf = {
            "cniVersion": "1.0.0",
            "name": "hwol",
            "plugins": [
                {
                    "type": "cni-hwol",
                    "ovsdbSocket": self.ovs.socket,
                    "stateDir": str(self.workdir / "state"),
                    "sysfsRoot": str(self.sysfs.root),
                    "logFile": str(self.workdir / "cni-hwol.log"),
                    "logLevel": "debug",
                    "capabilities": {"deviceID": True},
                    "ipam": {"type": "host-local", "subnet": "10.77.0.0/24", "dataDir": str(self.workdir / "ipam")},
                }
            ],
        }
        (self.workdir / "net.d").mkdir()
        (self.workdir / "net.d" / "hwol.conflist").write_text(json.dumps(conf))
        return self

    def cnitool(self, verb: str, pod: str, device_id: str) -> subprocess.CompletedProcess:
        env = {
            "PATH": os.environ["PATH"],
            "NETCONFPATH": str(self.workdir / "net.d"),
            "CNI_PATH": f"{self.bin_dir}:/usr/lib/cni",
            "CNI_IFNAME": "net1",
            "CNI_CONTAINERID": f"c-{pod}",
            "CNI_CACHE_DIR": str(self.workdir / "cache"),
            "CAP_ARGS": json.dumps({"deviceID": device_id}),
            "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}",
        }
        return subprocess.run(
            [os.environ["CNITOOL"], verb, "hwol", f"/run/netns/{pod}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    def exec_plugin(self, command: str, pod: str, device_id: str, **extra: object) -> tuple[int, dict, str]:
        """cni-hwol run directly, as a runtime does: (exit status, stdout JSON, stderr)."""
        conflist = json.loads((self.workdir / "net.d" / "hwol.conflist").read_text())
        conf = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **conflist["plugins"][0]}
        env = {
            "PATH": os.environ["PATH"],
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": f"c-{pod}",
            "CNI_NETNS": f"/run/netns/{pod}",
            "CNI_IFNAME": "net1",
            "CNI_PATH": f"{self.bin_dir}:/usr/lib/cni",
            EXECUTOR_SOCKET_ENV: "none",
        }
        done = subprocess.run(
            [str(self.bin_dir / "cni-hwol")],
            input=json.dumps({**conf, "deviceID": device_id, **extra}),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr

    def snapshot(self, *pods: str) -> dict:
        """Everything an attachment could leave behind: links (with altnames) and
        addresses here and in the pods, OVS ports, leases, state files, the sysfs VF listing."""
        addresses = sorted(
            (e["ifname"], a["local"], a["prefixlen"])
            for e in json.loads(sh("ip", "-j", "addr", "show"))
            for a in e.get("addr_info", [])
        )
        files = {  # leases, attachments and VF claims; not host-local's lock and cursor
            d: sorted(
                str(p.relative_to(self.workdir))
                for p in (self.workdir / d).rglob("*")
                if p.is_file() and not p.name.startswith(("lock", "last_reserved_ip"))
            )
            for d in ("ipam", "state/attachments", "state/devices")
        }
        return {
            "links": links(),
            "pods": {pod: links(pod) for pod in pods},
            "addresses": addresses,
            "ports": self.ovs.ports("br-int"),
            "files": files,
            "sysfs": {pci: self.sysfs.vf_netdevs(pci) for pci in self.vfs.values()},
        }

    def log(self) -> str:
        path = self.workdir / "cni-hwol.log"
        return path.read_text() if path.exists() else ""

    def close(self) -> None:
        self.ovs.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
