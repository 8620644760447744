"""The chaos soak: `python3 -m tests.soak.run --steps N --seed S [--results FILE]`.

A seeded random run on a simulated node of 16 VFs (2 PFs): pod events (ADD, DEL, CHECK, GC,
duplicate ADD, DEL racing ADD on one container; ADD asking for what the simulated PF cannot do, and
ADD waiting for a key the soak's ovn-controller never sets, both failing with nothing left) and
faults (the plugin SIGKILLed at a crash point or a random moment, the executor killed and restarted,
ovsdb-server restarted on the same database or a fresh one, ovs-vswitchd restarted, the pod's netns
destroyed before DEL, the representor set down), each followed by what a runtime does next. After
every step the invariants (invariants.py) are checked. The same seed gives the same sequence of
steps (the timing of the kills is the machine's).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cni_hwol.cni import errors
from cni_hwol.crashpoints import ADD_STEPS, ENV
from tests.simnode import SimNode
from tests.simnode.node import Executor, Pod, VfPair
from tests.simnode.nsexec import _enter, ip
from tests.soak import invariants
from tests.soak.controller import OvnController

USERSPACE_VFS = ((0, 7, "vfio-pci"), (1, 7, "vfio-pci"))  # (PF, VF, driver): no netdev, nothing moves
UPLINK_BRIDGES = {0: "br-int", 1: "br-ex"}  # PF -> the bridge holding its uplink ("bridge": "auto")
DEL_RETRIES = 20  # DEL's code 11 (VF in no namespace) is retried, as a runtime does
WAITED_FOR = {"ovn-installed": "true"}  # the key the soak's ovn-controller sets (waitForExternalIDs)
# Settings through the PF netdev, and rates on the VF's devlink port: the simulated PF is a veth
# without VF operations and the node has no devlink, so asking for any of them is code 103.
PF_KEYS = {
    "spoofchk": lambda rng: rng.choice(["on", "off"]),
    "trust": lambda rng: rng.choice(["on", "off"]),
    "link_state": lambda rng: rng.choice(["auto", "enable", "disable"]),
}
RATE_KEYS = {
    "min_tx_rate": lambda rng: rng.randint(0, 1000),
    "max_tx_rate": lambda rng: rng.randint(1000, 10000),
    "runtimeConfig.bandwidth": lambda rng: {"egressRate": rng.randint(1, 10) * 100_000_000},
}


@dataclass
class Attachment:
    pod: Pod
    vf: VfPair
    conf: dict
    result: dict  # ADD's, the prevResult of CHECK
    port_ok: bool = True  # its OVS port exists (a fresh OVSDB loses it)
    rep_up: bool = True


@dataclass
class Soak:
    node: SimNode
    rng: random.Random
    live: dict[str, Attachment] = field(default_factory=dict)
    ops: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    violations: list[dict] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)  # each step's action, to replay a violation by hand
    standing: set[str] = field(default_factory=set)  # broken invariants seen at the last check
    configurations: Counter = field(default_factory=Counter)  # the keys of each ADD that succeeded
    step: int = 0
    pods_made: int = 0
    executor_restarts: int = 0
    progress: Callable[[], object] = lambda: None  # after each step (the partial results file)

    # -- the runtime's side ---------------------------------------------------------
    def base_conf(self) -> dict:
        return self.node.netconf(cni_version="1.1.0")

    def random_conf(self, vf: VfPair) -> dict:
        """A configuration of main's features, picked at random (each ADD of it succeeds)."""
        conf = self.base_conf()
        rng = self.rng
        kernel = vf in self.node.vfs  # a userspace VF takes no requested MAC through the veth PF (code 103)
        if rng.random() < 0.3:
            conf["bridge"] = "auto"
        if rng.random() < 0.3:
            conf["vlan"] = rng.randint(1, 4094)
        if rng.random() < 0.25:
            low = rng.randint(100, 3000)
            conf["trunk"] = [{"id": rng.randint(1, 99)}, {"minID": low, "maxID": low + rng.randint(0, 50)}]
        if rng.random() < 0.25:
            conf["ofport_request"] = 1000 + self.pool.index(vf)  # one number per VF: never taken
        if rng.random() < 0.4:
            conf["mtu"] = rng.choice([1400, 4000, 9000])
        if rng.random() < 0.4 and kernel:
            conf["runtimeConfig"] = {"mac": random_mac(rng)}
        if rng.random() < 0.25:
            cni: dict = {"ovnPort": f"default_soak-vf{self.pool.index(vf)}", "externalIDs": {"soak": "yes"}}
            if rng.random() < 0.5 and kernel:
                cni["mac"] = random_mac(rng)
            conf["args"] = {"cni": cni}
        if rng.random() < 0.2:
            # ovs-cni's keys: at least 3 s (the default) for vswitchd to number the port, on a loaded node.
            conf["link_state_check_retries"] = rng.randint(10, 30)
            conf["link_state_check_interval"] = rng.randint(300, 600)
        if rng.random() < 0.2:
            # The soak's ovn-controller sets the key 0-0.8 s after the port appears (self.add).
            conf["waitForExternalIDs"] = dict(WAITED_FOR)
            conf["waitTimeoutMs"] = 30000
        return conf

    def count_configuration(self, conf: dict, vf: VfPair) -> None:
        """Which of the configurations an ADD that succeeded had (the short run asserts each occurred)."""
        keys = [k for k in ("vlan", "trunk", "ofport_request", "mtu", "waitForExternalIDs") if k in conf]
        keys += ["userspace VF"] if vf in self.node.userspace_vfs else []
        keys += ["bridge auto"] if conf.get("bridge") == "auto" else []
        keys += ["runtimeConfig.mac"] if "mac" in conf.get("runtimeConfig", {}) else []
        keys += [f"args.cni.{k}" for k in conf.get("args", {}).get("cni", {})]
        keys += ["link_state_check_*"] if "link_state_check_retries" in conf else []
        self.configurations.update(keys)

    @property
    def pool(self) -> list[VfPair]:
        """Every VF of the node: those with a netdev, then those on a userspace driver."""
        return self.node.vfs + self.node.userspace_vfs

    def free_vfs(self) -> list[VfPair]:
        held = {a.vf.pci for a in self.live.values()}
        return [vf for vf in self.pool if vf.pci not in held]

    def fresh_attachment(self) -> tuple[VfPair, Pod, dict] | None:
        """A free VF, a new pod and a random configuration for them; None when every VF is taken."""
        free = self.free_vfs()
        if not free:
            return None
        vf, pod = self.rng.choice(free), self.new_pod()
        return vf, pod, self.random_conf(vf)

    def new_pod(self) -> Pod:
        self.pods_made += 1
        return self.node.create_pod(f"s{self.pods_made}")

    def drop_pod(self, pod: Pod) -> None:
        if pod in self.node.pods:
            ip("netns", "del", pod.ns_name, check=False)
            self.node.pods.remove(pod)

    def verb(self, command: str, conf: dict, pod: Pod | None = None, **env: str) -> tuple[int, dict | None, str]:
        status, body, stderr = self.node.exec_plugin(command, conf, pod, env_overrides=env)
        code = body.get("code") if status and body else status
        self.note(f"{command} {pod and pod.container_id} {conf.get('deviceID', '')} {env or ''} -> {code}")
        return status, body, stderr

    def spawn(self, command: str, conf: dict, pod: Pod) -> subprocess.Popen:
        """The plugin exec'd as a runtime does, its config written, not waited for (to be killed, or to race)."""
        proc = subprocess.Popen(
            [str(self.node.bin_dir / "cni-hwol")],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.node.plugin_exec_env(command, pod),
            preexec_fn=_enter(self.node.netns),
        )
        proc.stdin.write(json.dumps(conf).encode())
        proc.stdin.close()
        return proc

    def add(self, conf: dict, pod: Pod, vf: VfPair, **env: str) -> tuple[int, dict | None, str]:
        """ADD, with ovn-controller playing along when the configuration waits for it."""
        with self.controller(conf, pod, vf):
            return self.verb("ADD", {**conf, "deviceID": vf.pci}, pod, **env)

    @contextlib.contextmanager
    def controller(self, conf: dict, pod: Pod, vf: VfPair):
        """While ADD runs: ovn-controller setting the awaited key on each new Interface of this
        attachment 0-0.8 s after it appears; nothing when the configuration does not wait."""
        if "waitForExternalIDs" not in conf:
            yield
            return
        with OvnController(self.node.ovs, vf.rep_name, pod.container_id, WAITED_FOR, self.rng.uniform(0, 0.8)):
            yield

    def runtime_del(self, conf: dict, pod: Pod, why: str) -> None:
        """DEL until it succeeds, as a runtime does (code 11 means: again later); then the pod is gone."""
        for _ in range(DEL_RETRIES):
            status, body, stderr = self.verb("DEL", conf, pod)
            if status == 0:
                break
            if body and body.get("code") == errors.TRY_AGAIN_LATER:
                self.ops["DEL:11 (retried)"] += 1
                time.sleep(0.2)
                continue
            self.violate(f"DEL after {why} failed: {body} {stderr[-300:]}")
            break
        self.live.pop(pod.container_id, None)
        self.drop_pod(pod)

    def note(self, what: str) -> None:
        self.trace.append(f"  {what}")

    def violate(self, what: str) -> None:
        self.violations.append({"step": self.step, "what": what})
        print(f"VIOLATION step {self.step}: {what}", flush=True)

    # -- pod events -----------------------------------------------------------------
    def op_add(self) -> None:
        if (fresh := self.fresh_attachment()) is None:
            return self.op_del()
        vf, pod, conf = fresh
        status, body, stderr = self.add(conf, pod, vf)
        self.ops[f"ADD:{body.get('code') if status else 0}"] += 1
        if status == 0:
            self.live[pod.container_id] = Attachment(pod, vf, conf, body)
            self.count_configuration(conf, vf)
            self.check_interface(self.live[pod.container_id])
        else:
            self.violate(f"ADD {vf.pci} {json.dumps(conf)} failed: {body} {stderr[-300:]}")
            self.runtime_del(conf, pod, "a failed ADD")

    def check_interface(self, a: Attachment) -> None:
        """Right after ADD answered 0: the Interface has the keys ADD waited for (set by the soak's
        ovn-controller), and with args.cni's ovnPort OVN's port identity and the pod's external_ids."""
        wanted = dict(a.conf.get("waitForExternalIDs", {}))
        cni = a.conf.get("args", {}).get("cni", {})
        if "ovnPort" in cni:
            wanted.update({"iface-id": cni["ovnPort"], "sandbox": a.pod.container_id, **cni.get("externalIDs", {})})
        if not wanted:
            return
        ids = self.node.ovs.column("Interface", a.vf.rep_name, "external_ids")
        wrong = {key: ids.get(key) for key, value in wanted.items() if ids.get(key) != value}
        if wrong:
            self.violate(f"ADD of {a.pod.container_id} answered 0, its Interface has {wrong}, wanted {wanted}")

    def op_add_pf_keys(self) -> None:
        """ADD asking for spoofchk, trust or link_state through the PF: code 103, nothing left behind."""
        self.add_pf_side(PF_KEYS, "ADD with keys through the PF")

    def op_add_rate_keys(self) -> None:
        """ADD asking for rates on the VF's devlink port: code 103, nothing left behind."""
        self.add_pf_side(RATE_KEYS, "ADD with devlink rates")

    def add_pf_side(self, keys: dict, what: str) -> None:
        if (fresh := self.fresh_attachment()) is None:
            return self.op_del()
        vf, pod, conf = fresh
        for key in self.rng.sample(sorted(keys), self.rng.randint(1, len(keys))):
            if key == "runtimeConfig.bandwidth":
                conf["runtimeConfig"] = {**conf.get("runtimeConfig", {}), "bandwidth": keys[key](self.rng)}
            else:
                conf[key] = keys[key](self.rng)
        self.failing_add(conf, pod, vf, what, errors.NETLINK_ERROR)

    def op_add_never_ready(self) -> None:
        """ADD waiting for a key no controller ever sets: code 11 once waitTimeoutMs is over, all undone."""
        if (fresh := self.fresh_attachment()) is None:
            return self.op_del()
        vf, pod, conf = fresh
        conf["waitForExternalIDs"] = dict(WAITED_FOR)
        conf["waitTimeoutMs"] = self.rng.randint(100, 600)
        self.failing_add(conf, pod, vf, "ADD waiting for a controller that never comes", errors.TRY_AGAIN_LATER)

    def failing_add(self, conf: dict, pod: Pod, vf: VfPair, what: str, code: int) -> None:
        """An ADD that must fail with `code` and leave the whole node as it was; then the runtime's DEL."""
        before = invariants.node_view(self.node)
        status, body, stderr = self.verb("ADD", {**conf, "deviceID": vf.pci}, pod)
        self.ops[f"{what}:{body.get('code') if status else 0}"] += 1
        if status == 0 or body.get("code") != code:
            self.violate(f"{what} {vf.pci} {json.dumps(conf)} answered {status} {body} {stderr[-300:]}")
            if status == 0:
                self.live[pod.container_id] = Attachment(pod, vf, conf, body)
                return self.runtime_del(conf, pod, what)
        for change in invariants.differences(before, invariants.node_view(self.node)):
            self.violate(f"{what} {vf.pci} failed but left {change}")
        if self.node.pod_link(pod) is not None:
            self.violate(f"{what} {vf.pci} failed but left net1 in pod {pod.container_id}")
        self.runtime_del(conf, pod, what)

    def pick(self) -> Attachment | None:
        return self.live[self.rng.choice(sorted(self.live))] if self.live else None

    def op_del(self) -> None:
        a = self.pick()
        if a is None:
            return self.op_add()
        self.ops["DEL"] += 1
        self.runtime_del(a.conf, a.pod, "DEL")

    def op_check(self) -> None:
        a = self.pick()
        if a is None:
            return self.op_add()
        status, body, stderr = self.verb("CHECK", {**a.conf, "deviceID": a.vf.pci, "prevResult": a.result}, a.pod)
        intact = a.port_ok and a.rep_up
        self.ops[f"CHECK:{'ok' if status == 0 else body.get('code')}"] += 1
        if intact and status != 0:
            self.violate(f"CHECK of intact {a.pod.container_id} failed: {body} {stderr[-300:]}")
        if not intact and status == 0:
            self.violate(f"CHECK of {a.pod.container_id} passed though its port or representor is broken")

    def op_gc(self) -> None:
        valid = [{"containerID": cid, "ifname": "net1"} for cid in sorted(self.live)]
        status, body, stderr = self.verb("GC", {**self.base_conf(), "cni.dev/valid-attachments": valid})
        self.ops["GC"] += 1
        if status != 0:
            self.violate(f"GC failed: {body} {stderr[-300:]}")
        for what in invariants.after_gc(self.node, set(self.live)):
            self.violate(what)

    def op_duplicate_add(self) -> None:
        a = self.pick()
        if a is None:
            return self.op_add()
        status, body, stderr = self.add(a.conf, a.pod, a.vf)
        self.ops[f"duplicate ADD:{body.get('code') if status else 0}"] += 1
        if status == 0:
            a.result, a.port_ok, a.rep_up = body, True, True  # ADD again made it whole
            self.check_interface(a)
        else:
            self.violate(f"duplicate ADD of {a.pod.container_id} failed: {body} {stderr[-300:]}")
            self.runtime_del(a.conf, a.pod, "a failed duplicate ADD")

    def op_del_racing_add(self) -> None:
        free = self.free_vfs()
        if not free:
            return self.op_del()
        vf, pod = self.rng.choice(free), self.new_pod()
        conf = self.random_conf(vf)
        with self.controller(conf, pod, vf):
            adding = self.spawn("ADD", {**conf, "deviceID": vf.pci}, pod)
            time.sleep(self.rng.uniform(0, 0.3))
            deleting = self.spawn("DEL", conf, pod)
            deleting.wait()
            adding.wait()
        self.node.sync_sysfs()
        self.ops[f"DEL racing ADD:add {adding.returncode} del {deleting.returncode}"] += 1
        self.runtime_del(conf, pod, "DEL racing ADD")  # the runtime gave the pod up: it DELs once more

    # -- faults -----------------------------------------------------------------------
    def fault_crash_point(self) -> None:
        free = self.free_vfs()
        if not free:
            return self.op_del()
        step = self.rng.choice(ADD_STEPS)
        self.faults[f"plugin killed at {step}"] += 1
        vf, pod = self.rng.choice(free), self.new_pod()
        conf = self.random_conf(vf)
        self.add(conf, pod, vf, **{ENV: step})
        self.runtime_del(conf, pod, f"a kill at {step}")

    def fault_kill_at_random(self) -> None:
        """SIGKILL of the plugin (the front, or the Python plugin it execs) at a random moment of ADD or DEL."""
        a = self.pick() if self.rng.random() < 0.4 else None
        if a is None:
            free = self.free_vfs()
            if not free:
                return self.op_del()
            vf, pod = self.rng.choice(free), self.new_pod()
            conf, command = {**self.random_conf(vf), "deviceID": vf.pci}, "ADD"
        else:
            pod, conf, command, vf = a.pod, a.conf, "DEL", a.vf
        self.faults[f"plugin killed during {command}"] += 1
        with self.controller(conf if command == "ADD" else {}, pod, vf):
            proc = self.spawn(command, conf, pod)
            time.sleep(self.rng.uniform(0, 0.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        self.node.sync_sysfs()
        self.runtime_del(conf, pod, f"a kill during {command}")

    def fault_executor(self) -> None:
        executor = self.node.executor
        if executor is None or executor.proc is None:
            return self.op_add()
        self.faults["executor killed and restarted"] += 1
        executor.proc.kill()
        executor.proc.wait()
        executor.proc = None
        for _ in range(self.rng.randint(0, 2)):  # verbs meanwhile run in process (the front's fallback)
            self.rng.choice([self.op_add, self.op_del, self.op_check])()
        self.executor_restarts += 1
        executor.log.rename(executor.log.with_suffix(f".{self.executor_restarts}"))
        executor.start()

    def fault_ovsdb_restart(self) -> None:
        """ovsdb-server down, a verb or two meanwhile, then up on the same database."""
        self.faults["ovsdb-server restarted (same database)"] += 1
        self.node.ovs.stop_database()
        a = self.pick()
        if a is not None and self.rng.random() < 0.7:
            self.ops["DEL while OVSDB is down"] += 1
            self.runtime_del(a.conf, a.pod, "DEL while OVSDB is down")  # finishes, records a stale port
        free = self.free_vfs()
        if free:
            pod, vf = self.new_pod(), self.rng.choice(free)
            status, body, _ = self.add(self.base_conf(), pod, vf)
            self.ops[f"ADD while OVSDB is down:{body.get('code') if status else 0}"] += 1
            if status == 0 or body.get("code") != errors.TRY_AGAIN_LATER:
                self.violate(f"ADD while OVSDB was down answered {status} {body}")
            self.runtime_del(self.base_conf(), pod, "ADD while OVSDB was down") if status == 0 else self.drop_pod(pod)
        self.node.ovs.start_database()
        wait_for_vswitchd(self.node)

    def fault_ovsdb_fresh(self) -> None:
        """ovsdb-server up again on an empty database: every port is lost until the bridges are back."""
        self.faults["ovsdb-server restarted (fresh database)"] += 1
        ovs = self.node.ovs
        ovs.stop_database()
        ovs.start_fresh_database()
        free = self.free_vfs()
        if free:
            pod, vf = self.new_pod(), self.rng.choice(free)
            status, body, _ = self.add(self.base_conf(), pod, vf)
            self.ops[f"ADD without bridges:{body.get('code') if status else 0}"] += 1
            if status == 0 or body.get("code") not in (errors.TRY_AGAIN_LATER, 101):
                self.violate(f"ADD with no bridge answered {status} {body}")
            self.runtime_del(self.base_conf(), pod, "ADD without bridges") if status == 0 else self.drop_pod(pod)
        make_bridges(self.node)
        self.note("fresh OVSDB, bridges made again")
        for a in self.live.values():
            a.port_ok = False

    def fault_vswitchd(self) -> None:
        self.faults["ovs-vswitchd restarted"] += 1
        self.note("ovs-vswitchd restarted")
        self.node.ovs.stop_vswitchd()
        self.node.ovs.start_vswitchd()
        wait_for_vswitchd(self.node)

    def fault_netns_gone(self) -> None:
        """The pod's netns destroyed before DEL; the kernel brings the VF home (as devN when its name is taken)."""
        a = self.pick()
        if a is None:
            return self.op_add()
        taken = self.rng.random() < 0.3
        self.faults[f"netns destroyed before DEL{' (in-pod name taken)' if taken else ''}"] += 1
        if taken:
            self.node.sh("ip link add net1 type veth peer name net1peer")
        self.node.destroy_pod(a.pod)
        self.runtime_del(a.conf, a.pod, "the netns was destroyed")
        if taken:
            self.node.sh("ip link del net1")

    def fault_representor_down(self) -> None:
        a = self.pick()
        if a is None:
            return self.op_add()
        self.faults["representor set down"] += 1
        self.note(f"representor {a.vf.rep_name} of {a.pod.container_id} set down")
        self.node.sh(f"ip link set {a.vf.rep_name} down")
        a.rep_up = False

    # -- the run ------------------------------------------------------------------------
    def choices(self) -> list[tuple[object, int]]:
        return [
            (self.op_add, 24),
            (self.op_add_pf_keys, 2),
            (self.op_add_rate_keys, 2),
            (self.op_add_never_ready, 3),
            (self.op_del, 16),
            (self.op_check, 14),
            (self.op_gc, 6),
            (self.op_duplicate_add, 5),
            (self.op_del_racing_add, 5),
            (self.fault_crash_point, 5),
            (self.fault_kill_at_random, 5),
            (self.fault_executor, 2),
            (self.fault_ovsdb_restart, 3),
            (self.fault_ovsdb_fresh, 1),
            (self.fault_vswitchd, 2),
            (self.fault_netns_gone, 5),
            (self.fault_representor_down, 3),
        ]

    def run(self, steps: int, homes: dict) -> None:
        actions, weights = zip(*self.choices(), strict=True)
        for self.step in range(1, steps + 1):
            action = self.rng.choices(actions, weights)[0]
            self.trace.append(f"{self.step} {action.__name__}")
            action()
            self.check(homes)
            self.progress()
            if len(self.violations) > 50:
                print("more than 50 violations: stopping", flush=True)
                return
        self.step += 1
        for a in list(self.live.values()):  # the end: every pod deleted, then GC
            self.runtime_del(a.conf, a.pod, "the final DEL")
        self.op_gc()
        self.check(homes)

    def check(self, homes: dict) -> None:
        """Each broken invariant is reported at the step it first shows, not again while it stands."""
        live = {cid: (a.vf.pci, a.pod.netns) for cid, a in self.live.items()}
        found = set(invariants.violations(self.node, homes, live, ovsdb_up=True))
        for what in sorted(found - self.standing):
            self.violate(what)
        self.standing = found


def random_mac(rng: random.Random) -> str:
    return "02:5a:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(4))


def wait_for_vswitchd(node: SimNode) -> None:
    """Until ovs-vswitchd is connected to OVSDB again (ovs-vsctl waits for it to apply a change).

    Without this, an ADD with ofport_request in the seconds vswitchd takes to reconnect (its backoff)
    gets code 101, "ofport none": the port is never numbered in ADD's 5 s (tests/README.md, "Chaos soak").
    """
    node.ovs.vsctl("set", "Open_vSwitch", ".", f"external_ids:soak-sync={time.monotonic_ns()}")


def make_bridges(node: SimNode) -> None:
    """br-int holds PF 0's uplink, br-ex PF 1's (so "bridge": "auto" picks either)."""
    for pf, bridge in UPLINK_BRIDGES.items():
        if bridge not in node.ovs.vsctl("list-br").split():
            node.ovs.add_bridge(bridge)
        node.ovs.vsctl("add-port", bridge, f"enp3s0f{pf}np{pf}")


PROGRESS_EVERY = 100  # steps between the partial results files a long run writes


def soak(steps: int, seed: int, results: Path) -> dict:
    """Run the soak; the results file is written every PROGRESS_EVERY steps too ("steps done"), so a
    long run stopped early (SIGTERM, SIGINT) still says how far it got."""
    started = time.monotonic()
    node = SimNode(pfs=2, vfs_per_pf=8)
    node.executor = Executor(node.workdir)
    s = Soak(node, random.Random(seed))

    def report(done: int, finished: bool = False) -> dict:
        log = node.log_file.read_text() if node.log_file.exists() else ""
        body = {
            "seed": seed,
            "steps": steps,
            "steps done": done,
            "finished": finished,
            "vfs": len(s.pool),
            "userspace vfs": len(node.userspace_vfs),
            "seconds": round(time.monotonic() - started, 1),
            "operations": dict(sorted(s.ops.items())),
            "faults": dict(sorted(s.faults.items())),
            "configurations": dict(sorted(s.configurations.items())),
            # The implicit MAC through the veth PF (no VF operations): warned about, and ADD went on.
            "implicit MAC warnings": log.count("keeps its administrative MAC"),
            "violations": s.violations,
            "trace": s.trace,
        }
        results.write_text(json.dumps(body, indent=1) + "\n")
        return body

    s.progress = lambda: report(s.step) if s.step % PROGRESS_EVERY == 0 else None
    finished = False
    with contextlib.ExitStack() as cleanup:
        node.start()
        cleanup.callback(node._tear_down)  # not close(): verbs ran outside the killed executor on purpose
        cleanup.callback(lambda: finished or report(max(s.step - 1, 0)))  # stopped early: how far it got
        make_bridges(node)
        for pf, index, driver in USERSPACE_VFS:
            node.bind_userspace(pf, index, driver)
        s.run(steps, invariants.homes(node))
        body = report(steps, finished=True)
        finished = True
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.soak.run", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--results", type=Path, default=None, help="JSON results (default: a file under /tmp)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # tears the node down, writes how far it got
    results = args.results or Path(tempfile.gettempdir()) / f"cni-hwol-soak-{args.seed}-{args.steps}.json"
    report = soak(args.steps, args.seed, results)
    print(json.dumps({k: v for k, v in report.items() if k not in ("violations", "trace")}, indent=1))
    print(f"violations: {len(report['violations'])}; results in {results}")
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
