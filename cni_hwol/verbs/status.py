"""STATUS (CNI 1.1): is this node ready to ADD pods on this network?"""

from __future__ import annotations

from cni_hwol.cni.errors import NOT_AVAILABLE, CNIError
from cni_hwol.cni.netconf import AUTO_BRIDGE
from cni_hwol.ipam import find_plugin
from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, OvsdbUnavailable
from cni_hwol.verbs.common import Invocation


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
        try:
            find_plugin(conf.ipam["type"], inv.env.path)
        except CNIError as exc:
            raise CNIError(NOT_AVAILABLE, exc.msg) from None
