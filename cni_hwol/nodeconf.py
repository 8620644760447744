"""The node file: read on every verb, written by the DaemonSet's installer.

Its place is fixed here, not in the netconf, so a tenant's netconf cannot point
the plugin at a file of its own. CNI_HWOL_NODE_CONFIG (the runtime's environment,
which a netconf or cni-args cannot set) moves it for the tests' simulated nodes.
What the file means: cni_hwol/cni/policy.py.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from cni_hwol.cni.errors import INVALID_NETCONF, CNIError
from cni_hwol.cni.policy import NodePolicy, parse_node_config

NODE_CONFIG_PATH = "/etc/cni/cni-hwol/node.json"
NODE_CONFIG_ENV = "CNI_HWOL_NODE_CONFIG"
MAX_NODE_CONFIG_BYTES = 1 << 16


def node_config_path(environ: Mapping[str, str]) -> str:
    return environ.get(NODE_CONFIG_ENV) or NODE_CONFIG_PATH


def read_node_policy(environ: Mapping[str, str]) -> NodePolicy | None:
    """This node's policy; None when there is no node file (every key as the netconf says)."""
    path = node_config_path(environ)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CNIError(INVALID_NETCONF, f"node file {path} cannot be read", str(exc)) from None
    try:
        info = os.fstat(fd)
        # Only root may write what decides what root does for tenants.
        if not stat.S_ISREG(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
            raise CNIError(
                INVALID_NETCONF, f"node file {path} must be a regular file owned by root, writable by root only"
            )
        data = os.read(fd, MAX_NODE_CONFIG_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_NODE_CONFIG_BYTES:
        raise CNIError(INVALID_NETCONF, f"node file {path} is larger than {MAX_NODE_CONFIG_BYTES} bytes")
    return parse_node_config(data, path)


def install_node_config(source: Path, dest: Path) -> str:
    """Validate the operator's node file and put it in place atomically, 0644 (the installer's job)."""
    data = source.read_bytes()
    parse_node_config(data, str(source))  # a broken file fails the install, not every pod
    dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # whatever the umask
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return f"installed the node file {dest}"
