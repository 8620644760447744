"""What the plugin remembers between ADD and DEL, and the locks that serialise it.

Layout under stateDir (0700 directories, 0600 files):
  attachments/<network>/<containerID>:<ifname>.json   one per attachment (':' is in
                          neither; the old "<containerID>--<ifname>.json" is still read)
  devices/<pci>.json      which attachment holds a VF, so two pods never share one
  stale-ports/<representor>.json   an OVS port DEL could not remove (OVSDB was down)
  locks/vf-<pci>.lock     per-VF lock
  locks/attachment-<N>.lock   per-attachment lock, hashed into a bounded set of files
Writes are atomic (temp file, fsync, rename): a crash leaves the old or the new file.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any

from cni_hwol.cni.errors import IO_FAILURE, TRY_AGAIN_LATER, CNIError

LOCK_TIMEOUT_SECONDS = 60.0
ATTACHMENT_LOCK_BUCKETS = 1024  # bounds the number of lock files, whatever the pod churn
STATE_FORMAT = 2  # 2: the VF's settings through its PF (pf_netdev, vf_admin_*), its rate
LEGACY_SEPARATOR = "--"  # attachment file names before this release: <cid>--<ifname>.json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttachmentKey:
    network: str
    container_id: str
    ifname: str

    def describe(self) -> str:
        return f"{self.network}/{self.container_id}/{self.ifname}"


@dataclass
class AttachmentState:
    network: str
    container_id: str
    ifname: str
    netns: str
    device_id: str
    pf_device_id: str
    vf_index: int
    vf_name: str  # the VF's host name before ADD, restored by DEL
    vf_mac: str
    vf_mtu: int
    representor: str
    representor_mtu: int
    representor_was_up: bool
    representor_ipv6_disabled: str | None  # "0"/"1" before ADD; None without IPv6
    bridge: str
    ovsdb_socket: str
    pod_mac: str = ""
    pod_mtu: int = 0
    port_uuid: str | None = None
    port_options: dict[str, Any] | None = None  # PortOptions as ADD set them; None in older state files
    ipam_stdin: str = ""  # the netconf IPAM saw on ADD, so DEL releases the same lease
    pod_args: dict[str, str] = field(default_factory=dict)
    vf_altnames: list[str] = field(default_factory=list)  # the VF's host altnames before ADD, restored by DEL
    result: dict[str, Any] | None = None
    representor_tc_offload_was_off: bool = False  # ADD turns hw-tc-offload on; DEL turns it off again
    vf_missing_since: float | None = None  # when DEL first found the VF in no namespace (time.time())
    pf_netdev: str = ""  # the VF's PF netdev, through which vf_admin_set was set ("" in format 1)
    vf_admin_before: dict[str, Any] | None = None  # VfSettings the PF reported before ADD; None: no VF ops
    vf_admin_set: dict[str, Any] = field(default_factory=dict)  # what ADD set through the PF; DEL restores it
    devlink_port: str = ""  # "bus/dev/index" of the VF's devlink port, when a rate was set on it
    port_rate_before: dict[str, int] | None = None  # tx_share, tx_max before ADD
    port_rate_set: dict[str, int] = field(default_factory=dict)  # what ADD set; DEL restores it
    userspace_driver: str = ""  # vfio-pci etc.: the VF has no netdev and never moves ("" in older files)
    device_info_file: str = ""  # runtimeConfig.CNIDeviceInfoFile ADD writes ("": none)
    device_info_root: str = ""  # the node's device-info directory it is below (links not followed under it)
    device_info_before: str | None = None  # the file's text before ADD; None: ADD created it
    device_info: dict[str, Any] | None = None  # what ADD writes there
    rdma_netns_mode: str = ""  # shared/exclusive when the VF has RDMA devices; "" when it has none
    rdma_devices: list[str] = field(default_factory=list)  # the VF's RDMA devices ADD moves into the pod
    format: int = STATE_FORMAT

    @property
    def key(self) -> AttachmentKey:
        return AttachmentKey(self.network, self.container_id, self.ifname)


@dataclass(frozen=True)
class StalePort:
    """An OVS port whose attachment DEL removed while OVSDB was unreachable."""

    representor: str  # the Port's name
    bridge: str
    ovsdb_socket: str
    network: str
    container_id: str
    ifname: str
    device_id: str


def make_private_dirs(path: Path) -> None:
    """Create path and any missing parents 0700 (mkdir's parents= would use 0777 & umask)."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
    if not path.is_dir():
        raise NotADirectoryError(20, f"{path} is not a directory")


def _write_atomic(path: Path, body: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(body, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class CorruptStateFile(Exception):
    """A state file that is not an attachment's record (truncated, edited, not an object)."""


def read_state_file(path: Path) -> AttachmentState:
    """Parse one attachment's state file; OSError, or CorruptStateFile naming what is wrong."""
    try:
        body = json.loads(path.read_text())
    except ValueError as exc:  # UnicodeDecodeError is one too
        raise CorruptStateFile(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise CorruptStateFile(f"holds {json.dumps(body)[:40]}, not a JSON object")
    fields = AttachmentState.__dataclass_fields__
    missing = [
        name for name, f in fields.items() if name not in body and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise CorruptStateFile(f"missing {', '.join(missing)}")
    return AttachmentState(**{k: v for k, v in body.items() if k in fields})


class StateStore:
    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def _dir(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        try:
            make_private_dirs(path)
        except OSError as exc:
            raise CNIError(IO_FAILURE, f"cannot create state directory {path}", exc.strerror or str(exc)) from None
        return path

    def _attachment_path(self, key: AttachmentKey, separator: str = ":") -> Path:
        # network, container id and ifname are validated to hold no '/' and
        # no '..' component; the check below keeps that promise local. Neither
        # a container id nor an ifname may hold ':', so "<cid>:<ifname>" names
        # one attachment only; "--" (LEGACY_SEPARATOR) did not: a--b/c, a/b--c.
        path = self.root / "attachments" / key.network / f"{key.container_id}{separator}{key.ifname}.json"
        if path.parent.parent != self.root / "attachments":
            raise CNIError(IO_FAILURE, f"attachment {key.describe()} escapes the state directory")
        return path

    def _legacy_path(self, key: AttachmentKey) -> Path | None:
        """The name an older release gave this attachment, when that file is this attachment's."""
        path = self._attachment_path(key, LEGACY_SEPARATOR)
        try:
            state = read_state_file(path)
        except FileNotFoundError:
            return None
        except (OSError, CorruptStateFile):
            return None  # unreadable: it may be anyone's, so it is not ours to use or remove
        return path if state.key == key else None

    # -- attachments ---------------------------------------------------------
    def load(self, key: AttachmentKey) -> AttachmentState | None:
        path = self._attachment_path(key)
        if not path.exists():
            path = self._legacy_path(key) or path
        try:
            return read_state_file(path)
        except FileNotFoundError:
            return None
        except (OSError, CorruptStateFile) as exc:
            raise CNIError(IO_FAILURE, f"cannot read state file {path}", str(exc)) from None

    def save(self, state: AttachmentState) -> None:
        path = self._attachment_path(state.key)
        self._dir("attachments", state.network)
        try:
            _write_atomic(path, asdict(state))
        except OSError as exc:
            raise CNIError(IO_FAILURE, f"cannot write state file {path}", exc.strerror or str(exc)) from None
        legacy = self._legacy_path(state.key)
        if legacy is not None:  # the new name holds it now; one file per attachment
            legacy.unlink(missing_ok=True)

    def remove(self, key: AttachmentKey) -> None:
        legacy = self._legacy_path(key)
        if legacy is not None:
            legacy.unlink(missing_ok=True)
        self._attachment_path(key).unlink(missing_ok=True)

    def all_attachments(self, unreadable: list[str] | None = None) -> list[AttachmentState]:
        """Every attachment on record, under either naming scheme (each once); files
        that cannot be read are skipped (and described in `unreadable`, when given),
        never fatal."""
        found: dict[AttachmentKey, AttachmentState] = {}
        for path in sorted((self.root / "attachments").glob("*/*.json")):
            try:
                state = read_state_file(path)
            except FileNotFoundError:
                continue  # removed by a DEL since the listing
            except (OSError, CorruptStateFile) as exc:
                log.warning("skipping state file %s: %s", path, exc)
                if unreadable is not None:
                    unreadable.append(f"{path}: {exc}")
                continue
            if state.key not in found or path == self._attachment_path(state.key):
                found[state.key] = state
        return list(found.values())

    # -- device claims -------------------------------------------------------
    def device_holder(self, device_id: str) -> AttachmentKey | None:
        try:
            body = json.loads((self.root / "devices" / f"{device_id}.json").read_text())
            return AttachmentKey(body["network"], body["container_id"], body["ifname"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged claim protects nothing; the VF's own state decides

    def claim_device(self, device_id: str, key: AttachmentKey) -> None:
        path = self._dir("devices") / f"{device_id}.json"
        try:
            _write_atomic(path, asdict(key))
        except OSError as exc:
            raise CNIError(IO_FAILURE, f"cannot write device claim {path}", exc.strerror or str(exc)) from None

    def release_device(self, device_id: str, key: AttachmentKey) -> None:
        if self.device_holder(device_id) in (key, None):
            (self.root / "devices" / f"{device_id}.json").unlink(missing_ok=True)

    def claims(self) -> dict[str, AttachmentKey]:
        """Every VF claim: PCI address -> holder."""
        try:
            names = os.listdir(self.root / "devices")
        except OSError:
            return {}
        held = {}
        for name in names:
            device_id = name.removesuffix(".json")
            holder = self.device_holder(device_id) if name.endswith(".json") else None
            if holder is not None:
                held[device_id] = holder
        return held

    # -- OVS ports DEL could not remove ----------------------------------------
    def record_stale_port(self, port: StalePort) -> None:
        path = self._dir("stale-ports") / f"{port.representor}.json"
        try:
            _write_atomic(path, asdict(port))
        except OSError as exc:
            raise CNIError(IO_FAILURE, f"cannot write {path}", exc.strerror or str(exc)) from None

    def stale_ports(self) -> list[StalePort]:
        found = []
        for path in sorted((self.root / "stale-ports").glob("*.json")):
            try:
                found.append(StalePort(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return found

    def drop_stale_port(self, port: StalePort) -> None:
        (self.root / "stale-ports" / f"{port.representor}.json").unlink(missing_ok=True)

    # -- locks ---------------------------------------------------------------
    @contextmanager
    def _lock(self, name: str, what: str) -> Iterator[None]:
        path = self._dir("locks") / name
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() > deadline:
                    raise CNIError(TRY_AGAIN_LATER, f"{what} is busy: another invocation holds {path}")
                time.sleep(0.01)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def lock_attachment(self, key: AttachmentKey):
        digest = hashlib.sha256(key.describe().encode()).digest()
        bucket = int.from_bytes(digest[:4], "big") % ATTACHMENT_LOCK_BUCKETS
        return self._lock(f"attachment-{bucket}.lock", f"attachment {key.describe()}")

    def lock_device(self, device_id: str):
        return self._lock(f"vf-{device_id}.lock", f"VF {device_id}")
