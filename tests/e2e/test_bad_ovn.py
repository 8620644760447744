"""Bad OVN and Multus keys (tests/corpus/bad_ovn.json: args, args.cni.*, the readiness waits) through
the real executable on the simulated node, checked as tests/e2e/test_bad_port_options.py checks its
corpus: code 7 naming the key, exit 1, no traceback, and nothing changed on the node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_bad_port_options import options_node  # noqa: F401  (the fixture)
from tests.e2e.test_bad_port_options import test_bad_port_option as refused_leaving_the_node_unchanged

CORPUS = json.loads((Path(__file__).parent.parent / "corpus" / "bad_ovn.json").read_text())


@pytest.mark.parametrize("case", CORPUS, ids=[c["case"] for c in CORPUS])
def test_bad_ovn_key(options_node, case):  # noqa: F811
    refused_leaving_the_node_unchanged(options_node, case)
