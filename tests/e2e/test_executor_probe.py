"""The executor's liveness probe (packaging/daemonset.yaml): it passes while the executor's loop
answers, and fails when the executor is stopped (a hung loop) or gone."""

from __future__ import annotations

import os
import signal
import subprocess

from tests.simnode.node import Executor, cni_hwol_command


def probe(socket_path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cni_hwol_command(), "executor", "--probe", "--socket", socket_path],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )


def test_the_probe_passes_while_the_loop_answers_and_fails_when_it_hangs_or_is_gone(tmp_path):
    executor = Executor(tmp_path).start()
    try:
        assert probe(executor.socket).returncode == 0
        assert "refused" not in executor.log.read_text()  # a probe is no refused invocation
        executor.proc.send_signal(signal.SIGSTOP)
        try:
            hung = probe(executor.socket)
        finally:
            executor.proc.send_signal(signal.SIGCONT)
        assert hung.returncode == 1 and "no executor answers" in hung.stderr
        assert probe(executor.socket).returncode == 0
    finally:
        executor.stop()
    gone = probe(executor.socket)
    assert gone.returncode == 1 and "no executor answers" in gone.stderr
