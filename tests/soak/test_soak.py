"""The chaos soak, short: a fixed seed, 150 steps (about a minute on 2 cores), no invariant broken.

The long one: `python3 -m tests.soak.run --steps 5000 --seed S` (tests/README.md, "Chaos soak").
"""

from __future__ import annotations

import json

from tests.conftest import _require_e2e

SEED = 11
STEPS = 150
# What the short run claims to cover: it fails unless each occurred (a seed that skips one proves nothing of it).
OPERATIONS = (
    "ADD:0",
    "CHECK:ok",
    "DEL",
    "GC",
    "duplicate ADD:0",
    "DEL racing ADD",
    "DEL while OVSDB is down",
    "ADD while OVSDB is down:11",
    "ADD without bridges",
    "ADD with keys through the PF:103",
    "ADD with devlink rates:103",
    "ADD waiting for a controller that never comes:11",
)
FAULTS = ("killed at", "killed during ADD", "killed during DEL", "executor", "same database", "fresh database")
FAULTS += ("vswitchd", "netns destroyed", "representor set down")
CONFIGURATIONS = ("vlan", "trunk", "ofport_request", "mtu", "bridge auto", "runtimeConfig.mac", "link_state_check_*")
CONFIGURATIONS += ("waitForExternalIDs", "args.cni.ovnPort", "args.cni.externalIDs", "args.cni.mac")
CONFIGURATIONS += ("userspace VF",)


def occurred(kind: str, counted: dict[str, int]) -> bool:
    """An operation or configuration by its name, or its name and answer ("DEL racing ADD:add 0 del 0")."""
    return any(name == kind or name.startswith(f"{kind}:") for name in counted)


def fault_occurred(kind: str, counted: dict[str, int]) -> bool:
    """A fault by a phrase of its name ("killed at" in "plugin killed at vf-claimed")."""
    return any(kind in name for name in counted)


def test_a_short_soak_breaks_no_invariant(tmp_path):
    _require_e2e()
    from tests.soak.run import soak

    results = tmp_path / "soak.json"
    report = soak(STEPS, SEED, results)
    assert json.loads(results.read_text())["violations"] == report["violations"]
    assert report["violations"] == [], "\n".join(f"step {v['step']}: {v['what']}" for v in report["violations"])
    # The run did what it claims to: pod events, faults and configurations of every kind.
    assert sum(report["operations"].values()) > STEPS / 2
    missing = [kind for kind in OPERATIONS if not occurred(kind, report["operations"])]
    missing += [kind for kind in FAULTS if not fault_occurred(kind, report["faults"])]
    missing += [kind for kind in CONFIGURATIONS if not occurred(kind, report["configurations"])]
    assert not missing, (missing, report["operations"], report["faults"], report["configurations"])
    assert report["implicit MAC warnings"] >= report["operations"]["ADD:0"]
