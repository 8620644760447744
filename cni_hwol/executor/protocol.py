"""What the client and the executor say to each other, over SOCK_SEQPACKET.

The client is shim.c (the exec'd front), which spells the same constants and
encoding in C: change both together.

client -> executor: one message, the request (below), with SCM_RIGHTS carrying
    stdin, stdout, stderr, the mount namespace and the network namespace.
executor -> client: ACCEPTED when it will run the verb, or REFUSED (+ reason)
    when it will not.
client -> executor: GO, sent only when ACCEPTED came within the client's wait.
    The executor forks on GO alone, so a client that gave up waiting (and runs
    the verb itself) just hangs up, and an ACCEPTED arriving late starts nothing.
executor -> client: EXITED (+ status) or KILLED (+ signal) when the fork is gone.

The liveness probe (`cni-hwol executor --probe`) sends PROBE alone; the executor's
loop answers REFUSED + PROBE, which shows it still takes requests.
"""

DEFAULT_SOCKET = "/run/cni-hwol/executor.sock"
SOCKET_ENV = "CNI_HWOL_EXECUTOR_SOCKET"  # "" or "none" runs every verb in process

MAGIC = b"cni-hwol-executor/2"
MAX_MESSAGE = 1 << 20  # environment and arguments of one invocation
PASSED_FDS = 5  # stdin, stdout, stderr, mount namespace, network namespace

ACCEPTED = b"A"
REFUSED = b"R"
GO = b"G"
EXITED = b"E"
KILLED = b"K"
PROBE = b"probe"


def encode_request(version: str, argv: list[bytes], environ: dict[bytes, bytes]) -> bytes:
    """NUL-separated fields: neither argv items nor environment entries can hold a NUL."""
    fields = [MAGIC, version.encode(), str(len(argv)).encode(), *argv]
    fields += [key + b"=" + value for key, value in environ.items()]
    return b"\0".join(fields)


def decode_request(data: bytes) -> tuple[str, list[bytes], dict[bytes, bytes]]:
    """(client version, argv, environment); ValueError when it is not a request."""
    fields = data.split(b"\0")
    if len(fields) < 3 or fields[0] != MAGIC or not fields[2].isdigit():
        raise ValueError("not a cni-hwol executor request")
    argc = int(fields[2])
    if len(fields) < 3 + argc:
        raise ValueError("truncated request")
    argv = fields[3 : 3 + argc]
    environ = {}
    for entry in fields[3 + argc :]:
        key, sep, value = entry.partition(b"=")
        if not sep or not key:
            raise ValueError("malformed environment entry")
        environ[key] = value
    return fields[1].decode(errors="replace"), argv, environ
