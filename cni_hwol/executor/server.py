"""`cni-hwol executor`: import the verbs once, then run each invocation in a fork.

One single-threaded loop (fork needs that) watches three kinds of file:
the listening socket, each client connection (its request; its GO; then EOF
means the runtime killed the plugin: the fork is killed too, as the runtime's
SIGKILL would have killed an exec'd plugin), and a pidfd per fork (it exited:
the client gets its status).

Only a caller that could do the verb's work itself is served (see
`caller_refusal`): root with every capability, handing over its own namespaces.
Anyone else is refused and its front runs the verb in its own process, with its
own privileges.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import gc
import logging
import os
import select
import selectors
import signal
import socket
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from cni_hwol import __version__
from cni_hwol.executor.protocol import (
    ACCEPTED,
    EXITED,
    GO,
    KILLED,
    MAX_MESSAGE,
    PASSED_FDS,
    PROBE,
    REFUSED,
    decode_request,
)
from cni_hwol.linux.netns import CLONE_NEWNS, setns
from cni_hwol.state import make_private_dirs

log = logging.getLogger("cni_hwol.executor")

_PEERCRED = struct.Struct("3i")  # pid, uid, gid
_PR_SET_PDEATHSIG = 1


def preload() -> None:
    """Import everything a verb runs, so each fork starts warm. Imports only:
    no module does work at import time. Every module, lazy imports too: a fork
    enters its caller's mount namespace, where this executor's own files (the
    image's, in the DaemonSet) are not there to import from."""
    import cni_hwol.cni.env  # noqa: F401
    import cni_hwol.cni.netconf  # noqa: F401
    import cni_hwol.cni.policy  # noqa: F401
    import cni_hwol.cni.versions  # noqa: F401
    import cni_hwol.hw.devlink  # noqa: F401
    import cni_hwol.linux.nlsock  # noqa: F401
    import cni_hwol.main  # noqa: F401
    import cni_hwol.nodeconf  # noqa: F401
    import cni_hwol.state  # noqa: F401
    import cni_hwol.verbs.add  # noqa: F401
    import cni_hwol.verbs.check  # noqa: F401
    import cni_hwol.verbs.common  # noqa: F401
    import cni_hwol.verbs.delete  # noqa: F401
    import cni_hwol.verbs.gc  # noqa: F401
    import cni_hwol.verbs.status  # noqa: F401
    from cni_hwol.linux.links import rtnl_codecs
    from cni_hwol.linux.tc_rules import tc_codec
    from cni_hwol.logs import setup_logging  # noqa: F401

    rtnl_codecs()  # also pyroute2.netlink, where devlink's generic netlink codecs live
    tc_codec()  # CHECK reads the representor's tc rules
    from pyroute2.netlink import ctrlmsg, genlmsg  # noqa: F401

    # Keep the imported world out of the collector's sight: forks then share
    # its pages with the executor instead of copying them when gc walks them.
    gc.freeze()


@dataclass
class Offer:
    """An accepted invocation waiting for its client's GO."""

    conn: socket.socket
    request: tuple
    fds: list[int]


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
        self.offers: dict[socket.socket, Offer] = {}
        self.listener: socket.socket | None = None
        self.listener_inode: tuple[int, int] | None = None  # the socket file we bound
        self.stopping = False

    # -- the loop ------------------------------------------------------------------
    def serve(self) -> int:
        self.listener = _listen(self.socket_path)
        bound = os.stat(self.socket_path)
        self.listener_inode = (bound.st_dev, bound.st_ino)
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        log.info("cni-hwol %s executor listening on %s", __version__, self.socket_path)
        while not (self.stopping and not self.runs and not self.offers):
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
        self._unlink_own_socket()

    def _unlink_own_socket(self) -> None:
        """Remove our socket file, never the one a newer executor bound at the
        same path while we were running (a rolling upgrade starts it first)."""
        try:
            found = os.stat(self.socket_path)
        except FileNotFoundError:
            return
        if (found.st_dev, found.st_ino) != self.listener_inode:
            log.info("%s belongs to another executor now: left in place", self.socket_path)
            return
        os.unlink(self.socket_path)

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.setblocking(False)
        self.selector.register(conn, selectors.EVENT_READ, self._request)

    def _request(self, conn: socket.socket) -> None:
        """The client's request: check it and its caller, then offer to run it."""
        self.selector.unregister(conn)
        fds, reason, request = _receive(conn)
        if reason == PROBE.decode():
            log.debug("answered the liveness probe")
            _send(conn, REFUSED + PROBE)
            _close_all(conn, fds)
            return
        if not reason:
            reason = caller_refusal(conn, mount_ns=fds[3], net_ns=fds[4])
        if reason:
            log.warning("refused an invocation: %s", reason)
            _send(conn, REFUSED + reason.encode())
        elif _send(conn, ACCEPTED):
            conn.setblocking(False)
            offer = Offer(conn, request, fds)
            self.offers[conn] = offer
            self.selector.register(conn, selectors.EVENT_READ, lambda _c, offer=offer: self._go(offer))
            return
        _close_all(conn, fds)

    def _go(self, offer: Offer) -> None:
        """The client's GO: fork the verb. Anything else (EOF) means the client
        gave up waiting for ACCEPTED and runs the verb itself: nothing to do."""
        self.selector.unregister(offer.conn)
        del self.offers[offer.conn]
        try:
            go = offer.conn.recv(len(GO) + 1) == GO
        except OSError:
            go = False
        if not go:
            log.info("a client gave up waiting and runs its verb itself")
            _close_all(offer.conn, offer.fds)
            return
        request, conn = offer.request, offer.conn
        executor_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            _run_in_fork(request, offer.fds, executor_pid)  # never returns
        _close_all(None, offer.fds)
        log.debug(
            "pid %d runs %s %s", pid, _env_value(request, b"CNI_COMMAND"), _env_value(request, b"CNI_CONTAINERID")
        )
        run = Run(conn=conn, pid=pid, pidfd=os.pidfd_open(pid))
        self.runs[pid] = run
        self.selector.register(run.pidfd, selectors.EVENT_READ, lambda _fd, run=run: self._exited(run))
        self.selector.register(conn, selectors.EVENT_READ, lambda _c, run=run: self._client_gone(run))

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
    if data == PROBE and not received:
        return received, PROBE.decode(), ()
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(received) != PASSED_FDS:
        return received, "request truncated or without its file descriptors", ()
    try:
        request = decode_request(data)
    except ValueError as exc:
        return received, str(exc), ()
    if request[0] != __version__:
        return received, f"client is cni-hwol {request[0]}, executor is {__version__}", ()
    return received, "", request


def caller_refusal(conn: socket.socket, mount_ns: int, net_ns: int) -> str:
    """Why the process at the other end may not have a verb run as root, or "".

    The fork runs with the executor's privileges, so the caller must already
    hold them all: uid 0 with every effective capability the executor has (on
    a node, the full set), counted in the executor's own (the initial) user
    namespace; and the namespaces it hands over must be its own, so it cannot
    aim the fork at ones it could not enter. Its mount namespace may differ from
    the host's (Multus thick, podman).

    The pid comes from SO_PEERCRED (kernel 6.1 has no SO_PEERPIDFD); a pidfd
    pins it while /proc is read, and one that became readable means the caller
    exited meanwhile, so its pid may name another process: refused. The gap
    left is a pid reused before pidfd_open, by a process that would then have
    to pass every check itself, in the namespaces the caller handed over.
    """
    pid, uid, _ = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    if uid != 0:
        return f"client uid {uid} is not root"
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        return f"client pid {pid}: {exc.strerror}"
    try:
        missing = _effective_capabilities("self") & ~_effective_capabilities(str(pid))
        if missing:
            return f"client pid {pid} lacks capabilities the executor has (mask {missing:x})"
        if not _same_file(f"/proc/{pid}/ns/user", os.stat("/proc/self/ns/user")):
            return f"client pid {pid} is in another user namespace"
        for kind, fd in (("mnt", mount_ns), ("net", net_ns)):
            if not _same_file(f"/proc/{pid}/ns/{kind}", os.fstat(fd)):
                return f"client pid {pid} handed over a {kind} namespace not its own"
        if select.select([pidfd], [], [], 0)[0]:
            return f"client pid {pid} exited while being checked"
    except OSError as exc:
        return f"client pid {pid}: {exc.strerror}"
    finally:
        os.close(pidfd)
    return ""


def _effective_capabilities(pid: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def _same_file(path: str, other: os.stat_result) -> bool:
    mine = os.stat(path)
    return (mine.st_dev, mine.st_ino) == (other.st_dev, other.st_ino)


def _close_all(conn: socket.socket | None, fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
    if conn is not None:
        conn.close()


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
def _run_in_fork(request: tuple, fds: list[int], executor_pid: int) -> None:
    """Become the process the runtime would have exec'd, run the verb, exit.

    The executor's own files (listener, other clients, pidfds) are closed by
    number; their Python objects stay reachable from the executor's frames
    below this one, which never unwind (os._exit), so none is closed twice.
    """
    status = 1
    try:
        # Die with the executor, as a plugin dies with its runtime's SIGKILL: its
        # client has answered "try again" (code 11), and the retry must not race
        # a verb still running here.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != executor_pid:
            os._exit(status)  # the executor died before prctl took effect
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


def probe(socket_path: str, timeout: float = 5.0) -> int:
    """The liveness probe: 0 when the executor at socket_path answers within timeout, else 1."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC) as conn:
            conn.settimeout(timeout)
            conn.connect(socket_path)
            conn.send(PROBE)
            answer = conn.recv(64)
    except OSError as exc:
        print(f"no executor answers at {socket_path}: {exc}", file=sys.stderr)
        return 1
    if answer != REFUSED + PROBE:
        print(f"the executor at {socket_path} answered {answer!r} to the probe", file=sys.stderr)
        return 1
    return 0


def main(args: list[str]) -> int:
    import argparse

    from cni_hwol.executor.protocol import DEFAULT_SOCKET, SOCKET_ENV

    parser = argparse.ArgumentParser(
        prog="cni-hwol executor",
        description="Run CNI verbs for the cni-hwol executable in pre-imported forks (see docs/operators.md).",
    )
    parser.add_argument("--socket", default=os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET, help="unix socket to serve")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--probe", action="store_true", help="exit 0 when the executor at --socket answers (liveness)")
    opts = parser.parse_args(args)
    if opts.probe:
        return probe(opts.socket)
    # Forks dup the client's streams onto 0, 1 and 2; a received fd must never land there.
    while (fd := os.open(os.devnull, os.O_RDWR)) <= 2:
        pass
    os.close(fd)
    logging.basicConfig(
        stream=sys.stderr, level=opts.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    preload()
    return Executor(opts.socket).serve()
