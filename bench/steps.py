"""Where ADD and DEL spend their time, step by step, in process on the simulated node.

    python3 -m bench.steps                       # this tree, 15 rounds
    python3 -m bench.steps --ref d91c201         # another commit (git archive in a temp dir)

Each verb is exec'd (`python3 -S`, the source tree) with the named step functions of
verbs/add.py and verbs/delete.py wrapped in timers (`Class.method` wraps a method; a
name a tree lacks is skipped). Prints the median and max per step and verb (a step run
twice in one verb, summed). Nested steps overlap (`_add_locked` holds the others;
`teardown` likewise). Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from bench.ab import unpack
from bench.run import direct_exec_env, measured
from tests.simnode import SimNode
from tests.simnode.node import DEBIAN_CNI_PLUGINS

STEPS = {
    "cni_hwol.verbs.add": [
        "_add_locked",
        "find_representor",
        "host_vf_link",
        "choose_bridge",
        "uplink_of",
        "read_before",
        "read_rate_before",
        "move_vf",
        "prepare_representor",
        "enable_announcements",
        "apply_settings",
        "apply_rate",
        "connect_ovsdb",
        "_settle_stale_ports",
        "_attach",
        "verify_assigned_ofport",
        "add_addresses",
        "_await_interface",
        "add_routes",
    ],
    "cni_hwol.verbs.delete": [
        "teardown",
        "locate_vf",
        "_detach_or_record_stale",
        "detach_attachment_port",
        "PortRemoval.wait_let_go",
        "restore_settings",
        "restore_rate",
        "return_vf",
        "restore_representor",
    ],
}

# Run in the exec'd plugin: wrap the steps, run the verb, append the timings to $STEPS_OUT.
TIMED_MAIN = """
import functools, importlib, json, os, sys, time
sys.path[:0] = [sys.argv.pop(1), sys.argv.pop(1)]
timings = []
def timed(module, label):
    owner, _, name = label.rpartition(".")
    module = getattr(module, owner) if owner else module
    f = getattr(module, name)
    @functools.wraps(f)
    def step(*args, **kwargs):
        start = time.perf_counter()
        try:
            return f(*args, **kwargs)
        finally:
            timings.append((label, (time.perf_counter() - start) * 1000))
    setattr(module, name, step)
for module_name, names in json.loads(os.environ["STEPS"]).items():
    module = importlib.import_module(module_name)
    for name in names:
        owner = name.partition(".")[0]
        if hasattr(module, owner):
            timed(module, name)
from cni_hwol.main import main
try:
    code = main()
finally:
    with open(os.environ["STEPS_OUT"], "a") as out:
        out.write(json.dumps({"verb": os.environ["CNI_COMMAND"], "steps": timings}) + "\\n")
raise SystemExit(code)
"""


def run(tree: Path, rounds: int, out: Path) -> dict[tuple[str, str], list[float]]:
    with SimNode(pfs=1, vfs_per_pf=4) as node:
        conf = {**node.netconf(), "deviceID": node.vf(0, 1).pci}
        for n in range(rounds):
            pod = node.create_pod(f"st{n}")
            env = {
                **direct_exec_env(pod),
                "CNI_PATH": DEBIAN_CNI_PLUGINS,
                "STEPS": json.dumps(STEPS),
                "STEPS_OUT": str(out),
            }
            argv = [sys.executable, "-S", "-c", TIMED_MAIN, str(tree), sysconfig.get_paths()["purelib"]]
            for verb in ("ADD", "DEL"):
                _, code, body = measured(argv, node.netns, {**env, "CNI_COMMAND": verb}, json.dumps(conf).encode())
                if code != 0:
                    raise RuntimeError(f"{verb} failed: {body!r}")
            node.destroy_pod(pod)
    steps: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for line in out.read_text().splitlines():
        record = json.loads(line)
        per_call: dict[str, float] = collections.defaultdict(float)
        for name, ms in record["steps"]:
            per_call[name] += ms  # a step called twice in one verb (the readiness waits) counts once, summed
        for name, ms in per_call.items():
            steps[(record["verb"], name)].append(ms)
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="time this commit instead of the worktree")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cni-hwol-steps-") as tmp:
        tree = unpack(args.ref, None, Path(tmp) / "tree") if args.ref else Path(__file__).resolve().parents[1]
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "cni_hwol")], check=True)
        steps = run(tree, args.rounds, Path(tmp) / "steps.jsonl")
    order = [
        (verb, name)
        for verb, module in (("ADD", "cni_hwol.verbs.add"), ("DEL", "cni_hwol.verbs.delete"))
        for name in STEPS[module]
    ]
    print(f"| verb | step | verbs | median ms | max ms |  ({args.ref or 'worktree'}, {args.rounds} rounds)")
    print("|---|---|---|---|---|")
    for verb, name in order:
        values = steps.get((verb, name))
        if values:
            print(f"| {verb} | {name} | {len(values)} | {statistics.median(values):.2f} | {max(values):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
