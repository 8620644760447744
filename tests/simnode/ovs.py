"""A private Open vSwitch: ovsdb-server and ovs-vswitchd from a temp directory.

ovs-vswitchd runs inside the simulated node's namespace, so its bridges and
the representors it opens live there; the userspace datapath
(datapath_type=netdev) stands in for the kernel module this machine lacks.
The test rig may use ovs-vsctl; the plugin never does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.simnode.nsexec import run

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


class Ovs:
    def __init__(self, workdir: Path, netns: str) -> None:
        self.dir = workdir
        self.netns = netns
        self.socket = f"unix:{workdir}/db.sock"
        self.env = {
            **os.environ,
            "OVS_RUNDIR": str(workdir),
            "OVS_LOGDIR": str(workdir),
            "OVS_DBDIR": str(workdir),
            "OVS_SYSCONFDIR": str(workdir),
        }

    def start(self, hw_offload: bool = False) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.start_fresh_database()
        if hw_offload:  # read by ovs-vswitchd at start only
            self.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:hw-offload=true")
        self.start_vswitchd()

    def start_fresh_database(self) -> None:
        """Start ovsdb-server on a new, empty database (a node whose conf.db was lost)."""
        (self.dir / "conf.db").unlink(missing_ok=True)
        run(["ovsdb-tool", "create", str(self.dir / "conf.db"), SCHEMA], env=self.env)
        self.start_database()
        self.vsctl("--no-wait", "init")

    def start_vswitchd(self) -> None:
        vswitchd = [
            "ovs-vswitchd",
            self.socket,
            f"--pidfile={self.dir}/ovs-vswitchd.pid",
            f"--log-file={self.dir}/ovs-vswitchd.log",
            "--detach",
            "--no-chdir",
        ]
        run(vswitchd, netns=self.netns, env=self.env)

    def start_database(self) -> None:
        """Start ovsdb-server (again, after stop_database) on the same database file."""
        server = [
            "ovsdb-server",
            str(self.dir / "conf.db"),
            f"--remote=p{self.socket}",
            f"--pidfile={self.dir}/ovsdb-server.pid",
            f"--log-file={self.dir}/ovsdb-server.log",
            "--detach",
            "--no-chdir",
        ]
        run(server, env=self.env)

    def vsctl(self, *args: str, check: bool = True) -> str:
        done = run(["ovs-vsctl", f"--db={self.socket}", "--timeout=20", *args], env=self.env, check=check)
        return done.stdout.decode().strip()

    def add_bridge(self, name: str, datapath: str = "netdev") -> None:
        """datapath "netdev" is OVS's userspace datapath; "system" is the kernel module's."""
        self.vsctl("add-br", name, "--", "set", "bridge", name, f"datapath_type={datapath}")
        run(["ip", "link", "set", name, "up"], netns=self.netns)

    def column(self, table: str, record: str, column: str):
        """One column of one row, decoded from ovs-vsctl's JSON (maps become dicts)."""
        import json

        out = json.loads(self.vsctl("--format=json", f"--columns={column}", "list", table, record))
        value = out["data"][0][0]
        if isinstance(value, list) and value[0] == "map":
            return dict(value[1])
        if isinstance(value, list) and value[0] == "set":
            return value[1]
        return value

    def ports(self, bridge: str) -> list[str]:
        """The bridge's ports; raises when ovs-vsctl fails (an empty list must mean no port)."""
        out = self.vsctl("list-ports", bridge)
        return [p for p in out.splitlines() if p]

    def _pid(self, name: str) -> int | None:
        try:
            return int((self.dir / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return None

    def stop_database(self) -> None:
        """Stop ovsdb-server alone (fault tests: OVSDB unreachable)."""
        self._kill("ovsdb-server")

    def stop_vswitchd(self) -> None:
        self._kill("ovs-vswitchd")

    def _kill(self, name: str) -> None:
        pid = self._pid(name)
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    @contextlib.contextmanager
    def vswitchd_frozen(self) -> Iterator[Callable[[], None]]:
        """ovs-vswitchd stopped (SIGSTOP; ovsdb-server still answers): nothing it does happens
        until the block ends or the callable it yields thaws that same process."""
        pid = self._pid("ovs-vswitchd")
        assert pid is not None, "ovs-vswitchd is not running"
        os.kill(pid, signal.SIGSTOP)
        thaw = functools.partial(os.kill, pid, signal.SIGCONT)
        try:
            yield thaw
        finally:
            thaw()

    def restart_vswitchd(self) -> None:
        """Stop and start ovs-vswitchd alone, as a node reboot does (the database keeps its rows),
        and wait until it has applied them: each Interface shows its ofport or its error."""
        bridges = self.vsctl("list-br").split()
        self._kill("ovs-vswitchd")
        self.start_vswitchd()
        self.vsctl("init")  # waits (no --no-wait) until ovs-vswitchd has reconfigured
        for bridge in bridges:  # the userspace datapath's bridge device came back down
            run(["ip", "link", "set", bridge, "up"], netns=self.netns)

    def stop(self) -> None:
        self._kill("ovs-vswitchd")
        self._kill("ovsdb-server")
