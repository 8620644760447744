"""Logging: to the netconf's logFile (0600, in a 0700 directory), else to stderr.

stdout belongs to the CNI result alone, so no handler ever writes there.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(context)s%(message)s"


class _Context(logging.Filter):
    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = self.context
        return True


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
            from cni_hwol.state import make_private_dirs

            make_private_dirs(Path(log_file).parent)
            fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            handler = logging.StreamHandler(os.fdopen(fd, "a"))
        except OSError as exc:
            print(f"cni-hwol: cannot open log file {log_file}: {exc}", file=sys.stderr)
            handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.StreamHandler(sys.stderr)
        level = "warning" if level == "info" else level  # stderr stays quiet unless asked
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(_Context(f"{context} " if context else ""))
    root.addHandler(handler)
    root.setLevel(level.upper())
