"""The plugin's side: hand this invocation to the executor, if there is one.

Runs on every exec before anything else is imported, so it uses only os, sys
and the _socket extension (the socket module would import enum and selectors).
"""

from __future__ import annotations

import _socket
import os
import sys

from cni_hwol.executor.protocol import (
    DEFAULT_SOCKET,
    EXITED,
    KILLED,
    PASSED_FDS,
    SOCKET_ENV,
    STARTED,
    encode_request,
)

# How long to wait for the executor to start the verb before running it here.
# The executor answers in about a millisecond; a longer silence means it is
# stuck, and running the verb ourselves beats failing the pod.
START_TIMEOUT_S = 2.0


def _fds_payload(fds: list[int]) -> bytes:
    return b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)


def _started(sock) -> bool:
    """Whether the executor took the invocation. On a timeout we shut the
    connection first: the executor only forks after its STARTED reply went
    through, so an answer that beat our shutdown is in the queue, and any later
    one fails to send and no fork happens. Either way exactly one process runs
    the verb."""
    sock.settimeout(START_TIMEOUT_S)
    try:
        reply = sock.recv(64)
    except TimeoutError:
        sock.shutdown(_socket.SHUT_RDWR)
        sock.setblocking(False)
        try:
            reply = sock.recv(64)
        except BlockingIOError:
            reply = b""
    return reply.startswith(STARTED)


def delegate(argv: list[str]) -> int | None:
    """The exit status of the invocation as the executor ran it; None when no
    executor took it, and the caller must run the verb in this process."""
    path = os.environ.get(SOCKET_ENV, DEFAULT_SOCKET)
    if path in ("", "none"):
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        try:
            sock.connect(path)
            namespaces = [
                os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC),
                os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC),
            ]
        except OSError:
            return None  # no executor on this node: the common, quiet case
        try:
            request = encode_request(_version(), [os.fsencode(a) for a in argv], dict(os.environb))
            fds = [0, 1, 2, *namespaces]
            assert len(fds) == PASSED_FDS
            sock.sendmsg([request], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, _fds_payload(fds))])
        except OSError:
            return None  # too large, or a std stream is closed: run it here
        finally:
            for fd in namespaces:
                os.close(fd)
        if not _started(sock):
            return None  # refused (another version, not root) or closed first
        sock.settimeout(None)
        return _outcome(sock.recv(64))
    finally:
        sock.close()


def _outcome(reply: bytes) -> int:
    """Leave as the fork left: with its exit status, or killed by its signal."""
    if reply[:1] == EXITED:
        return int(reply[1:] or b"1")
    if reply[:1] == KILLED:
        signal_number = int(reply[1:] or b"9")
        os.kill(os.getpid(), signal_number)
        return 128 + signal_number
    # The executor went away while the verb ran: its outcome is unknown.
    sys.stdout.write(
        '{"cniVersion": "1.1.0", "code": 11, "msg": "the cni-hwol executor stopped while running this verb; '
        'try again"}\n'
    )
    return 1


def _version() -> str:
    from cni_hwol import __version__

    return __version__
