"""A/B: this tree against another commit (or a patched copy of either), on one simulated node.

    python3 -m bench.ab d91c201                                   # HEAD vs d91c201
    python3 -m bench.ab HEAD --b-patch bench/no-readiness-waits.patch --b-label "no waits"
    python3 -m bench.ab d91c201 --rounds 40 --out bench/ab-results.md --section "HEAD vs d91c201"

Side A is this worktree as it is on disk; side B is `git archive REF` unpacked in a
temporary directory (no worktree is registered), with --b-patch applied if given.
Each side runs as the node runs the source tree: its own compiled front (shim.c) and
`cni-hwol-py` on CNI_PATH, and its own warm executor. ADD, CHECK and DEL go through
the libcni client, A, B and the Go bridge plugin interleaved round by round (the
order reversed every other round) on the same VF, so machine drift cancels. Prints
medians and p90, the ratios A/B and A/Go, and the median of the round-by-round ratios
A/B (steadier on a busy machine); with --out, appends a section to that file. Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import Bench, Variant, versions
from cni_hwol.executor.protocol import SOCKET_ENV
from tests.conftest import e2e_missing
from tests.simnode import SimNode
from tests.simnode.node import DEBIAN_CNI_PLUGINS, REPO, Executor

VERBS = ("ADD", "CHECK", "DEL", "ADD+DEL")


def unpack(ref: str, patch: str | None, dest: Path) -> Path:
    """`git archive REF` into dest, then the patch (a unified diff, as tests/mutants keeps them)."""
    dest.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    if patch:
        subprocess.run(["git", "apply", os.path.abspath(patch)], cwd=dest, check=True)
    return dest


def source_bin(tree: Path, bin_dir: Path) -> Path:
    """The tree's own front and a `cni-hwol-py` that runs the tree's source (as tests/simnode's plugin_wrapper)."""
    import compileall
    import sysconfig

    bin_dir.mkdir(parents=True)
    compileall.compile_dir(tree / "cni_hwol", quiet=1)
    subprocess.run(["bash", str(tree / "packaging" / "build-shim.sh"), str(bin_dir / "cni-hwol")], check=True)
    paths = [str(tree), sysconfig.get_paths()["purelib"]]
    python = bin_dir / "cni-hwol-py"
    python.write_text(
        f"#!{sys.executable} -S\nimport sys\nsys.path[:0] = {paths!r}\n"
        "from cni_hwol.main import main\nraise SystemExit(main())\n"
    )
    python.chmod(0o755)
    return bin_dir


def start_executor(tree: Path, workdir: Path, name: str) -> Executor:
    """A warm executor importing `tree`'s code: `python -m cni_hwol` with the tree first on sys.path
    (Executor runs it from this worktree, with this worktree on PYTHONPATH)."""
    run = "import runpy, sys; sys.path.insert(0, %r); runpy.run_module('cni_hwol', run_name='__main__', alter_sys=True)"
    return Executor(workdir, name, [sys.executable, "-c", run % str(tree)]).start()


def ratio(a: dict, b: dict) -> str:
    return f"{a['median_ms'] / b['median_ms']:.2f}x" if a and b and b.get("median_ms") else "?"


def paired(bench: Bench, a: str, b: str) -> dict[str, str]:
    """Per verb, the median of the round-by-round ratios A/B (both ran in the same round, close in
    time) and their 10th-90th percentile: steadier than a ratio of medians on a busy machine."""
    out = {}
    for verb in VERBS:
        ratios = sorted(
            x.wall / y.wall
            for x, y in zip(bench.cycle_series[(a, verb)].samples, bench.cycle_series[(b, verb)].samples, strict=True)
        )
        p10, p90 = (ratios[min(len(ratios) - 1, int(round(q * (len(ratios) - 1))))] for q in (0.1, 0.9))
        out[verb] = f"{statistics.median(ratios):.2f}x ({p10:.2f}-{p90:.2f})"
    return out


def load_now() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def render(
    args: argparse.Namespace,
    labels: dict[str, str],
    results: dict,
    pairs: dict[str, str],
    load: tuple[str, str],
    took: float,
) -> str:
    a, b, go = labels["A"], labels["B"], labels["Go"]
    v = versions()
    lines = [
        f"## {args.section or f'{a} vs {b}'}",
        "",
        f"`python3 -m bench.ab {shlex.join(sys.argv[1:])}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}:"
        f" shared with other sessions (load average {load[0]} before, {load[1]} after),"
        f" {v['machine']}, Python {v['python']}, {v['ovs']}; {args.rounds} rounds of ADD, CHECK, DEL"
        f" through the libcni client, A, B and Go interleaved (order reversed every other round), {took:.0f} s."
        " Both cni-hwol sides run the source tree with its own warm executor.",
        "",
        f"| verb | {a} median | p90 | {b} median | p90 | Go median | p90 | A/B | A/B paired (p10-p90) | A/Go | B/Go |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for verb in VERBS:
        ra, rb, rg = (results[f"{label} {verb}"] for label in (a, b, go))
        lines.append(
            f"| {verb} | {ra['median_ms']} | {ra['p90_ms']} | {rb['median_ms']} | {rb['p90_ms']} | {rg['median_ms']}"
            f" | {rg['p90_ms']} | {ratio(ra, rb)} | {pairs[verb]} | {ratio(ra, rg)} | {ratio(rb, rg)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", help="side B: a commit (side A is this worktree)")
    parser.add_argument("--b-patch", help="a unified diff applied to side B's tree")
    parser.add_argument("--a-label", default="HEAD")
    parser.add_argument("--b-label", help="default: the ref")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", help="append the results to this markdown file")
    parser.add_argument("--section", help="the heading of that section")
    args = parser.parse_args()
    reason = e2e_missing()
    if reason:
        print(f"bench cannot run: {reason}", file=sys.stderr)
        return 1
    labels = {"A": args.a_label, "B": args.b_label or args.ref, "Go": "bridge (Go)"}
    load_before = load_now()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cni-hwol-ab-") as tmp, SimNode(pfs=1, vfs_per_pf=4) as node:
        tree_b = unpack(args.ref, args.b_patch, Path(tmp) / "b")
        bench = Bench(node, None)  # side A's executor, and the Go bridge plugin's conflist
        executor_b = start_executor(tree_b, node.workdir, "executor-b")
        bench.executors.append(executor_b)
        try:
            bin_b = source_bin(tree_b, Path(tmp) / "bin-b")
            socket_b = executor_b.socket
            bench.variants = {
                labels["A"]: bench.variants["cni-hwol + executor"],
                labels["B"]: Variant("hwol", {"CNI_PATH": f"{bin_b}:{DEBIAN_CNI_PLUGINS}", SOCKET_ENV: socket_b}),
                labels["Go"]: bench.variants["bridge (Go)"],
            }
            results = bench.cycle(args.rounds)
            pairs = paired(bench, labels["A"], labels["B"])
        finally:
            bench.close()
    text = render(args, labels, results, pairs, (load_before, load_now()), time.monotonic() - start)
    print(text)
    if args.out:
        with open(args.out, "a") as out:
            out.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
