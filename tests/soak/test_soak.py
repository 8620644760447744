"""The chaos soak, short: a fixed seed, 200 steps (about a minute on 2 cores), no invariant broken.

The long one: `sudo python3 -m tests.soak.run --steps 5000 --seed S` (tests/README.md, "Chaos soak").
"""

from __future__ import annotations

import json

from tests.conftest import _require_e2e

SEED = 21
STEPS = 200


def test_a_short_soak_breaks_no_invariant(tmp_path):
    _require_e2e()
    from tests.soak.run import soak

    results = tmp_path / "soak.json"
    report = soak(STEPS, SEED, results)
    assert json.loads(results.read_text())["violations"] == report["violations"]
    assert report["violations"] == [], "\n".join(f"step {v['step']}: {v['what']}" for v in report["violations"])
    # The run did what it claims to: pod events and faults of every kind.
    assert sum(report["operations"].values()) > STEPS / 2
    kinds = " ".join(report["faults"])
    for fault in ("killed at", "killed during", "executor", "same database", "fresh database", "vswitchd", "netns"):
        assert fault in kinds, (fault, report["faults"])
