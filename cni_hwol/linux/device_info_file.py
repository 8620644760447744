"""Files below a trusted directory, reached without following a link at any component.

The directory itself is the node's (it may sit behind /var/run -> /run); every
component below it comes from a tenant, so each is opened with openat(2),
O_NOFOLLOW and O_DIRECTORY, and the file itself with O_NOFOLLOW: a symlink or a
non-directory on the way is UnsafePath, never followed. Writes are atomic: a
temp file in the same directory, then rename, so a reader (Multus) sees the old
or the new file.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

MAX_FILE_BYTES = 1 << 16  # device information is a few hundred bytes
FILE_MODE = 0o644  # as the device plugin writes it: Multus reads it into the pod's network-status
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(Exception):
    """A symlink, or something other than a directory or regular file, where the path goes."""


class DirectoryMissing(Exception):
    """A directory on the way does not exist."""


@contextmanager
def _directory(root: str, parts: Sequence[str]) -> Iterator[int]:
    """An fd on root/parts..., each component below root opened without following links."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DirectoryMissing(root) from None
    try:
        for index, part in enumerate(parts):
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                raise DirectoryMissing(os.path.join(root, *parts[: index + 1])) from None
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(f"{os.path.join(root, *parts[: index + 1])} is not a directory") from None
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _read_at(dir_fd: int, name: str, where: str) -> str | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(f"{where} is a symlink") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath(f"{where} is not a regular file")
        data = os.read(fd, MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise UnsafePath(f"{where} is larger than {MAX_FILE_BYTES} bytes")
    return data.decode(errors="replace")


def read_below(root: str, parts: Sequence[str]) -> str | None:
    """The text of root/parts... (None when the file does not exist); UnsafePath, DirectoryMissing."""
    with _directory(root, parts[:-1]) as dir_fd:
        return _read_at(dir_fd, parts[-1], os.path.join(root, *parts))


def list_below(root: str, parts: Sequence[str]) -> list[str]:
    """The names in directory root/parts...; UnsafePath, DirectoryMissing."""
    with _directory(root, parts) as dir_fd:
        return sorted(os.listdir(dir_fd))


def write_below(root: str, parts: Sequence[str], text: str) -> None:
    """Replace root/parts... with `text` atomically; a symlink in its place is UnsafePath, not replaced."""
    where = os.path.join(root, *parts)
    with _directory(root, parts[:-1]) as dir_fd:
        name = parts[-1]
        _read_at(dir_fd, name, where)  # refuses a symlink or a non-file where the file goes
        tmp = f".{name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fchmod(f.fileno(), FILE_MODE)  # whatever the umask
                os.fsync(f.fileno())
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            os.unlink(tmp, dir_fd=dir_fd)
            raise


def remove_below(root: str, parts: Sequence[str]) -> None:
    """Remove the regular file root/parts... if it is there; a symlink in its place is UnsafePath."""
    with _directory(root, parts[:-1]) as dir_fd:
        if _read_at(dir_fd, parts[-1], os.path.join(root, *parts)) is not None:
            os.unlink(parts[-1], dir_fd=dir_fd)
