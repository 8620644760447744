"""Run commands inside a network namespace (the simulated node's "host")."""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Mapping, Sequence

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _enter(path: str):
    def preexec() -> None:
        fd = os.open(path, os.O_RDONLY)
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
        os.close(fd)

    return preexec


def run(
    argv: Sequence[str],
    netns: str | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """Run argv (in netns, a path under /var/run/netns, when given)."""
    done = subprocess.run(
        list(argv),
        input=input,
        env=dict(env) if env is not None else None,
        capture_output=True,
        timeout=timeout,
        preexec_fn=_enter(netns) if netns else None,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}\nstdout: {done.stdout.decode(errors='replace')}"
            f"\nstderr: {done.stderr.decode(errors='replace')}"
        )
    return done


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    return run(["ip", *args], netns=netns, check=check).stdout.decode()
