"""What a killed test run leaves behind, and the sweep that removes it.

A SIGKILLed pytest never runs SimNode.close(): its namespaces (with their veths),
its OVS daemons, an executor and any process left in the node's namespace (an
IPAM plugin's `sleep`) stay. Each SimNode writes its owner's pid and start time
into its work directory; the sweep removes only what belongs to a node whose
owner is dead, so the live nodes of test runs going on beside it are safe.
Everything is found by the rig's own names: the work directory
`<tmp>/hwol-<tag>-*`, the namespaces `hwol-node-<tag>` and `hwol-<tag>-<pod>`,
and processes in those namespaces or naming that work directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from tests.simnode.nsexec import ip

OWNER_FILE = "owner"
NETNS_DIR = Path("/var/run/netns")


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (state, ppid, ...); [] when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _process_identity(pid: int) -> str | None:
    """pid and start time (clock ticks since boot): a reused pid is another process."""
    fields = _stat(pid)
    return f"{pid} {fields[19]}" if fields else None


def claim(workdir: Path) -> None:
    """Mark a node's work directory as this process's."""
    identity = _process_identity(os.getpid())
    (workdir / OWNER_FILE).write_text(f"{identity}\n")


def _owner_alive(workdir: Path) -> bool:
    try:
        identity = (workdir / OWNER_FILE).read_text().strip()
    except OSError:
        return True  # not claimed (yet, or by an older rig): never ours to sweep
    return _process_identity(int(identity.split()[0])) == identity


def _namespaces_of(tag: str) -> list[str]:
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return [n for n in names if n == f"hwol-node-{tag}" or n.startswith(f"hwol-{tag}-")]


def netns_inode(pid: int) -> int | None:
    """The network namespace a process is in (the inode `ip netns` mounts show too)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _processes_of(workdir: Path, namespaces: list[str]) -> list[int]:
    """Processes inside the node's namespaces, or whose command line or environment names its work directory."""
    inodes = set()
    for name in namespaces:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(NETNS_DIR / name).st_ino)
    needle = str(workdir).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        if netns_inode(int(entry)) in inodes:
            found.append(int(entry))
            continue
        try:
            for part in ("cmdline", "environ"):
                with open(f"/proc/{entry}/{part}", "rb") as f:
                    if needle in f.read():
                        found.append(int(entry))
                        break
        except OSError:
            pass  # gone meanwhile, or a kernel thread
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (whoever adopted an orphan may be slow to reap it)."""
    return _stat(pid)[:1] not in ([], ["Z"])


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def sweep(tmp: Path | None = None) -> list[str]:
    """Remove every node whose owner is dead; answers what was removed."""
    removed = []
    for workdir in sorted(Path(tmp or tempfile.gettempdir()).glob("hwol-*-*")):
        if not workdir.is_dir() or _owner_alive(workdir):
            continue
        tag = workdir.name.split("-")[1]
        namespaces = _namespaces_of(tag)
        pids = _processes_of(workdir, namespaces)
        _kill(pids)
        for name in namespaces:
            ip("netns", "del", name, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
        removed.append(f"{workdir} ({len(namespaces)} namespaces, {len(pids)} processes)")
    return removed
