"""README's first two commands run as written on the CI machine (root, no sudo installed), and
.ci/run runs the test command README gives."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[list[list[str]]]:
    """The shell block that opens README: per line, its `&&`-joined commands as argument lists."""
    text = (ROOT / "README.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [shlex.split(line, comments=True) for line in block.splitlines()]
    commands = []
    for words in lines:
        steps, step = [], []
        for word in words + ["&&"]:
            if word == "&&":
                steps.append(step)
                step = []
            else:
                step.append(word)
        commands.append(steps)
    return commands


def test_readme_opens_with_the_demo_and_the_test_command():
    demo, tests = readme_commands()
    assert demo == [["bash", ".ci/setup"], ["python3", "-m", "tests.demo"]]
    assert tests == [["bash", ".ci/setup"], ["python3", "-m", "pytest", "-q"]]


def test_every_program_readme_starts_is_on_this_machine():
    # A fresh Debian 12 root has no sudo: "sudo bash .ci/setup" fails there before it starts.
    programs = {step[0] for line in readme_commands() for step in line}
    assert "sudo" not in programs and all(shutil.which(program) for program in programs), programs


def test_ci_runs_readme_setup_and_test_command():
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines() if not line.lstrip().startswith("#")]
    _, tests = readme_commands()
    setup, pytest_command = (" ".join(step) for step in tests)
    assert any(line.startswith(setup) for line in ci), setup
    assert any(line.endswith(pytest_command) and "tests/" not in line for line in ci), pytest_command
