"""The simulated node: a network namespace playing the host, with NIC, OVS and CNI."""

from __future__ import annotations

import compileall
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cni_hwol.executor.protocol import SOCKET_ENV as EXECUTOR_SOCKET_ENV
from cni_hwol.nodeconf import NODE_CONFIG_ENV
from tests.simnode import leftovers
from tests.simnode.builds import cnitool_binary, shim_binary
from tests.simnode.fake_sysfs import FakeSysfs
from tests.simnode.nsexec import ip, run
from tests.simnode.ovs import Ovs

REPO = Path(__file__).resolve().parents[2]
DEBIAN_CNI_PLUGINS = "/usr/lib/cni"
# "1": every plugin run goes through a warm executor (cni_hwol/executor) the node starts.
TEST_EXECUTOR_ENV = "CNI_HWOL_TEST_EXECUTOR"


@dataclass
class VfPair:
    pf_index: int
    vf_index: int
    pci: str
    vf_name: str  # the VF netdev's name in the node namespace
    rep_name: str


@dataclass
class Pod:
    name: str
    ns_name: str  # under /var/run/netns; kept apart from netns, which tests may point elsewhere
    netns: str
    container_id: str
    uid: str = field(default_factory=lambda: secrets.token_hex(8))


def plugin_wrapper(bin_dir: Path) -> Path:
    """cni-hwol on CNI_PATH: the built tree when CNI_HWOL_BINARY names its front, else the source tree.

    The source tree is laid out as the build is: the exec'd front (shim.c,
    compiled) as `cni-hwol`, and beside it as `cni-hwol-py` a script running the
    source with -S and an explicit path: this image's site-packages .pth files
    (editable installs, certifi) cost ~35 ms per exec, which no node pays. The
    source is compiled once, as an installed package would be: with
    PYTHONDONTWRITEBYTECODE set, every exec would otherwise compile it again.
    """
    target = bin_dir / "cni-hwol"
    binary = os.environ.get("CNI_HWOL_BINARY")
    if binary:
        os.symlink(os.path.abspath(binary), target)
        return target
    compileall.compile_dir(REPO / "cni_hwol", quiet=1)
    paths = [str(REPO), sysconfig.get_paths()["purelib"]]
    python = bin_dir / "cni-hwol-py"
    python.write_text(
        f"#!{sys.executable} -S\n"
        f"import sys\nsys.path[:0] = {paths!r}\n"
        "from cni_hwol.main import main\nraise SystemExit(main())\n"
    )
    python.chmod(0o755)
    # A copy, not a symlink: the front finds cni-hwol-py beside its own file.
    shutil.copy2(shim_binary(), target)
    return target


def cni_hwol_command() -> list[str]:
    """cni-hwol's operator commands: the PyInstaller binary, or the source tree."""
    binary = os.environ.get("CNI_HWOL_BINARY")
    return [os.path.abspath(binary)] if binary else [sys.executable, "-m", "cni_hwol"]


class Executor:
    """A warm executor for one simulated node. It runs in the test's own (host)
    namespaces on purpose: its forks must enter the client's, as on a node where
    the executor lives in the DaemonSet's pod."""

    def __init__(self, workdir: Path, name: str = "executor", command: list[str] | None = None) -> None:
        self.socket = str(workdir / name / "executor.sock")
        self.log = workdir / f"{name}.log"
        self.command = command or cni_hwol_command()
        self.proc: subprocess.Popen | None = None

    def start(self) -> Executor:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.command, "executor", "--socket", self.socket, "--log-level", "debug"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        deadline = time.monotonic() + 30
        # Its own log, not the socket file: another executor may hold the path (an upgrade).
        while "executor listening on" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the executor did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        return self

    def forks(self) -> set[int]:
        """The pids of the forks that ran verbs, from the executor's log."""
        return {int(pid) for pid in re.findall(r"pid (\d+) runs ", self.log.read_text())}

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class SimNode:
    def __init__(
        self,
        pfs: int = 2,
        vfs_per_pf: int = 4,
        wired_per_pf: int | None = None,
        bridge: str = "br-int",
        subnet: str = "192.168.1.0/24",
    ) -> None:
        self.tag = secrets.token_hex(3)
        self.ns_name = f"hwol-node-{self.tag}"
        self.netns = f"/var/run/netns/{self.ns_name}"
        self.pf_count = pfs
        self.vfs_per_pf = vfs_per_pf
        self.wired_per_pf = vfs_per_pf if wired_per_pf is None else wired_per_pf
        self.bridge = bridge
        self.subnet = subnet
        self.workdir = Path(tempfile.mkdtemp(prefix=f"hwol-{self.tag}-"))
        leftovers.claim(self.workdir)  # what a killed run leaves, the next run's sweep finds by this
        self.sysfs_root = self.workdir / "sys"
        self.state_dir = self.workdir / "state"
        self.ipam_dir = self.workdir / "ipam"
        self.netconf_dir = self.workdir / "net.d"
        self.bin_dir = self.workdir / "bin"
        self.log_file = self.workdir / "log" / "cni-hwol.log"
        self.node_config = self.workdir / "node.json"
        self.vfs: list[VfPair] = []
        self.userspace_vfs: list[VfPair] = []  # bound to vfio-pci etc. (bind_userspace)
        self.pods: list[Pod] = []
        self.sysfs = FakeSysfs(self.sysfs_root)
        self.ovs = Ovs(self.workdir / "ovs", self.netns)
        self.cnitool = ""
        self._sysfs_lock = threading.Lock()  # tests run cnitool from parallel threads
        self.executor = Executor(self.workdir) if os.environ.get(TEST_EXECUTOR_ENV) == "1" else None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> SimNode:
        try:
            ip("netns", "add", self.ns_name)
            self.sh("ip link set lo up")
            for pf in range(self.pf_count):
                self._add_pf(pf)
            self.ovs.start()
            self.ovs.add_bridge(self.bridge)
            for d in (self.netconf_dir, self.bin_dir, self.ipam_dir):
                d.mkdir(parents=True, exist_ok=True)
            plugin_wrapper(self.bin_dir)
            self.cnitool = str(cnitool_binary())
            self.write_conflist("hwol")
            if self.executor is not None:
                self.executor.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        # The executor pass proves nothing if the front quietly ran verbs in Python.
        outside = self.verbs_outside_the_executor() if self.executor is not None else []
        self._tear_down()
        if outside:
            raise AssertionError("verbs ran outside the executor's forks:\n" + "\n".join(outside))

    def verbs_outside_the_executor(self) -> list[str]:
        """The plugin log's lines written by a process that was not one of the executor's forks."""
        if not self.log_file.exists():
            return []
        forks = self.executor.forks()
        lines = self.log_file.read_text().splitlines()
        return [line for line in lines if (pid := re.search(r" \[(\d+)\] ", line)) and int(pid[1]) not in forks]

    def _tear_down(self) -> None:
        for pod in list(self.pods):
            ip("netns", "del", pod.ns_name, check=False)
        self.pods.clear()
        if self.executor is not None:
            self.executor.stop()
        self.ovs.stop()
        ip("netns", "del", self.ns_name, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SimNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sh(self, command: str, check: bool = True) -> str:
        """A shell-free command line inside the node namespace (split on spaces)."""
        return run(command.split(), netns=self.netns, check=check).stdout.decode()

    # -- the NIC -----------------------------------------------------------------
    def pf_address(self, pf: int) -> str:
        return f"0000:03:00.{pf}"

    def _add_pf(self, pf: int) -> None:
        pf_name = f"enp3s0f{pf}np{pf}"
        switch_id = f"{0x1C34DA0000 + pf:016x}"
        vf_base = (0x04 + pf) << 8  # each PF's VFs on a bus of their own
        # A jumbo uplink, as on a node whose pods ask for MTU 9000 (a pod MTU may not exceed it).
        self.sh(f"ip link add {pf_name} mtu 9000 type veth peer name pf{pf}peer mtu 9000")
        self.sh(f"ip link set {pf_name} up")
        self.sysfs.add_pf(self.pf_address(pf), pf_name, switch_id, vf_base, self.vfs_per_pf)
        for vf in range(self.vfs_per_pf):
            wired = vf < self.wired_per_pf
            vf_name = f"enp3s0f{pf}v{vf}"
            rep_name = f"eth{pf}rep{vf}"
            pci = self.sysfs.add_vf(self.pf_address(pf), vf, vf_base, vf_name if wired else None)
            self.sysfs.add_representor(
                self.pf_address(pf), rep_name if wired else f"eth{pf}gone{vf}", switch_id, f"pf{pf}vf{vf}"
            )
            if wired:
                self.sh(f"ip link add {vf_name} type veth peer name {rep_name}")
                # Node preparation brings representors up (as OVS would anyway).
                self.sh(f"ip link set {rep_name} up")
                # The alias is the rig's label for acting out the kernel, and
                # stands in for the PCI parent a veth lacks: the plugin reads
                # it only for links without a parent (a real VF always has
                # one), to find a VF a pod renamed (vf_moves.pci_function_of).
                self.sh(f"ip link set {vf_name} alias {pci}")
                self.vfs.append(VfPair(pf, vf, pci, vf_name, rep_name))

    def bind_userspace(self, pf: int, index: int, driver: str = "vfio-pci") -> VfPair:
        """The VF rebound to a userspace driver: sysfs lists no netdev for it and its
        `driver` link names `driver`. The veth end that played its netdev stays as the
        VF side of the representor's pair (what the DPDK process or VM drives), down
        and unlabelled, under a name no sysfs entry lists."""
        vf = self.vf(pf, index)
        self.sysfs.bind_driver(vf.pci, driver)
        self.sh(f"ip link set {vf.vf_name} down")
        self.sh(f"ip link set {vf.vf_name} name dpdk{pf}v{index}")
        run(["ip", "link", "set", "dev", f"dpdk{pf}v{index}", "alias", ""], netns=self.netns)
        self.vfs.remove(vf)
        vf.vf_name = f"dpdk{pf}v{index}"
        self.userspace_vfs.append(vf)
        return vf

    def vf(self, pf: int, index: int) -> VfPair:
        return next(v for v in self.vfs if v.pf_index == pf and v.vf_index == index)

    # -- CNI config ----------------------------------------------------------------
    def plugin_conf(self, **overrides: object) -> dict:
        conf = {
            "type": "cni-hwol",
            "bridge": self.bridge,
            "ovsdbSocket": self.ovs.socket,
            "stateDir": str(self.state_dir),
            "sysfsRoot": str(self.sysfs_root),
            "logFile": str(self.log_file),
            "logLevel": "debug",
            "capabilities": {"deviceID": True, "mac": True},
            "ipam": {"type": "host-local", "subnet": self.subnet, "dataDir": str(self.ipam_dir)},
        }
        conf.update(overrides)
        return conf

    def netconf(self, cni_version: str = "1.0.0", name: str = "hwol", **overrides: object) -> dict:
        """A single-plugin config, as a runtime hands it to cni-hwol on a direct exec."""
        return {"cniVersion": cni_version, "name": name, **self.plugin_conf(**overrides)}

    def write_conflist(self, name: str, cni_version: str = "1.0.0", chained: bool = True, **overrides) -> Path:
        plugins = [self.plugin_conf(**overrides)]
        if chained:
            plugins += [
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "bandwidth", "capabilities": {"bandwidth": True}},
            ]
        path = self.netconf_dir / f"{name}.conflist"
        path.write_text(json.dumps({"cniVersion": cni_version, "name": name, "plugins": plugins}, indent=1))
        return path

    def cni_args(self, pod: Pod, **extra: str) -> str:
        args = {
            "IgnoreUnknown": "1",
            "K8S_POD_NAMESPACE": "default",
            "K8S_POD_NAME": pod.name,
            "K8S_POD_INFRA_CONTAINER_ID": pod.container_id,
            "K8S_POD_UID": pod.uid,
            **extra,
        }
        return ";".join(f"{k}={v}" for k, v in args.items())

    def cni_env(self, pod: Pod, ifname: str = "net1", **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "NETCONFPATH": str(self.netconf_dir),
            "CNI_PATH": f"{self.bin_dir}:{DEBIAN_CNI_PLUGINS}",
            "CNI_CACHE_DIR": str(self.workdir / "cache"),
            "CNI_IFNAME": ifname,
            "CNI_CONTAINERID": pod.container_id,
            "CNI_ARGS": self.cni_args(pod, **extra),
            **self.plugin_env(),
        }

    def plugin_env(self) -> dict[str, str]:
        """Which executor the plugin hands its verbs to: this node's, or none (never the machine's);
        which node file it reads: this node's (none until a test writes one), never the machine's."""
        return {
            EXECUTOR_SOCKET_ENV: self.executor.socket if self.executor else "none",
            NODE_CONFIG_ENV: str(self.node_config),
        }

    def write_node_config(self, body: dict) -> None:
        """Install a node file (cni_hwol/cni/policy.py) on this node, root's and 0644 as the DaemonSet's."""
        self.node_config.write_text(json.dumps(body))
        self.node_config.chmod(0o644)

    def cnitool_run(
        self,
        verb: str,
        pod: Pod,
        device_id: str | None = None,
        network: str = "hwol",
        ifname: str = "net1",
        check: bool = True,
        cap_args: dict | None = None,
        **extra_args: str,
    ) -> subprocess.CompletedProcess:
        """Run cnitool in the node namespace, the way a runtime runs the chain."""
        env = self.cni_env(pod, ifname, **extra_args)
        caps = dict(cap_args or {})
        if device_id:
            caps.setdefault("deviceID", device_id)
        if caps:
            env["CAP_ARGS"] = json.dumps(caps)
        try:
            return run([self.cnitool, verb, network, pod.netns], netns=self.netns, env=env, check=check)
        finally:
            self.sync_sysfs()

    def exec_plugin(
        self,
        command: str,
        conf: dict | bytes,
        pod: Pod | None = None,
        ifname: str = "net1",
        env_overrides: dict[str, str] | None = None,
    ) -> tuple[int, dict | None, str]:
        """Run cni-hwol directly (VERSION, GC, STATUS, bad input): (exit status, stdout JSON, stderr)."""
        env = self.plugin_exec_env(command, pod, ifname, env_overrides)
        stdin = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
        done = run([str(self.bin_dir / "cni-hwol")], netns=self.netns, env=env, input=stdin, check=False)
        self.sync_sysfs()
        out = done.stdout.decode()
        return done.returncode, json.loads(out) if out.strip() else None, done.stderr.decode()

    def plugin_exec_env(
        self, command: str, pod: Pod | None, ifname: str = "net1", env_overrides: dict[str, str] | None = None
    ) -> dict[str, str]:
        """The environment a runtime execs cni-hwol with for this verb and pod."""
        env = {
            "PATH": os.environ.get("PATH", ""),
            "CNI_COMMAND": command,
            "CNI_PATH": f"{self.bin_dir}:{DEBIAN_CNI_PLUGINS}",
            **self.plugin_env(),
        }
        if pod is not None:
            env.update(
                CNI_CONTAINERID=pod.container_id, CNI_NETNS=pod.netns, CNI_IFNAME=ifname, CNI_ARGS=self.cni_args(pod)
            )
        env.update(env_overrides or {})
        return env

    # -- pods --------------------------------------------------------------------
    def create_pod(self, name: str) -> Pod:
        ns = f"hwol-{self.tag}-{name}"
        ip("netns", "add", ns)
        ip("link", "set", "lo", "up", netns=f"/var/run/netns/{ns}")
        pod = Pod(
            name=name, ns_name=ns, netns=f"/var/run/netns/{ns}", container_id=f"{self.tag}{name}{secrets.token_hex(4)}"
        )
        self.pods.append(pod)
        return pod

    def pod_sh(self, pod: Pod, command: str, check: bool = True) -> str:
        return run(command.split(), netns=pod.netns, check=check).stdout.decode()

    def destroy_pod(self, pod: Pod) -> None:
        """Delete the pod's namespace as kubelet does, acting out what the kernel
        does to a VF: it comes back to the host under its in-pod name, or devN
        when that name is taken there (a veth would be destroyed instead)."""
        for link in json.loads(ip("-j", "link", "show", netns=pod.netns)):
            vf = next((v for v in self.vfs if v.pci == link.get("ifalias")), None)
            if vf is None:
                continue
            name = link["ifname"]
            taken = {entry["ifname"] for entry in json.loads(self.sh("ip -j link show"))}
            target = name
            n = 0
            while target in taken:
                target, n = f"dev{n}", n + 1
            ip("link", "set", "dev", name, "down", netns=pod.netns)
            ip("link", "set", "dev", name, "netns", self.ns_name, "name", target, netns=pod.netns)
            for listed in self.sysfs.vf_netdevs(vf.pci):
                self.sysfs.rename_netdev(vf.pci, listed, target)
        ip("netns", "del", pod.ns_name)
        self.pods.remove(pod)

    def sync_sysfs(self) -> None:
        """Play the kernel's sysfs between plugin runs: a VF netdev in the node
        namespace is listed under its current name. (While a VF is inside a pod
        the tree keeps its last host name, where the kernel would list nothing;
        the plugin reaches the same verdict either way: not in the host.)"""
        with self._sysfs_lock:
            self._sync_sysfs_locked()

    def _sync_sysfs_locked(self) -> None:
        for link in json.loads(self.sh("ip -j link show")):
            vf = next((v for v in self.vfs if v.pci == link.get("ifalias")), None)
            if vf is None:
                continue
            for listed in self.sysfs.vf_netdevs(vf.pci):
                if listed != link["ifname"]:
                    self.sysfs.rename_netdev(vf.pci, listed, link["ifname"])

    def disable_tx_offload(self, pod: Pod, ifname: str = "net1") -> None:
        """The userspace datapath drops TCP with unfilled checksums from veths; real VFs do not need this."""
        run(["ethtool", "-K", ifname, "tx", "off"], netns=pod.netns)

    # -- observation -----------------------------------------------------------------
    def snapshot(self) -> dict:
        """Everything an attachment could leave behind on the node."""
        self.sync_sysfs()
        links = sorted(
            (entry["ifname"], entry.get("mtu"), entry.get("address"), "UP" in entry.get("flags", []))
            for entry in json.loads(self.sh("ip -j link show"))
        )
        addrs = sorted(
            (entry["ifname"], a["local"], a["prefixlen"])
            for entry in json.loads(self.sh("ip -j addr show"))
            for a in entry.get("addr_info", [])
        )
        leases = sorted(
            str(p.relative_to(self.ipam_dir))
            for p in self.ipam_dir.rglob("*")
            if p.is_file() and not p.name.startswith(("lock", "last_reserved_ip"))
        )
        state = (
            sorted(str(p.relative_to(self.state_dir)) for p in self.state_dir.rglob("*.json"))
            if self.state_dir.exists()
            else []
        )
        sysfs = {v.pci: self.sysfs.vf_netdevs(v.pci) for v in self.vfs + self.userspace_vfs}
        return {
            "links": links,
            "ipv6_disabled": self.ipv6_disabled(),
            "addresses": addrs,
            "ports": self.ovs.ports(self.bridge),
            "leases": leases,
            "state": state,
            "sysfs": sysfs,
        }

    def ipv6_disabled(self) -> dict[str, str]:
        """disable_ipv6 of every link in the node namespace (ADD sets it on the representor)."""
        # /proc/sys/net is the namespace of the process reading it, hence grep run in the node.
        out = self.sh("grep -r . /proc/sys/net/ipv6/conf --include=disable_ipv6")
        values = {}
        for line in out.splitlines():
            path, _, value = line.rpartition(":")
            values[path.split("/")[-2]] = value
        return values

    def pod_link(self, pod: Pod, ifname: str = "net1") -> dict | None:
        done = run(["ip", "-j", "addr", "show", "dev", ifname], netns=pod.netns, check=False)
        return json.loads(done.stdout)[0] if done.returncode == 0 else None

    def ping(self, pod: Pod, address: str, count: int = 3) -> subprocess.CompletedProcess:
        return run(["ping", "-c", str(count), "-W", "2", "-i", "0.2", address], netns=pod.netns, check=False)
