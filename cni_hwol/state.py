"""What the plugin remembers between ADD and DEL, and the locks that serialise it.

Layout under stateDir (0700 directories, 0600 files):
  attachments/<network>/<containerID>--<ifname>.json   one per attachment
  devices/<pci>.json      which attachment holds a VF, so two pods never share one
  locks/vf-<pci>.lock     per-VF lock
  locks/attachment-<N>.lock   per-attachment lock, hashed into a bounded set of files
Writes are atomic (temp file, fsync, rename): a crash leaves the old or the new file.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cni_hwol.cni.errors import IO_FAILURE, TRY_AGAIN_LATER, CNIError

LOCK_TIMEOUT_SECONDS = 60.0
ATTACHMENT_LOCK_BUCKETS = 1024  # bounds the number of lock files, whatever the pod churn
STATE_FORMAT = 1


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
    result: dict[str, Any] | None = None
    format: int = STATE_FORMAT

    @property
    def key(self) -> AttachmentKey:
        return AttachmentKey(self.network, self.container_id, self.ifname)


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

    def _attachment_path(self, key: AttachmentKey) -> Path:
        # network, container id and ifname are validated to hold no '/' and
        # no '..' component; the check below keeps that promise local.
        path = self.root / "attachments" / key.network / f"{key.container_id}--{key.ifname}.json"
        if path.parent.parent != self.root / "attachments":
            raise CNIError(IO_FAILURE, f"attachment {key.describe()} escapes the state directory")
        return path

    # -- attachments ---------------------------------------------------------
    def load(self, key: AttachmentKey) -> AttachmentState | None:
        path = self._attachment_path(key)
        try:
            body = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CNIError(IO_FAILURE, f"cannot read state file {path}", str(exc)) from None
        known = AttachmentState.__dataclass_fields__
        return AttachmentState(**{k: v for k, v in body.items() if k in known})

    def save(self, state: AttachmentState) -> None:
        path = self._attachment_path(state.key)
        self._dir("attachments", state.network)
        try:
            _write_atomic(path, asdict(state))
        except OSError as exc:
            raise CNIError(IO_FAILURE, f"cannot write state file {path}", exc.strerror or str(exc)) from None

    def remove(self, key: AttachmentKey) -> None:
        self._attachment_path(key).unlink(missing_ok=True)

    def all_attachments(self) -> list[AttachmentState]:
        found = []
        for path in sorted((self.root / "attachments").glob("*/*.json")):
            try:
                body = json.loads(path.read_text())
                known = AttachmentState.__dataclass_fields__
                found.append(AttachmentState(**{k: v for k, v in body.items() if k in known}))
            except (OSError, ValueError, TypeError):
                continue
        return found

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
