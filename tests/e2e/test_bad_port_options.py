"""Bad port options (tests/corpus/bad_port_options.json: vlan, trunk, ofport_request, bridges)
through the real executable on the simulated node: code 7, a message naming the key, exit 1,
no traceback, and nothing changed on the node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CORPUS = json.loads((Path(__file__).parent.parent / "corpus" / "bad_port_options.json").read_text())


@pytest.fixture(scope="module")
def options_node(shared_node):
    shared_node.pod = shared_node.create_pod("options")
    shared_node.baseline = shared_node.snapshot()
    return shared_node


@pytest.mark.parametrize("case", CORPUS, ids=[c["case"] for c in CORPUS])
def test_bad_port_option(options_node, case):
    node = options_node
    conf = {**node.netconf(), "deviceID": node.vf(0, 0).pci, **case["conf"]}
    status, body, stderr = node.exec_plugin("ADD", conf, node.pod)
    assert status == 1, (body, stderr)
    assert body["code"] == case["code"], body
    assert case["names"] in body["msg"], body
    assert "Traceback" not in json.dumps(body) and "Traceback" not in stderr
    assert node.snapshot() == node.baseline
