"""Shared fixtures. End-to-end tests need root and the tools .ci/setup installs."""

from __future__ import annotations

import os
import shutil

import pytest

E2E_TOOLS = ("ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "go", "ip", "ping", "ethtool")


def e2e_missing() -> str | None:
    if os.geteuid() != 0:
        return "end-to-end tests need root (network namespaces, veth pairs)"
    missing = [tool for tool in E2E_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)}: run .ci/setup"
    if not os.path.exists("/usr/lib/cni/host-local"):
        return "missing Debian's containernetworking-plugins: run .ci/setup"
    return None


def _require_e2e() -> None:
    reason = e2e_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def node():
    """A fresh simulated node (2 PFs x 4 VFs, OVS with br-int), torn down after the test."""
    _require_e2e()
    from tests.simnode import SimNode

    with SimNode() as sim:
        yield sim


@pytest.fixture(scope="module")
def shared_node():
    """One simulated node for a module whose tests change nothing on it."""
    _require_e2e()
    from tests.simnode import SimNode

    with SimNode() as sim:
        yield sim


@pytest.fixture(scope="session", autouse=True)
def sweep_leftovers_of_killed_runs():
    """A SIGKILLed run leaves namespaces, OVS daemons and processes behind:
    remove those of nodes whose test run is dead (never a live run's)."""
    if os.geteuid() == 0:
        from tests.simnode.leftovers import sweep

        for removed in sweep():
            print(f"swept the leftovers of a killed run: {removed}")
    yield
