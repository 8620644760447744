"""Benchmarks: cni-hwol against Debian's Go `bridge` plugin on the simulated node.

    python3 -m bench.run            # full run, ~10 minutes on 2 cores
    python3 -m bench.run --quick    # a smoke run of every part

Both plugins run through the same libcni client with the same host-local IPAM
and portmap, interleaved (A, B, A, B, ...) so machine drift cancels. Results go
to bench/results.md and bench/results.json. Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cni_hwol.executor.protocol import SOCKET_ENV
from tests.conftest import e2e_missing
from tests.simnode import Pod, SimNode
from tests.simnode.node import DEBIAN_CNI_PLUGINS, Executor, plugin_wrapper
from tests.simnode.nsexec import _enter, run

HERE = Path(__file__).resolve().parent


@dataclass
class Sample:
    wall: float  # seconds
    cpu: float  # user+system seconds of the client and every plugin it ran
    max_rss_kib: int  # the largest process of the invocation


@dataclass
class Series:
    samples: list[Sample] = field(default_factory=list)

    def summary(self) -> dict:
        walls = sorted(s.wall for s in self.samples)
        if not walls:
            return {}
        p90 = walls[min(len(walls) - 1, int(round(0.9 * (len(walls) - 1))))]
        return {
            "n": len(walls),
            "median_ms": round(statistics.median(walls) * 1000, 1),
            "p90_ms": round(p90 * 1000, 1),
            "max_ms": round(walls[-1] * 1000, 1),
            "cpu_median_ms": round(statistics.median(s.cpu for s in self.samples) * 1000, 1),
            "max_rss_mib": round(max(s.max_rss_kib for s in self.samples) / 1024, 1),
        }


def combined(*samples: Sample) -> Sample:
    """Verbs of one pod run back to back: times add up, RSS is the largest."""
    return Sample(sum(s.wall for s in samples), sum(s.cpu for s in samples), max(s.max_rss_kib for s in samples))


def measured(argv: list[str], netns: str, env: dict, stdin: bytes = b"") -> tuple[Sample, int, bytes]:
    """Run a command to completion and read its own rusage, not the harness's.

    Entering the node's namespace needs a fork of this (large) Python process,
    and a forked child's peak RSS counts the parent's pages until it execs. So
    the fork execs GNU time at once, which forks the command from its own small
    image and reports the command's peak RSS (and its children's) cleanly.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as inp, tempfile.NamedTemporaryFile() as rss:
        inp.write(stdin)
        inp.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *argv],
            stdin=inp,
            stdout=out,
            stderr=subprocess.DEVNULL,
            env=env,
            preexec_fn=_enter(netns),
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        max_rss = int(Path(rss.name).read_text().split()[-1])
        return Sample(wall, usage.ru_utime + usage.ru_stime, max_rss), proc.returncode, out.read()


def direct_exec_env(pod: Pod) -> dict[str, str]:
    """The CNI environment of a plugin exec'd without a client, for interface net1 of `pod`."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "CNI_CONTAINERID": pod.container_id,
        "CNI_NETNS": pod.netns,
        "CNI_IFNAME": "net1",
    }


@dataclass
class Variant:
    network: str  # the conflist it runs
    env: dict[str, str]  # CNI_PATH, and which executor (if any) cni-hwol hands its verbs to


class Bench:
    def __init__(self, node: SimNode, binary: str | None) -> None:
        self.node = node
        node.write_conflist("hwol", chained=False)
        self._add_portmap("hwol")
        ref = {
            "cniVersion": "1.0.0",
            "name": "ref",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cnibr0",
                    "isGateway": True,
                    "ipam": {"type": "host-local", "subnet": "10.99.0.0/16", "dataDir": str(node.ipam_dir)},
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (node.netconf_dir / "ref.conflist").write_text(json.dumps(ref))
        source_path = f"{node.bin_dir}:{DEBIAN_CNI_PLUGINS}"
        self.executors = [Executor(node.workdir, "executor-source", [sys.executable, "-m", "cni_hwol"]).start()]
        self.variants = {
            "cni-hwol": Variant("hwol", {"CNI_PATH": source_path, SOCKET_ENV: "none"}),
            "cni-hwol + executor": Variant("hwol", {"CNI_PATH": source_path, SOCKET_ENV: self.executors[0].socket}),
            "bridge (Go)": Variant("ref", {}),
        }
        self.frozen_bin = node.workdir / "bin-frozen"
        if binary:
            self.frozen_bin.mkdir()
            os.environ["CNI_HWOL_BINARY"] = binary
            plugin_wrapper(self.frozen_bin)
            del os.environ["CNI_HWOL_BINARY"]
            conf = json.loads((node.netconf_dir / "hwol.conflist").read_text())
            conf["name"] = "hwolbin"
            (node.netconf_dir / "hwolbin.conflist").write_text(json.dumps(conf))
            self.executors.append(Executor(node.workdir, "executor-frozen", [os.path.abspath(binary)]).start())
            frozen_path = f"{self.frozen_bin}:{DEBIAN_CNI_PLUGINS}"
            self.variants["cni-hwol (PyInstaller)"] = Variant("hwolbin", {"CNI_PATH": frozen_path, SOCKET_ENV: "none"})
            self.variants["cni-hwol (PyInstaller) + executor"] = Variant(
                "hwolbin", {"CNI_PATH": frozen_path, SOCKET_ENV: self.executors[1].socket}
            )

    def close(self) -> None:
        for executor in self.executors:
            executor.stop()

    def _add_portmap(self, name: str) -> None:
        path = self.node.netconf_dir / f"{name}.conflist"
        conf = json.loads(path.read_text())
        conf["plugins"].append({"type": "portmap", "capabilities": {"portMappings": True}})
        path.write_text(json.dumps(conf))

    def cnitool(self, verb: str, variant: Variant, pod: Pod, device_id: str | None) -> Sample:
        env = {**self.node.cni_env(pod), **variant.env}
        if device_id:
            env["CAP_ARGS"] = json.dumps({"deviceID": device_id})
        sample, code, _ = measured([self.node.cnitool, verb, variant.network, pod.netns], self.node.netns, env)
        if code != 0:
            raise RuntimeError(f"{verb} {variant.network} failed")
        return sample

    def cycle(self, rounds: int) -> dict:
        """ADD, CHECK, DEL of each variant, interleaved, with a fresh pod each round."""
        verbs = ("ADD", "CHECK", "DEL", "ADD+DEL", "cycle")
        series = {(v, verb): Series() for v in self.variants for verb in verbs}
        vf = self.node.vf(0, 0)
        for n in range(rounds):
            order = list(self.variants.items())
            if n % 2:
                order.reverse()
            for number, (label, variant) in enumerate(order):
                pod = self.node.create_pod(f"b{n}v{number}")
                device = None if variant.network == "ref" else vf.pci
                add = self.cnitool("add", variant, pod, device)
                check = self.cnitool("check", variant, pod, device)
                delete = self.cnitool("del", variant, pod, device)
                self.node.destroy_pod(pod)
                for verb, s in (("ADD", add), ("CHECK", check), ("DEL", delete)):
                    series[(label, verb)].samples.append(s)
                series[(label, "ADD+DEL")].samples.append(combined(add, delete))
                series[(label, "cycle")].samples.append(combined(add, check, delete))
        self.cycle_series = series  # round by round, for paired comparisons (bench.ab)
        return {f"{label} {verb}": s.summary() for (label, verb), s in series.items()}

    def version(self, rounds: int) -> dict:
        """VERSION exec'd directly, as a runtime probes a plugin: each cni-hwol variant
        with its own executor socket (or none), against the Go bridge."""
        base = {"CNI_COMMAND": "VERSION", "PATH": os.environ.get("PATH", "")}
        probes = {"bridge (Go)": (f"{DEBIAN_CNI_PLUGINS}/bridge", base)}
        for label, variant in self.variants.items():
            if label.startswith("cni-hwol"):
                bin_dir = variant.env["CNI_PATH"].split(":")[0]
                probes[label] = (f"{bin_dir}/cni-hwol", {**base, SOCKET_ENV: variant.env[SOCKET_ENV]})
        series = {label: Series() for label in probes}
        for _ in range(rounds):
            for label, (path, env) in probes.items():
                sample, _, _ = measured([path], self.node.netns, env, b'{"cniVersion":"1.0.0"}')
                series[label].samples.append(sample)
        return {label: s.summary() for label, s in series.items()}

    def plugin_alone(self, rounds: int) -> dict:
        """cni-hwol exec'd directly (no client), in process and through its executor:
        wall, CPU and peak RSS per verb (CPU and RSS are the exec'd process's: an
        executor's fork is not its child)."""
        node = self.node
        conf = {**node.netconf(), "deviceID": node.vf(0, 1).pci}
        labels = [label for label in self.variants if label.startswith("cni-hwol")]
        series = {(label, verb): Series() for label in labels for verb in ("ADD", "CHECK", "DEL")}
        for n in range(rounds):
            for number, label in enumerate(labels):
                variant = self.variants[label]
                pod = node.create_pod(f"solo{n}v{number}")
                env = {**direct_exec_env(pod), **variant.env}
                plugin = variant.env["CNI_PATH"].split(":")[0] + "/cni-hwol"
                result = None
                for verb in ("ADD", "CHECK", "DEL"):
                    body = {**conf, "prevResult": result} if verb == "CHECK" else conf
                    sample, code, out = measured(
                        [plugin], node.netns, {**env, "CNI_COMMAND": verb}, json.dumps(body).encode()
                    )
                    if code != 0:
                        raise RuntimeError(f"{verb} failed: {out!r}")
                    if verb == "ADD":
                        result = json.loads(out)
                    series[(label, verb)].samples.append(sample)
                node.destroy_pod(pod)
        return {f"{label} {verb}": s.summary() for (label, verb), s in series.items()}

    def add_del(self, rounds: int, label: str) -> dict:
        vf = self.node.vf(0, 0)
        add, delete = Series(), Series()
        for n in range(rounds):
            pod = self.node.create_pod(f"s{n}")
            add.samples.append(self.cnitool("add", self.variants[label], pod, vf.pci))
            delete.samples.append(self.cnitool("del", self.variants[label], pod, vf.pci))
            self.node.destroy_pod(pod)
        return {"ADD": add.summary(), "DEL": delete.summary()}


def unrelated_ports(node: SimNode, total: int) -> None:
    have = len([p for p in node.ovs.ports(node.bridge) if p.startswith("other")])
    args: list[str] = []
    for n in range(have, total):
        args += ["--", "add-port", node.bridge, f"other{n}"]
    for start in range(0, len(args), 1000):  # keep the command line reasonable
        node.ovs.vsctl(*args[start : start + 1000])


def burst(node: SimNode, bench: Bench, label: str, pods_count: int) -> dict:
    variant = bench.variants[label]
    pods = [(node.create_pod(f"burst{i}"), vf) for i, vf in enumerate(node.vfs[:pods_count])]

    def one(verb: str, pod: Pod, pci: str) -> int:
        env = {**node.cni_env(pod), **variant.env, "CAP_ARGS": json.dumps({"deviceID": pci})}
        done = run([node.cnitool, verb, variant.network, pod.netns], netns=node.netns, env=env, check=False)
        return done.returncode

    def run_all(verb: str) -> tuple[float, int]:
        start = time.perf_counter()
        with ThreadPoolExecutor(len(pods)) as pool:
            codes = list(pool.map(lambda pv: one(verb, pv[0], pv[1].pci), pods))
        node.sync_sysfs()
        return time.perf_counter() - start, sum(1 for code in codes if code)

    add_s, add_failed = run_all("add")
    del_s, del_failed = run_all("del")
    for pod, _ in pods:
        node.destroy_pod(pod)
    return {
        "pods": len(pods),
        "add_total_s": round(add_s, 2),
        "add_failures": add_failed,
        "del_total_s": round(del_s, 2),
        "del_failures": del_failed,
    }


def versions() -> dict:
    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "?"

    import pyroute2.config.version as pv  # noqa: PLC0415 - only for the report

    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, kernel {platform.release()}",
        "python": platform.python_version(),
        "pyroute2": pv.__version__,
        "ovs": out(["ovs-vswitchd", "--version"]),
        "cni-plugins": out(["dpkg-query", "-W", "-f=${Version}", "containernetworking-plugins"]),
        "go": out(["go", "version"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds: check the harness, not the numbers")
    parser.add_argument(
        "--binary",
        default=os.environ.get("CNI_HWOL_BINARY") or _default_binary(),
        help="a PyInstaller build of cni-hwol to measure too",
    )
    parser.add_argument("--out", default=str(HERE), help="where results.md and results.json go")
    args = parser.parse_args()
    reason = e2e_missing()
    if reason:
        print(f"bench cannot run: {reason}", file=sys.stderr)
        return 1
    rounds = 3 if args.quick else 30
    report: dict = {"versions": versions(), "rounds": rounds}

    with SimNode(pfs=2, vfs_per_pf=16) as node:
        bench = Bench(node, args.binary if args.binary and os.path.exists(args.binary) else None)
        try:
            # The build that ships, with and without its executor: scaling and burst.
            shipped = [label for label in bench.variants if label.startswith("cni-hwol")][-2:]
            report["shipped"] = shipped
            print("cycle A/B ...", flush=True)
            report["cycle"] = bench.cycle(rounds)
            print("VERSION ...", flush=True)
            report["version"] = bench.version(rounds)
            print("plugin alone ...", flush=True)
            report["plugin_alone"] = bench.plugin_alone(max(3, rounds // 3))
            print("ports on br-int ...", flush=True)
            report["ports_scaling"] = {label: {} for label in shipped}
            for total in (0, 100, 500, 1000):
                unrelated_ports(node, total)
                for label in shipped:
                    report["ports_scaling"][label][str(total)] = bench.add_del(max(3, rounds // 2), label)
            node.ovs.vsctl(*[a for n in range(1000) for a in ("--", "--if-exists", "del-port", f"other{n}")])
            print("burst ...", flush=True)
            report["burst"] = {label: burst(node, bench, label, 32) for label in shipped}
        finally:
            bench.close()

    report["vfs_scaling"] = {"cni-hwol": {}, "cni-hwol + executor": {}}
    for total in (8, 64, 256):
        print(f"{total} VFs ...", flush=True)
        with SimNode(pfs=2, vfs_per_pf=total // 2, wired_per_pf=1) as node:
            bench = Bench(node, None)
            try:
                for label, points in report["vfs_scaling"].items():
                    points[str(total)] = bench.add_del(max(3, rounds // 2), label)
            finally:
                bench.close()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "results.md").write_text(render(report))
    print((out / "results.md").read_text())
    return 0


def _default_binary() -> str | None:
    candidate = HERE.parent / "dist" / "cni-hwol" / "cni-hwol"
    return str(candidate) if candidate.exists() else None


def _ratio(a: dict, b: dict) -> str:
    return f"{a['median_ms'] / b['median_ms']:.2f}x" if a and b and b.get("median_ms") else "?"


def render(r: dict) -> str:
    v = r["versions"]
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python3 -m bench.run` on {v['date']}: {v['machine']}; Python {v['python']}, "
        f"pyroute2 {v['pyroute2']}, {v['ovs']}, containernetworking-plugins {v['cni-plugins']}, {v['go']}. "
        f"{r['rounds']} rounds, variants interleaved.",
        "",
        "## ADD, CHECK, DEL and the full cycle through the libcni client",
        "",
        "Wall time; CPU is the client plus every plugin it ran; RSS is the largest process of the invocation.",
        "",
        "| variant | verb | median ms | p90 ms | max ms | CPU median ms | peak RSS MiB | vs Go |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ref = {verb: r["cycle"].get(f"bridge (Go) {verb}") for verb in ("ADD", "CHECK", "DEL", "ADD+DEL", "cycle")}
    for key, s in r["cycle"].items():
        label, verb = key.rsplit(" ", 1)
        lines.append(
            f"| {label} | {verb} | {s['median_ms']} | {s['p90_ms']} | {s['max_ms']} | "
            f"{s['cpu_median_ms']} | {s['max_rss_mib']} | {_ratio(s, ref[verb])} |"
        )
    lines += [
        "",
        "## VERSION (direct exec)",
        "",
        "| plugin | median ms | p90 ms | peak RSS MiB | vs Go |",
        "|---|---|---|---|---|",
    ]
    for label, s in r["version"].items():
        lines.append(
            f"| {label} | {s['median_ms']} | {s['p90_ms']} | {s['max_rss_mib']} | "
            f"{_ratio(s, r['version']['bridge (Go)'])} |"
        )
    lines += [
        "",
        "## cni-hwol alone (direct exec, no client)",
        "",
        "CPU and RSS are the exec'd process's and its children's (IPAM); an executor's fork is not among them.",
        "",
        "| variant | verb | median ms | p90 ms | CPU median ms | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for key, s in r["plugin_alone"].items():
        label, verb = key.rsplit(" ", 1)
        lines.append(
            f"| {label} | {verb} | {s['median_ms']} | {s['p90_ms']} | {s['cpu_median_ms']} | {s['max_rss_mib']} |"
        )
    for title, key in (
        ("unrelated ports already on br-int", "ports_scaling"),
        ("VFs described on the node", "vfs_scaling"),
    ):
        lines += [
            "",
            f"## Scaling: {title}",
            "",
            "| variant | count | ADD median ms | DEL median ms |",
            "|---|---|---|---|",
        ]
        growths = []
        for label, points in r[key].items():
            first, last = points[min(points, key=int)], points[max(points, key=int)]
            for count, s in points.items():
                lines.append(f"| {label} | {count} | {s['ADD']['median_ms']} | {s['DEL']['median_ms']} |")
            growth = (last["ADD"]["median_ms"] + last["DEL"]["median_ms"]) / (
                first["ADD"]["median_ms"] + first["DEL"]["median_ms"]
            )
            growths.append(f"{label} {growth:.2f}x")
        lines.append(f"\nADD+DEL growth from the smallest to the largest point: {', '.join(growths)}")
    lines += ["", "## Burst", ""]
    for label, b in r["burst"].items():
        lines.append(
            f"- {label}: {b['pods']} pods ADDed concurrently in {b['add_total_s']} s ({b['add_failures']} failures), "
            f"DELeted concurrently in {b['del_total_s']} s ({b['del_failures']} failures)."
        )
    lines.append("")
    notes = HERE / "profile.md"  # the analysis that goes with the numbers
    if notes.exists():
        lines.append(notes.read_text())
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
