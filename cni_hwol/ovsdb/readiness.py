"""Bounded waits for what others write on an Interface row: ovs-vswitchd its ofport and
link_state, a controller (ovn-controller) keys such as external_ids:ovn-installed.

OVSDB's "wait" compares whole column values, so "ofport > 0" or "these keys among
others" cannot be waited for directly. Each round reads the columns, tests them
here, and if they are not ready blocks in the server until they differ from what
was read (the way ports.wait_for_vswitchd follows cur_cfg): no polling delay, and
the deadline bounds the whole wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, from_ovs_map

MAX_ROUND_MS = 5000  # one wait request stays well inside the client's socket timeout


class NotReady(Exception):
    """The Interface did not get there before the deadline (or is gone)."""


@dataclass(frozen=True)
class Condition:
    columns: tuple[str, ...]
    ready: Callable[[dict[str, Any]], bool]
    description: str


def _has_ofport(row: dict[str, Any]) -> bool:
    # An optional integer: an int once vswitchd has the port (-1 when it failed), ["set", []] before.
    return isinstance(row["ofport"], int) and row["ofport"] > 0


IN_VSWITCHD = Condition(("ofport",), _has_ofport, "an OpenFlow port number from ovs-vswitchd (ofport)")
LINK_UP = Condition(("link_state",), lambda row: row["link_state"] == "up", 'link_state "up"')


def external_ids_set(wanted: dict[str, str]) -> Condition:
    """A controller has written these keys (others may be there too)."""
    return Condition(
        ("external_ids",),
        lambda row: wanted.items() <= from_ovs_map(row["external_ids"]).items(),
        f"external_ids {', '.join(f'{k}={v}' for k, v in wanted.items())}",
    )


def wait_for_interface(client: OvsdbClient, name: str, condition: Condition, timeout_ms: int) -> None:
    """Return once Interface `name` is ready; NotReady when the time runs out or the row is gone."""
    deadline = time.monotonic() + timeout_ms / 1000
    where = [["name", "==", name]]
    select = {"op": "select", "table": "Interface", "where": where, "columns": list(condition.columns)}
    rows = client.transact(select)[0]["rows"]
    while rows and not condition.ready(rows[0]):
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            break
        seen = {column: rows[0][column] for column in condition.columns}
        changed = {
            "op": "wait",
            "table": "Interface",
            "where": where,
            "timeout": min(remaining_ms, MAX_ROUND_MS),
            "columns": list(condition.columns),
            "until": "!=",
            "rows": [seen],
        }
        try:
            rows = client.transact(changed, select)[1]["rows"]
        except OvsdbError as exc:
            if exc.error != "timed out":
                raise
    if not rows:
        raise NotReady(f"OVS Interface {name} is gone while waiting for {condition.description}")
    if not condition.ready(rows[0]):
        raise NotReady(f"OVS Interface {name} has no {condition.description} after {timeout_ms} ms")
