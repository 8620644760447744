"""Fixtures of the guest tests (tests/kernel/test_guest*.py): one kernel node for the
whole VM session, since netdevsim devices are created once; a fresh pod netns per test."""

from __future__ import annotations

import subprocess
import time

import pytest


@pytest.fixture(scope="session")
def knode():
    from tests.kernel.knode import KernelNode  # inside the VM only

    node = KernelNode().start()
    yield node
    node.close()


@pytest.fixture
def pod():
    name = f"kpod{time.monotonic_ns() % 10**8}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)
