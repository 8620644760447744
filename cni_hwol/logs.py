"""Logging: to the logFile (0600, in a 0700 directory), else to stderr.

stdout belongs to the CNI result alone, so no handler ever writes there. Log
records carry text from tenants (IPAM's errors echo the netconf), so every
record is one line: control characters are escaped. The log file is opened
without following a link at its last component and must be a regular file.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(context)s%(message)s"
# C0, DEL, C1 and the Unicode line and paragraph separators; the backslash too, so an
# escape in the log always means an escaped character, never text that looks like one.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord("\\"): "\\\\"})
_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def escape_control(text: str) -> str:
    return text.translate(_ESCAPES)


class OneLineFormatter(logging.Formatter):
    """Each record (traceback included) is exactly one line of the log."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_control(super().format(record))


class _Context(logging.Filter):
    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = self.context
        return True


def open_log_file(path: str) -> int:
    """Append to path, creating it 0600 (and its directory 0700); never through a link, only a regular file."""
    from cni_hwol.state import make_private_dirs

    make_private_dirs(Path(path).parent)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK
    fd = os.open(path, flags, 0o600)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a device or FIFO named as the log
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd


def setup_logging(log_file: str | None, level: str, context: str) -> None:
    root = logging.getLogger("cni_hwol")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.propagate = False
    # pyroute2 logs every netlink message at debug; only its warnings matter here.
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    handler: logging.Handler
    if log_file:
        try:
            handler = logging.StreamHandler(os.fdopen(open_log_file(log_file), "a"))
        except OSError as exc:
            print(f"cni-hwol: cannot open log file {escape_control(log_file)}: {exc}", file=sys.stderr)
            handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.StreamHandler(sys.stderr)
        level = "warning" if level == "info" else level  # stderr stays quiet unless asked
    handler.setFormatter(OneLineFormatter(_FORMAT))
    handler.addFilter(_Context(f"{context} " if context else ""))
    root.addHandler(handler)
    root.setLevel(level.upper())
