"""Named points in ADD where the fault tests kill the plugin (SIGKILL), as a node
crash or kubelet's timeout would, to prove DEL and GC recover from every one.

Inert unless CNI_HWOL_CRASH_AFTER names the step; costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "CNI_HWOL_CRASH_AFTER"
ADD_STEPS = (
    "vf-claimed",
    "state-written",
    "vf-moved-lease-taken",
    "vf-configured",
    "ovs-attached",
    "addresses-applied",
)


def crash_point(step: str) -> None:
    if os.environ.get(ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
