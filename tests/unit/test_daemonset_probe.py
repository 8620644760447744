"""The DaemonSet's executor container has a liveness probe that asks the executor it runs: the
probe execs `executor --probe` on the socket the container's own command serves."""

from __future__ import annotations

from tests.image.podman import Manifest


def test_the_executor_probe_asks_the_socket_the_executor_serves():
    executor = Manifest.load().container("executor")
    command = executor["command"]
    probe = executor["livenessProbe"]["exec"]["command"]
    served = command[command.index("--socket") + 1]
    assert probe[: command.index("executor") + 1] == command[: command.index("executor") + 1]
    assert "--probe" in probe and probe[probe.index("--socket") + 1] == served
    assert any(served.startswith(m["mountPath"] + "/") for m in executor["volumeMounts"])
