"""Break the code on purpose and watch the test that backs the claim fail.

Each `tests/mutants/*.patch` is a unified diff against the repository with a
header of `# key: value` lines before the diff:

    # claim: IPAM failing after the port was added removes the port
    # test: tests/e2e/test_failures.py::test_route_failure_after_port_rolls_back
    --- a/cni_hwol/verbs/add.py
    +++ b/cni_hwol/verbs/add.py
    @@ ...

For each patch the runner copies the working tree (tracked and untracked, not
ignored files) to a scratch directory, applies the patch there with
`git apply`, runs the named tests with pytest and expects them to FAIL (pytest
exit code 1). A mutant whose tests pass is "survived": the claim is not backed.
A patch that no longer applies, or tests that cannot be collected, is "broken":
fix the patch. `--baseline` also runs each test on the unpatched copy and
expects it to pass, so a test that fails anyway cannot pass for a catch.

    python3 -m tests.mutants.run                 every mutant
    python3 -m tests.mutants.run NAME [NAME...]  the named ones (file stem)
    python3 -m tests.mutants.run --list          the mutants and their claims
    python3 -m tests.mutants.run --table              tests/README.md's claim table, in Markdown
    python3 -m tests.mutants.run --update-readme      write that table into tests/README.md

Run on demand (minutes per e2e mutant), not in CI. Exits 0 only when every
mutant was caught.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MUTANTS = Path(__file__).resolve().parent
README = REPO / "tests" / "README.md"
TABLE_BEGIN = "<!-- claims table: made by `python3 -m tests.mutants.run --update-readme` -->"
TABLE_END = "<!-- end of the claims table -->"


@dataclass
class Mutant:
    name: str
    path: Path
    claim: str
    tests: list[str]


def load(path: Path) -> Mutant:
    header: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(":")
        header.setdefault(key.strip(), []).append(value.strip())
    tests = [t for value in header.get("test", []) for t in value.split()]
    if not tests:
        raise SystemExit(f"{path.name}: no '# test:' line")
    return Mutant(path.stem, path, " ".join(header.get("claim", ["?"])), tests)


def all_mutants() -> list[Mutant]:
    return [load(p) for p in sorted(MUTANTS.glob("*.patch"))]


def claims_table(mutants: list[Mutant]) -> str:
    """tests/README.md's claims: one table per test file, claim | test | break."""
    by_file: dict[str, list[Mutant]] = {}
    for m in mutants:
        by_file.setdefault(m.tests[0].split("::")[0].removeprefix("tests/"), []).append(m)
    out = []
    for test_file in sorted(by_file):
        out += [f"### `{test_file}`", "", "| claim | test | break |", "|---|---|---|"]
        for m in sorted(by_file[test_file], key=lambda m: (m.tests[0], m.name)):
            tests = "<br>".join(f"`{t.split('::', 1)[1] if '::' in t else t}`" for t in m.tests)
            out.append(f"| {m.claim} | {tests} | [`{m.name}`](mutants/{m.path.name}) |")
        out.append("")
    return "\n".join(out)


def readme_table() -> str:
    """The claims table as tests/README.md holds it (between its markers)."""
    text = README.read_text()
    return text[text.index(TABLE_BEGIN) + len(TABLE_BEGIN) : text.index(TABLE_END)].strip("\n") + "\n"


def update_readme(table: str) -> None:
    text = README.read_text()
    head, tail = text[: text.index(TABLE_BEGIN) + len(TABLE_BEGIN)], text[text.index(TABLE_END) :]
    README.write_text(f"{head}\n\n{table}\n{tail}")


def scratch_copy(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in files:
        if not raw:
            continue
        rel = raw.decode()
        src = REPO / rel
        if not src.exists() or rel.startswith("tests/mutants/"):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


def run_tests(copy: Path, tests: list[str], log: Path) -> int:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with open(log, "ab") as out:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
            cwd=copy,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        ).returncode


def try_mutant(mutant: Mutant, baseline: bool, logs: Path) -> str:
    log = logs / f"{mutant.name}.log"
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as tmp:
        copy = Path(tmp)
        scratch_copy(copy)
        if baseline and run_tests(copy, mutant.tests, log) != 0:
            return "baseline-fails"
        # Full context first; then one line of it, so a patch still lands
        # after unrelated edits near the broken line.
        for context in ([], ["-C1"]):
            applied = subprocess.run(
                ["git", "apply", "--unidiff-zero", *context, str(mutant.path)], cwd=copy, capture_output=True, text=True
            )
            if applied.returncode == 0:
                break
        if applied.returncode != 0:
            log.write_text(applied.stderr)
            return "broken (patch does not apply)"
        code = run_tests(copy, mutant.tests, log)
    summary = log.read_text().rstrip().rsplit("\n", 1)[-1]
    if code == 1 and " error" in summary and " failed" not in summary:
        return "broken (tests errored, none failed)"  # a fixture broke: no claim was tested
    if code == 1:
        return "caught"
    if code == 0:
        return "SURVIVED"
    return f"broken (pytest exit {code})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutant file stems (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--table", action="store_true", help="print the claim | test | break table and exit")
    parser.add_argument("--update-readme", action="store_true", help="write the table into tests/README.md")
    parser.add_argument("--baseline", action="store_true", help="also expect each test to pass unpatched")
    parser.add_argument("--logs", default="/tmp/cni-hwol-mutants", help="one pytest log per mutant here")
    args = parser.parse_args()

    mutants = all_mutants()
    if args.names:
        wanted = set(args.names)
        unknown = wanted - {m.name for m in mutants}
        if unknown:
            raise SystemExit(f"unknown mutants: {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if m.name in wanted]
    if args.update_readme:
        update_readme(claims_table(mutants))
        return 0
    if args.table:
        print(claims_table(mutants), end="")
        return 0
    if args.list:
        for m in mutants:
            print(f"{m.name}: {m.claim}\n    {' '.join(m.tests)}")
        return 0

    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, str] = {}
    for m in mutants:
        started = time.monotonic()
        outcomes[m.name] = try_mutant(m, args.baseline, logs)
        print(f"{outcomes[m.name]:<32} {m.name} ({time.monotonic() - started:.0f} s)", flush=True)
    caught = sum(1 for o in outcomes.values() if o == "caught")
    print(f"{caught} caught, {len(outcomes) - caught} not caught (logs in {logs})")
    return 0 if caught == len(outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
