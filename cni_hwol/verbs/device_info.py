"""The device-info file (NPWG Device Information spec): planned before ADD changes anything,
written, and put back as it was by DEL or a failed ADD.

What "keeping what the device plugin wrote" means here: the file Multus passes
(runtimeConfig.CNIDeviceInfoFile) holds a copy of the device plugin's file when
the network has a resourceName; where it does not exist yet, the device plugin's
own file for this VF (devinfo/dp/*-<deviceID>-device.json, when exactly one) is
the base. Every key of the base stays; `pci.representor-device` is added (and
`pci-address`, `pf-pci-address` where the base has none). A base describing
another device or type, or not JSON, is left alone with a warning. A missing
directory is a warning: ADD never fails for the file's absence. A symlink on the
way is code 7 naming the key. DEL puts back the file as it was before ADD
(removes it when ADD created it); Multus deletes it after the chain's DEL.
CHECK does not read it: it is Multus's record for the pod's network-status, not
network state.
"""

from __future__ import annotations

import json
import logging
import posixpath

from cni_hwol.cni.device_info import KEY, device_info_target, device_plugin_file_suffix, with_representor
from cni_hwol.cni.errors import INVALID_NETCONF, IO_FAILURE, CNIError
from cni_hwol.cni.netconf import NetConf
from cni_hwol.linux.device_info_file import (
    DirectoryMissing,
    UnsafePath,
    list_below,
    read_below,
    remove_below,
    write_below,
)
from cni_hwol.state import AttachmentState

log = logging.getLogger(__name__)


def _device_plugin_info(root: str, device_id: str) -> str | None:
    """The device plugin's file for this VF, when there is exactly one."""
    try:
        names = [n for n in list_below(root, ("dp",)) if n.endswith(device_plugin_file_suffix(device_id))]
        return read_below(root, ("dp", names[0])) if len(names) == 1 else None
    except (DirectoryMissing, UnsafePath, OSError) as exc:
        log.debug("no device plugin file for %s: %s", device_id, exc)
        return None


def plan_device_info(conf: NetConf, device_id: str, pf_device_id: str, representor: str) -> dict:
    """The AttachmentState fields of the device-info file: where, what it held, what ADD writes.
    Empty when there is nothing to write (no file asked for, its directory missing, a base left alone)."""
    target = device_info_target(conf)
    if target is None:
        return {}
    try:
        before = read_below(target.root, target.parts)
    except UnsafePath as exc:
        raise CNIError(INVALID_NETCONF, f"{KEY} {target.path!r} is refused: {exc} (links are not followed)") from None
    except DirectoryMissing as exc:
        log.warning("%s %s: directory %s does not exist; no device information written", KEY, target.path, exc)
        return {}
    except OSError as exc:
        raise CNIError(IO_FAILURE, f"cannot read {KEY} {target.path}", exc.strerror or str(exc)) from None
    base = before if before is not None else _device_plugin_info(target.root, device_id)
    try:
        existing = json.loads(base) if base is not None else None
        if existing is not None and not isinstance(existing, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        log.warning("%s %s holds no device information (%s): left as it is", KEY, target.path, exc)
        return {}
    info = with_representor(existing, device_id, pf_device_id, representor)
    if info is None:
        log.warning("%s %s describes another device: left as it is", KEY, target.path)
        return {}
    return {
        "device_info_root": target.root,
        "device_info_file": target.path,
        "device_info_before": before,
        "device_info": info,
    }


def _parts(state: AttachmentState) -> tuple[str, ...]:
    return tuple(posixpath.relpath(state.device_info_file, state.device_info_root).split("/"))


def write_device_info(state: AttachmentState) -> None:
    if not state.device_info_file:
        return
    try:
        write_below(state.device_info_root, _parts(state), json.dumps(state.device_info, indent=1) + "\n")
    except UnsafePath as exc:
        raise CNIError(INVALID_NETCONF, f"{KEY} {state.device_info_file!r} is refused: {exc}") from None
    except DirectoryMissing as exc:
        log.warning("%s: directory %s vanished; no device information written", KEY, exc)
    except OSError as exc:
        raise CNIError(IO_FAILURE, f"cannot write {KEY} {state.device_info_file}", exc.strerror or str(exc)) from None


def restore_device_info(state: AttachmentState) -> None:
    """The file as before ADD: removed when ADD created it. Never through a link; never fails DEL."""
    if not state.device_info_file:
        return
    try:
        if state.device_info_before is None:
            remove_below(state.device_info_root, _parts(state))
        else:
            write_below(state.device_info_root, _parts(state), state.device_info_before)
    except DirectoryMissing:
        pass  # gone with its directory: nothing to put back
    except (UnsafePath, OSError) as exc:
        log.warning("device-info file %s left as it is: %s", state.device_info_file, exc)
