"""The NPWG Device Information spec (v1.1.0): where ADD may write, and what.

Multus (the "NPWG implementation") passes runtimeConfig.CNIDeviceInfoFile, a
path unique per attachment under /var/run/k8s.cni.cncf.io/devinfo/cni/, after
copying there what the device plugin wrote for the VF
(devinfo/dp/<resourceName>-<deviceID>-device.json). ADD adds the VF's
representor (`pci.representor-device`, as accelerated-bridge-cni writes it) and
keeps every key already there. The path is tenant input (any netconf may carry a
runtimeConfig): it must lie strictly below the node's `deviceInfoDir`, written
as a normalized path. Symlinks are refused where the file is opened
(cni_hwol/linux/device_info_file.py). No system calls here.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from cni_hwol.cni.errors import INVALID_NETCONF, CNIError
from cni_hwol.cni.netconf import NetConf

KEY = "runtimeConfig.CNIDeviceInfoFile"
SPEC_VERSION = "1.1.0"
MAX_PATH_BYTES = 4096


@dataclass(frozen=True)
class DeviceInfoTarget:
    root: str  # the node's device-info directory (trusted: the node's setting or its default)
    parts: tuple[str, ...]  # the tenant's path below it, component by component; the last is the file

    @property
    def path(self) -> str:
        return posixpath.join(self.root, *self.parts)


def _refuse(value: str, why: str) -> CNIError:
    return CNIError(INVALID_NETCONF, f"{KEY} {value[:120]!r} {why}")


def device_info_target(conf: NetConf) -> DeviceInfoTarget | None:
    """Where ADD writes the device-info file; None when the runtime names none. Code 7 naming the key
    for a path that is not a normalized path strictly below the node's device-info directory."""
    value = conf.runtime_config.get("CNIDeviceInfoFile")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CNIError(INVALID_NETCONF, f"{KEY} must be a string, got {type(value).__name__}")
    root = posixpath.normpath(conf.device_info_dir)
    if len(value.encode()) > MAX_PATH_BYTES or "\0" in value or not value.startswith("/"):
        raise _refuse(value, "must be an absolute path")
    if posixpath.normpath(value) != value or value.startswith("//"):
        raise _refuse(value, "must be a normalized path (no '.', '..', '//' or trailing '/')")
    relative = posixpath.relpath(value, root)
    if relative == "." or relative.startswith("../") or relative == "..":
        raise _refuse(value, f"is not below the node's device-info directory {root}/")
    return DeviceInfoTarget(root, tuple(relative.split("/")))


def device_plugin_file_suffix(device_id: str) -> str:
    """The end of the device plugin's file name for this VF: <resourceName>-<deviceID>-device.json."""
    return f"-{device_id}-device.json"


def with_representor(
    existing: dict[str, Any] | None, device_id: str, pf_device_id: str, representor: str
) -> dict[str, Any] | None:
    """The device information with the representor added, keeping every key `existing` holds;
    None when `existing` describes something else (another type or device): left alone."""
    info = dict(existing or {"type": "pci", "version": SPEC_VERSION})
    pci = info.get("pci", {})
    if info.get("type") != "pci" or not isinstance(pci, dict) or pci.get("pci-address", device_id) != device_id:
        return None
    info["pci"] = {"pci-address": device_id, "pf-pci-address": pf_device_id, **pci, "representor-device": representor}
    return info
