"""tests/kernel/run.sh from the host: it fails under CI when the tier cannot run,
and it runs single guest tests for tests/mutants/.

test_in_vm boots a VM (minutes), so it runs only when named on the command line,
as the mutant runner names it:
    python3 -m pytest 'tests/kernel/test_run_sh.py::test_in_vm[test_a_pf_in_legacy_mode_is_refused_with_the_fix]'
The whole tier runs as `bash tests/kernel/run.sh` (.ci/run does).
"""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUEST_TESTS = sorted(
    node.name
    for path in (REPO / "tests/kernel").glob("test_guest*.py")
    for node in ast.parse(path.read_text()).body
    if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
)


def run_sh(timeout: float, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.run(
        ["bash", "tests/kernel/run.sh"],
        cwd=REPO,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_tier_that_cannot_run_skips_locally_and_fails_under_ci():
    local = run_sh(60, KVER="none-such")  # no such kernel: the tier cannot run
    assert local.returncode == 0, local.stdout
    assert local.stdout.startswith("SKIP kernel tier: missing linux-image-none-such linux-headers-none-such")
    ci = run_sh(60, KVER="none-such", CI="true")
    assert ci.returncode == 1, ci.stdout
    assert ci.stdout.splitlines()[-1] == "kernel tier FAILED: CI=true and the tier cannot run"


@pytest.mark.parametrize("guest_test", GUEST_TESTS)
def test_in_vm(request, guest_test):
    if not any("test_in_vm" in arg for arg in request.config.args):
        pytest.skip("boots a VM: name this test to run it; the tier runs as bash tests/kernel/run.sh")
    vm_timeout = int(os.environ.get("CNI_HWOL_VM_TIMEOUT", "1500"))  # run.sh's bound on the VM
    done = run_sh(vm_timeout + 300, CNI_HWOL_KERNEL_TESTS=guest_test)
    if done.stdout.startswith("SKIP kernel tier"):
        pytest.skip(done.stdout.splitlines()[0])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout  # the named test ran, alone
