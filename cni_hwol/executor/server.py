"""`cni-hwol executor`: import the verbs once, then run each invocation in a fork.

One single-threaded loop (fork needs that) watches three kinds of file:
the listening socket, each client connection (EOF means the runtime killed the
plugin: the fork is killed too, as the runtime's SIGKILL would have killed an
exec'd plugin), and a pidfd per fork (it exited: the client gets its status).
"""

from __future__ import annotations

import array
import contextlib
import gc
import logging
import os
import selectors
import signal
import socket
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from cni_hwol import __version__
from cni_hwol.executor.protocol import (
    EXITED,
    KILLED,
    MAX_MESSAGE,
    PASSED_FDS,
    REFUSED,
    STARTED,
    decode_request,
)
from cni_hwol.linux.netns import CLONE_NEWNS, setns
from cni_hwol.state import make_private_dirs

log = logging.getLogger("cni_hwol.executor")

_PEERCRED = struct.Struct("3i")  # pid, uid, gid


def preload() -> None:
    """Import everything a verb runs, so each fork starts warm. Imports only:
    no module does work at import time."""
    import cni_hwol.main  # noqa: F401
    import cni_hwol.verbs.add  # noqa: F401
    import cni_hwol.verbs.check  # noqa: F401
    import cni_hwol.verbs.delete  # noqa: F401
    import cni_hwol.verbs.gc  # noqa: F401
    import cni_hwol.verbs.status  # noqa: F401
    from cni_hwol.linux.links import rtnl_codecs
    from cni_hwol.logs import setup_logging  # noqa: F401

    rtnl_codecs()  # also pyroute2.netlink, where devlink's generic netlink codecs live
    # Keep the imported world out of the collector's sight: forks then share
    # its pages with the executor instead of copying them when gc walks them.
    gc.freeze()


@dataclass
class Run:
    """One invocation in progress: its client connection and its fork."""

    conn: socket.socket
    pid: int
    pidfd: int
    client_watched: bool = True


class Executor:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.selector = selectors.DefaultSelector()
        self.runs: dict[int, Run] = {}  # by pid
        self.listener: socket.socket | None = None
        self.stopping = False

    # -- the loop ------------------------------------------------------------------
    def serve(self) -> int:
        self.listener = _listen(self.socket_path)
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        log.info("cni-hwol %s executor listening on %s", __version__, self.socket_path)
        while not (self.stopping and not self.runs):
            for key, _ in self.selector.select(timeout=1.0):
                key.data(key.fileobj)
        log.info("executor stopped")
        return 0

    def _stop(self, signum: int, _frame: object) -> None:
        """Stop taking invocations; the ones running finish and are answered."""
        if self.stopping or self.listener is None:
            return
        log.info("signal %d: no new invocations, %d running", signum, len(self.runs))
        self.stopping = True
        self.selector.unregister(self.listener)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.setblocking(False)
        self.selector.register(conn, selectors.EVENT_READ, self._request)

    def _request(self, conn: socket.socket) -> None:
        """The client's one message: check it, then fork the verb."""
        self.selector.unregister(conn)
        fds: list[int] = []
        try:
            fds, reason, request = _receive(conn)
            if reason:
                log.warning("refused an invocation: %s", reason)
                _send(conn, REFUSED + reason.encode())
                return
            if not _send(conn, STARTED):
                return  # the client gave up waiting and runs the verb itself
            pid = os.fork()
            if pid == 0:
                _run_in_fork(request, fds)  # never returns
            log.debug(
                "pid %d runs %s %s", pid, _env_value(request, b"CNI_COMMAND"), _env_value(request, b"CNI_CONTAINERID")
            )
            run = Run(conn=conn, pid=pid, pidfd=os.pidfd_open(pid))
            self.runs[pid] = run
            self.selector.register(run.pidfd, selectors.EVENT_READ, lambda _fd, run=run: self._exited(run))
            self.selector.register(conn, selectors.EVENT_READ, lambda _c, run=run: self._client_gone(run))
            conn = None  # type: ignore[assignment]  # owned by the run now
        finally:
            for fd in fds:
                os.close(fd)
            if conn is not None:
                conn.close()

    def _client_gone(self, run: Run) -> None:
        """The plugin process died (runtime timeout): kill its fork, as its death would have."""
        self.selector.unregister(run.conn)
        run.client_watched = False
        log.warning("client of pid %d went away: killing it", run.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(run.pid, signal.SIGKILL)

    def _exited(self, run: Run) -> None:
        self.selector.unregister(run.pidfd)
        if run.client_watched:
            self.selector.unregister(run.conn)
        _, status = os.waitpid(run.pid, 0)
        os.close(run.pidfd)
        del self.runs[run.pid]
        if os.WIFSIGNALED(status):
            _send(run.conn, KILLED + str(os.WTERMSIG(status)).encode())
        else:
            _send(run.conn, EXITED + str(os.waitstatus_to_exitcode(status)).encode())
        run.conn.close()


# -- the socket -------------------------------------------------------------------------
def _listen(path: str) -> socket.socket:
    """Bind the socket root-only: whoever talks to it runs verbs as root."""
    make_private_dirs(Path(path).parent)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a stale socket from an executor that died
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old_umask)
    sock.listen(128)
    return sock


def _receive(conn: socket.socket) -> tuple[list[int], str, tuple]:
    """(passed fds, refusal reason or "", decoded request)."""
    fds = array.array("i")
    try:
        data, ancdata, flags, _ = conn.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(PASSED_FDS * fds.itemsize))
    except OSError as exc:
        return [], f"receiving the request: {exc}", ()
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    received = list(fds)
    _, uid, _ = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    if uid not in (0, os.geteuid()):
        return received, f"client uid {uid} may not run verbs as root", ()
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(received) != PASSED_FDS:
        return received, "request truncated or without its file descriptors", ()
    try:
        request = decode_request(data)
    except ValueError as exc:
        return received, str(exc), ()
    if request[0] != __version__:
        return received, f"client is cni-hwol {request[0]}, executor is {__version__}", ()
    return received, "", request


def _env_value(request: tuple, key: bytes) -> str:
    return request[2].get(key, b"").decode(errors="replace")


def _send(conn: socket.socket, message: bytes) -> bool:
    try:
        conn.setblocking(True)
        conn.send(message)
        return True
    except OSError:
        return False


# -- the fork ---------------------------------------------------------------------------
def _run_in_fork(request: tuple, fds: list[int]) -> None:
    """Become the process the runtime would have exec'd, run the verb, exit.

    The executor's own files (listener, other clients, pidfds) are closed by
    number; their Python objects stay reachable from the executor's frames
    below this one, which never unwind (os._exit), so none is closed twice.
    """
    status = 1
    try:
        _, argv, environ = request
        stdin, stdout, stderr, mount_ns, net_ns = fds
        for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
        setns(mount_ns, CLONE_NEWNS)  # paths (netns, CNI_PATH, state) as the client sees them
        setns(net_ns)  # "the host" is the client's network namespace
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        os.environb.clear()
        os.environb.update(environ)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the fork's own std streams
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        sys.argv = ["cni-hwol", *(os.fsdecode(a) for a in argv)]
        logging.getLogger().handlers.clear()
        from cni_hwol.main import run_in_process

        status = run_in_process(sys.argv[1:])
    except BaseException as exc:  # noqa: BLE001 - the fork must exit, never return into the loop
        with contextlib.suppress(Exception):
            print(f"cni-hwol executor: the verb failed to start: {exc!r}", file=sys.stderr)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def main(args: list[str]) -> int:
    import argparse

    from cni_hwol.executor.protocol import DEFAULT_SOCKET, SOCKET_ENV

    parser = argparse.ArgumentParser(
        prog="cni-hwol executor",
        description="Run CNI verbs for the cni-hwol executable in pre-imported forks (see docs/operators.md).",
    )
    parser.add_argument("--socket", default=os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET, help="unix socket to serve")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    opts = parser.parse_args(args)
    # Forks dup the client's streams onto 0, 1 and 2; a received fd must never land there.
    while (fd := os.open(os.devnull, os.O_RDWR)) <= 2:
        pass
    os.close(fd)
    logging.basicConfig(
        stream=sys.stderr, level=opts.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    preload()
    return Executor(opts.socket).serve()
