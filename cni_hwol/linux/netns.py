"""Network namespaces: open and check a path, and make sockets inside one.

A socket belongs to the namespace it was created in, so we enter the target
namespace just long enough to create a socket and return at once; the plugin
is single-threaded, so nothing else runs in the wrong namespace meanwhile.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsGone(Exception):
    """The namespace path does not exist (any more)."""


class NotANetns(Exception):
    """The path exists but is not a network namespace."""


def open_netns(path: str) -> int:
    """An O_RDONLY fd on a network namespace; the caller closes it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsGone(path) from None
    except OSError as exc:
        raise NotANetns(f"{path}: {exc.strerror}") from None
    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        os.close(fd)
        raise NotANetns(f"{path} is not a namespace file") from None
    if kind != CLONE_NEWNET:
        os.close(fd)
        raise NotANetns(f"{path} is a namespace, but not a network namespace")
    return fd


def setns(fd: int, kind: int = CLONE_NEWNET) -> None:
    if _libc.setns(fd, kind) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def entered(netns_fd: int) -> Iterator[None]:
    """Run the body in another network namespace, then come back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(netns_fd)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(home)


def socket_in(netns_fd: int | None, family: int, kind: int, proto: int = 0) -> socket.socket:
    if netns_fd is None:
        return socket.socket(family, kind, proto)
    with entered(netns_fd):
        return socket.socket(family, kind, proto)
