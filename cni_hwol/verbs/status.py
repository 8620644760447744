"""STATUS (CNI 1.1): is this node ready to ADD pods on this network?

Ready means OVSDB answers, the bridge exists and the IPAM plugin is on CNI_PATH
and, when it speaks CNI 1.1, answers its own STATUS (the spec asks a plugin to
run STATUS on the plugins it delegates to and pass on their errors).
"""

from __future__ import annotations

import logging

from cni_hwol.cni.errors import LIMITED_CONNECTIVITY, NOT_AVAILABLE, CNIError
from cni_hwol.cni.netconf import AUTO_BRIDGE
from cni_hwol.ipam import find_plugin, speaks
from cni_hwol.ipam import invoke as invoke_ipam
from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, OvsdbUnavailable
from cni_hwol.verbs.common import Invocation

log = logging.getLogger(__name__)


def cmd_status(inv: Invocation) -> None:
    conf = inv.conf
    try:
        with OvsdbClient(conf.ovsdb_socket, timeout=5.0) as ovsdb:
            rows = ovsdb.transact(
                {"op": "select", "table": "Bridge", "where": [["name", "==", conf.bridge]], "columns": ["name"]}
            )[0]["rows"]
    except (OvsdbUnavailable, OvsdbError) as exc:
        raise CNIError(
            NOT_AVAILABLE, f"Open vSwitch database at {conf.ovsdb_socket} is unreachable", str(exc)
        ) from None
    if not rows and conf.bridge != AUTO_BRIDGE:  # with "auto", an answer from OVSDB is enough
        raise CNIError(NOT_AVAILABLE, f"OVS bridge {conf.bridge} does not exist")
    if conf.ipam:
        _ipam_status(inv, conf.ipam["type"])


def _ipam_status(inv: Invocation, ipam_type: str) -> None:
    try:
        find_plugin(ipam_type, inv.env.path)
    except CNIError as exc:
        raise CNIError(NOT_AVAILABLE, exc.msg) from None
    if not speaks(ipam_type, "1.1.0", inv.env.path, inv.environ):
        log.info("IPAM plugin %s predates CNI 1.1: it has no STATUS to ask", ipam_type)
        return
    try:
        invoke_ipam(ipam_type, "STATUS", inv.conf.raw, inv.env.path, inv.environ)
    except CNIError as exc:
        # Its 50 or 51 is ours; any other failure means it cannot serve ADD either.
        code = exc.code if exc.code in (NOT_AVAILABLE, LIMITED_CONNECTIVITY) else NOT_AVAILABLE
        raise CNIError(code, exc.msg, exc.details) from None
